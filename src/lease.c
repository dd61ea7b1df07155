/*-------------------------------------------------------------------------
 *
 * lease.c
 *	  The permission to issue Snowflake IDs and the lease state behind it:
 *	  what the lease worker (lease_worker.c) has obtained from the
 *	  coordinator, published for snowflake_next() and idgen.status.
 *
 * The permission (lease.h) holds the worker id, the holding's generation
 * and two limits, and snowflake_next() reads it once per ID without a lock:
 *
 *	- deadline_ns, on the monotonic clock: the node's own end of the lease,
 *	  the start of the last successful renewal plus idgen.lease_ttl minus a
 *	  safety margin.  The coordinator's expiry is measured from a later
 *	  moment (its commit), so the node stops issuing at least the margin
 *	  before the coordinator lets anyone else take the id, even when the
 *	  worker is stuck in a call to an unreachable coordinator (fail-static)
 *	  and whatever the wall clock does meanwhile.
 *	- horizon_ms: the highest wall-clock time IDs may carry under the lease,
 *	  as recorded on the coordinator by the last renewal.  A node that takes
 *	  the id over later starts above it, so a handover is safe even between
 *	  hosts whose clocks disagree.
 *
 * A static worker id without a coordinator has a permanent permission,
 * published at start-up.
 *
 * Locking: the permission is two copies of atomics and a version (lease.h),
 * written only by the lease worker (and once at start-up); the fields of
 * LeaseShared are protected by its mutex.  This file calls nothing in the
 * Snowflake or floor code: the lease worker has the floor (floor.c) count
 * the id's previous holders' time as issued before it publishes a
 * permission, and fences the floor after it withdraws one.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "port/atomics.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/timestamp.h"

#include "clock.h"
#include "errcodes.h"
#include "guc.h"
#include "idgen.h"
#include "lease.h"
#include "stats.h"

typedef struct LeaseShared
{
	IdgenPermissionShared permission;	/* atomics; the lease worker writes it
										 * (lease.h) */
	bool		lease_mode;		/* set at start-up, read-only */

	slock_t		mutex;			/* protects the fields below */
	LeaseState	state;
	int32		worker_id;
	int64		generation;
	TimestampTz expires_at;
	int32		in_use;
	int32		capacity;
	char		last_error[256];
} LeaseShared;

static LeaseShared *lease_shared = NULL;

/* &lease_shared->permission, for the inline readers in lease.h */
IdgenPermissionShared *idgen_permission = NULL;

/*
 * Publish a new permission (or, with IDGEN_NO_WORKER, withdraw it): write
 * the copy not in use, then switch to it.  One writer: the lease worker, or
 * the postmaster at start-up.
 */
static void
permission_write(int32 worker_id, int64 generation, int64 deadline_ns,
				 int64 horizon_ms)
{
	IdgenPermissionShared *p = idgen_permission;
	uint64		version = pg_atomic_read_u64(&p->version);
	IdgenPermissionCopy *copy = &p->copy[(version + 1) & 1];

	/* readers that saw the previous switch must see it before these writes */
	pg_write_barrier();
	pg_atomic_write_u64(&copy->worker_id, (uint64) (int64) worker_id);
	pg_atomic_write_u64(&copy->generation, (uint64) generation);
	pg_atomic_write_u64(&copy->deadline_ns, (uint64) deadline_ns);
	pg_atomic_write_u64(&copy->horizon_ms, (uint64) horizon_ms);
	pg_write_barrier();
	pg_atomic_write_u64(&p->version, version + 1);
}

bool
idgen_lease_mode(void)
{
	return lease_shared != NULL && lease_shared->lease_mode;
}

Size
idgen_lease_shmem_size(void)
{
	return sizeof(LeaseShared);
}

/* Called with AddinShmemInitLock held. */
void
idgen_lease_shmem_init(void)
{
	bool		found;
	int			i;

	lease_shared = ShmemInitStruct("idgen lease", sizeof(LeaseShared), &found);
	idgen_permission = &lease_shared->permission;
	if (found)
		return;
	memset(lease_shared, 0, sizeof(LeaseShared));
	pg_atomic_init_u64(&idgen_permission->version, 0);
	for (i = 0; i < 2; i++)
	{
		IdgenPermissionCopy *copy = &idgen_permission->copy[i];

		pg_atomic_init_u64(&copy->worker_id, (uint64) (int64) IDGEN_NO_WORKER);
		pg_atomic_init_u64(&copy->generation, 0);
		pg_atomic_init_u64(&copy->deadline_ns, 0);
		pg_atomic_init_u64(&copy->horizon_ms, 0);
	}
	SpinLockInit(&lease_shared->mutex);
	lease_shared->lease_mode = idgen_leasing_configured();
	if (!lease_shared->lease_mode)
		permission_write(idgen_worker_id, 0, IDGEN_PERMANENT, IDGEN_PERMANENT);
	lease_shared->state = lease_shared->lease_mode ? LEASE_ACQUIRING : LEASE_STATIC;
	lease_shared->worker_id = idgen_worker_id;
	lease_shared->capacity = 1 << idgen_worker_bits;
}

const char *
idgen_lease_state_name(LeaseState state)
{
	switch (state)
	{
		case LEASE_STATIC:
			return "static";
		case LEASE_ACQUIRING:
			return "acquiring";
		case LEASE_HELD:
			return "held";
		case LEASE_FAIL_STATIC:
			return "fail-static";
		case LEASE_EXPIRED:
			return "expired";
		case LEASE_CONFLICT:
			return "conflict";
	}
	return "unknown";
}

