/*-------------------------------------------------------------------------
 *
 * lease.h
 *	  Worker-id leases: the permission to issue Snowflake IDs that the lease
 *	  worker publishes for snowflake_next(), and the lease state shown in
 *	  idgen.status.
 *
 *-------------------------------------------------------------------------
 */
#ifndef IDGEN_LEASE_H
#define IDGEN_LEASE_H

#include "datatype/timestamp.h"
#include "port/atomics.h"

#include "clock.h"

/*
 * The permission to issue Snowflake IDs: one object, published as a whole.
 * The lease worker is its only writer once the server runs (a static worker
 * id without a coordinator gets a permanent one at start-up).  It keeps two
 * copies: it writes the one not in use and then advances version, whose
 * low bit names the copy in use, so a reader never waits for the writer
 * (which may be descheduled half-way), even during a write.
 *
 * snowflake_next() takes a consistent copy once per ID with a few atomic
 * loads and no lock (version, the copy it names, version again), checks
 * it, and checks after its floor read or raise that the version has not
 * moved since: a changed version means the permission was renewed or
 * withdrawn meanwhile, and the call starts over with the new one.  Raises
 * of the time floor re-check the version under IDGEN_LWLOCK_FLOOR, so once
 * a withdrawal has been followed by one pass through that lock
 * (idgen_floor_fence()), no ID under the withdrawn permission carries
 * a time above the floor.
 */
typedef struct IdgenPermissionCopy
{
	pg_atomic_uint64 worker_id; /* IDGEN_NO_WORKER if none */
	pg_atomic_uint64 generation;	/* 0 for a static id */
	pg_atomic_uint64 deadline_ns;	/* monotonic clock; 0 none,
									 * IDGEN_PERMANENT for a static id */
	pg_atomic_uint64 horizon_ms;	/* Unix ms */
} IdgenPermissionCopy;

typedef struct IdgenPermissionShared
{
	pg_atomic_uint64 version;	/* atomic; low bit: the copy in use */
	IdgenPermissionCopy copy[2];	/* atomics; the one not in use is written
									 * only by the lease worker */
} IdgenPermissionShared;

#define IDGEN_NO_WORKER			(-1)
#define IDGEN_PERMANENT			PG_INT64_MAX

/* A consistent copy of the permission. */
typedef struct IdgenPermission
{
	uint64		version;
	int32		worker_id;
	int64		generation;
	int64		deadline_ns;
	int64		horizon_ms;
} IdgenPermission;

extern PGDLLIMPORT IdgenPermissionShared *idgen_permission;

static inline void
idgen_permission_read(IdgenPermission *perm)
{
	IdgenPermissionShared *shared = idgen_permission;

	for (;;)
	{
		uint64		version = pg_atomic_read_u64(&shared->version);
		IdgenPermissionCopy *copy = &shared->copy[version & 1];

		pg_read_barrier();
		perm->worker_id = (int32) (int64) pg_atomic_read_u64(&copy->worker_id);
		perm->generation = (int64) pg_atomic_read_u64(&copy->generation);
		perm->deadline_ns = (int64) pg_atomic_read_u64(&copy->deadline_ns);
		perm->horizon_ms = (int64) pg_atomic_read_u64(&copy->horizon_ms);
		pg_read_barrier();
		/* two publications meanwhile could have rewritten our copy */
		if (likely(pg_atomic_read_u64(&shared->version) == version))
		{
			perm->version = version;
			return;
		}
	}
}

/* May an ID whose tick starts at start_ms go out under this permission? */
static inline bool
idgen_permission_allows(const IdgenPermission *perm, int64 start_ms)
{
	return perm->worker_id != IDGEN_NO_WORKER &&
		start_ms <= perm->horizon_ms &&
		(perm->deadline_ns == IDGEN_PERMANENT ||
		 perm->deadline_ns > idgen_monotonic_ns());
}

/* Is perm still the one published (not renewed or withdrawn since)? */
static inline bool
idgen_permission_current(const IdgenPermission *perm)
{
	pg_read_barrier();
	return pg_atomic_read_u64(&idgen_permission->version) == perm->version;
}

/* Refuse an ID the permission does not allow, saying why (lease state). */
#if PG_VERSION_NUM >= 180000
pg_noreturn extern void idgen_permission_refuse(const IdgenPermission *perm);
#else
extern void idgen_permission_refuse(const IdgenPermission *perm) pg_attribute_noreturn();
#endif

typedef enum LeaseState
{
	LEASE_STATIC,				/* static worker id, no coordinator */
	LEASE_ACQUIRING,			/* no lease yet */
	LEASE_HELD,					/* lease held and renewed */
	LEASE_FAIL_STATIC,			/* renewal failing; issuing until the deadline */
	LEASE_EXPIRED,				/* deadline passed; refusing */
	LEASE_CONFLICT				/* static id held elsewhere, lease lost, or
								 * layout refused */
} LeaseState;

/* True when this server leases its worker id (decided at start-up). */
extern bool idgen_lease_mode(void);

extern Size idgen_lease_shmem_size(void);
extern void idgen_lease_shmem_init(void);

/* For idgen.status and idgen.bit_budget() */
typedef struct LeaseSnapshot
{
	LeaseState	state;
	int32		worker_id;
	int64		generation;
	TimestampTz expires_at;		/* coordinator's expiry, or 0 */
	int64		deadline_in_ms; /* until this node stops issuing; <0 passed */
	int32		in_use;
	int32		capacity;
	char		last_error[256];
} LeaseSnapshot;

extern void idgen_lease_snapshot(LeaseSnapshot *snap);
extern void idgen_lease_snapshot_effective(LeaseSnapshot *snap);
extern const char *idgen_lease_state_name(LeaseState state);

/* Updates from the lease worker */
extern void idgen_lease_publish_held(int32 worker_id, int64 generation,
									 TimestampTz expires_at, int64 deadline_ns,
									 int64 horizon_ms, int32 in_use, int32 capacity);
extern void idgen_lease_set_state(LeaseState state, const char *error);
extern void idgen_lease_withdraw(LeaseState state, const char *error);

/* lease_worker.c (started by name: bgw.c) */
extern PGDLLEXPORT void idgen_lease_worker_main(Datum main_arg);

#endif							/* IDGEN_LEASE_H */
