/*-------------------------------------------------------------------------
 *
 * floor.h
 *	  The durable Snowflake time floor: the highest time whose IDs may have
 *	  been issued, kept in shared memory, in a state file and in WAL.
 *
 *-------------------------------------------------------------------------
 */
#ifndef IDGEN_FLOOR_H
#define IDGEN_FLOOR_H

#include "access/xlogdefs.h"
#include "port/atomics.h"
#include "storage/condition_variable.h"

#include "lease.h"

/* File in the data directory holding the floor and the layout. */
#define IDGEN_FLOOR_FILE		"idgen_snowflake.state"

/*
 * Resource manager id for idgen's WAL records.  RM_EXPERIMENTAL_ID until
 * idgen has an id of its own in PostgreSQL's registry of custom resource
 * managers; docs/snowflake.md ("WAL resource manager id 128") says what
 * this means for other extensions.
 */
#define IDGEN_RMGR_ID			RM_EXPERIMENTAL_ID
#define IDGEN_RMGR_NAME			"idgen"
#define XLOG_IDGEN_FLOOR		0x00

/*
 * The Snowflake layout a data directory uses.  IDs of two layouts can
 * collide, so the layout is written with every floor and compared at
 * start-up.
 */
typedef struct IdgenLayout
{
	int32		timestamp_bits;
	int32		worker_bits;
	int32		sequence_bits;
	int32		tick_ms;
	int64		epoch_ms;		/* Unix milliseconds */
} IdgenLayout;

/* The record, both on disk and in WAL (a state record: statefile.h). */
typedef struct IdgenFloorRecord
{
	uint32		magic;
	uint32		version;
	IdgenLayout layout;
	int64		floor_ms;		/* Unix ms: no ID's tick starts after this */
	int32		worker_id;		/* worker id in force when written */
	uint32		crc;			/* CRC-32C of everything above */
} IdgenFloorRecord;

#define IDGEN_FLOOR_MAGIC		0x49444746	/* "IDGF" */
#define IDGEN_FLOOR_VERSION		1

/*
 * Shared state (floor.c has the locking protocol).  Readers load the
 * atomics without a lock; IDGEN_LWLOCK_FLOOR serialises raises.
 */
typedef struct IdgenFloorShared
{
	pg_atomic_uint64 floor_ms;	/* atomic; written only under
								 * IDGEN_LWLOCK_FLOOR, after the new value is
								 * durable */
	pg_atomic_uint64 issued_to_ms;	/* atomic, only raised (CAS): times up to
									 * this count as issued (the floor found
									 * at start-up, replayed floors, a leased
									 * id's previous holders); Snowflake's
									 * state word catches up with it */
	pg_atomic_uint32 early_raise_failed;	/* atomic flag, written under
											 * IDGEN_LWLOCK_FLOOR: the last
											 * raise was an early one the
											 * standbys did not confirm */
	ConditionVariable raised;	/* broadcast whenever a raise lets go of
								 * IDGEN_LWLOCK_FLOOR */
	bool		unusable;		/* false -> true only: in the postmaster at
								 * start-up, or under IDGEN_LWLOCK_FLOOR by
								 * replay; the texts are written before it, so
								 * readers need only a read barrier */
	char		unusable_summary[128];
	char		unusable_reason[256];
	char		unusable_hint[256];
} IdgenFloorShared;

/* NULL unless idgen is preloaded. */
extern PGDLLIMPORT IdgenFloorShared *idgen_floor;

static inline int64
idgen_floor_ms(void)
{
	return (int64) pg_atomic_read_u64(&idgen_floor->floor_ms);
}

static inline int64
idgen_floor_issued_to_ms(void)
{
	return (int64) pg_atomic_read_u64(&idgen_floor->issued_to_ms);
}

/* Whether Snowflake IDs are refused for the layout (the unusable_ texts say why). */
static inline bool
idgen_floor_unusable(void)
{
	if (likely(!idgen_floor->unusable))
		return false;
	pg_read_barrier();			/* pairs with floor_mark_unusable() */
	return true;
}

/* Set-up (idgen.c, shmem.c) */
extern void idgen_floor_register_rmgr(void);
extern Size idgen_floor_shmem_size(void);
extern void idgen_floor_shmem_init(void);

/* The layout in force, and comparing and describing layouts */
extern void idgen_layout_current(IdgenLayout *layout);
extern bool idgen_layout_equal(const IdgenLayout *a, const IdgenLayout *b);
extern char *idgen_layout_describe(const IdgenLayout *layout);

/* snowflake.c */
extern void idgen_floor_raise(int64 needed_ms, bool must_wait,
							  const IdgenPermission *perm);
extern void idgen_floor_lower_at_shutdown(int64 last_issued_ms);

/* The lease worker */
extern void idgen_floor_raise_for_holding(int64 previous_floor_ms);
extern int64 idgen_floor_fence(void);

/* Anything that must not get ahead of the synchronous standbys (IG009) */
extern void idgen_require_sync_standby_ack(XLogRecPtr lsn, const char *what);

#endif							/* IDGEN_FLOOR_H */