/*
 * snowflake_next() found that perm does not allow its ID: say why, from the
 * permission and the lease state.  (A permanent permission allows every ID.)
 */
void
idgen_permission_refuse(const IdgenPermission *perm)
{
	LeaseSnapshot snap;

	idgen_lease_snapshot_effective(&snap);
	idgen_count_event(IDGEN_C_SNOWFLAKE_REFUSE_WORKER);
	if (perm->worker_id == IDGEN_NO_WORKER && snap.state != LEASE_EXPIRED)
		ereport(ERROR,
				(errcode(ERRCODE_IDGEN_NO_WORKER_ID),
				 errmsg("refusing to generate Snowflake IDs: no worker id lease is held"),
				 errdetail("The lease state is \"%s\"%s%s.", idgen_lease_state_name(snap.state),
						   snap.last_error[0] ? "; last error: " : "", snap.last_error),
				 errhint("Check idgen.status and that the coordinator (idgen.coordinator) is reachable. idgen.uuidv7() does not need a lease.")));
	if (perm->worker_id == IDGEN_NO_WORKER || perm->deadline_ns <= idgen_monotonic_ns())
		ereport(ERROR,
				(errcode(ERRCODE_IDGEN_NO_WORKER_ID),
				 errmsg("refusing to generate Snowflake IDs: the worker id lease has expired"),
				 errdetail("The lease of worker id %d could not be renewed before this node's deadline; the coordinator may hand the id to another node.%s%s",
						   snap.worker_id, snap.last_error[0] ? " Last error: " : "", snap.last_error),
				 errhint("Check that the coordinator (idgen.coordinator) is reachable; IDs resume once the lease is renewed or a new one is held.")));
	ereport(ERROR,
			(errcode(ERRCODE_IDGEN_NO_WORKER_ID),
			 errmsg("refusing to generate Snowflake IDs: the clock is past the lease's time horizon"),
			 errdetail("IDs under this lease may carry times up to the horizon recorded on the coordinator at the last renewal."),
			 errhint("This resolves at the next renewal; if it persists, check the coordinator and this server's clock.")));
}

void
idgen_lease_snapshot(LeaseSnapshot *snap)
{
	IdgenPermission perm;
	int64		deadline;

	memset(snap, 0, sizeof(*snap));
	if (lease_shared == NULL)
	{
		snap->state = LEASE_STATIC;
		snap->worker_id = -1;
		return;
	}
	SpinLockAcquire(&lease_shared->mutex);
	snap->state = lease_shared->state;
	snap->worker_id = lease_shared->worker_id;
	snap->generation = lease_shared->generation;
	snap->expires_at = lease_shared->expires_at;
	snap->in_use = lease_shared->in_use;
	snap->capacity = lease_shared->capacity;
	strlcpy(snap->last_error, lease_shared->last_error, sizeof(snap->last_error));
	SpinLockRelease(&lease_shared->mutex);

	idgen_permission_read(&perm);
	deadline = perm.deadline_ns;
	snap->deadline_in_ms = deadline == 0 ? -1 :
		deadline == IDGEN_PERMANENT ? PG_INT64_MAX :
		(deadline - idgen_monotonic_ns()) / IDGEN_NS_PER_MS;
}

/*
 * The snapshot as monitoring should see it.  The worker may be stuck in a call to a
 * hung coordinator (up to the call timeout) and not have updated the state
 * yet: show what snowflake_next() actually does.  A renewal is overdue once
 * the deadline is closer than a renewal period plus a second would leave.
 */
void
idgen_lease_snapshot_effective(LeaseSnapshot *snap)
{
	idgen_lease_snapshot(snap);
	if (snap->state == LEASE_HELD || snap->state == LEASE_FAIL_STATIC)
	{
		int64		fresh_ms = ((int64) idgen_lease_ttl_s - Max(1, idgen_lease_ttl_s / 10)) * 1000;

		if (snap->deadline_in_ms <= 0)
			snap->state = LEASE_EXPIRED;
		else if (snap->state == LEASE_HELD &&
				 snap->deadline_in_ms < fresh_ms - (int64) idgen_lease_ttl_s * 1000 / 3 - 1000)
			snap->state = LEASE_FAIL_STATIC;
	}
}

void
idgen_lease_publish_held(int32 worker_id, int64 generation, TimestampTz expires_at,
						 int64 deadline_ns, int64 horizon_ms, int32 in_use, int32 capacity)
{
	SpinLockAcquire(&lease_shared->mutex);
	lease_shared->state = LEASE_HELD;
	lease_shared->worker_id = worker_id;
	lease_shared->generation = generation;
	lease_shared->expires_at = expires_at;
	if (in_use >= 0)
		lease_shared->in_use = in_use;
	if (capacity > 0)
		lease_shared->capacity = capacity;
	lease_shared->last_error[0] = '\0';
	SpinLockRelease(&lease_shared->mutex);

	permission_write(worker_id, generation, deadline_ns, horizon_ms);
}

void
idgen_lease_set_state(LeaseState state, const char *error)
{
	SpinLockAcquire(&lease_shared->mutex);
	lease_shared->state = state;
	if (error)
		strlcpy(lease_shared->last_error, error, sizeof(lease_shared->last_error));
	SpinLockRelease(&lease_shared->mutex);
}

/*
 * Stop issuing under the lease at once (lost, released or expired).  Calls
 * that read the permission before this may still be on their way; see
 * idgen_floor_fence() for what they can reach.
 */
void
idgen_lease_withdraw(LeaseState state, const char *error)
{
	permission_write(IDGEN_NO_WORKER, 0, 0, 0);
	idgen_lease_set_state(state, error);
}
