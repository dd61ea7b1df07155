/*-------------------------------------------------------------------------
 *
 * segment.h
 *	  Leaf-style segment allocator: shared state shared by the backends that
 *	  hand out numbers (segment.c) and the background worker that grants
 *	  ranges (segment_grant.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef IDGEN_SEGMENT_H
#define IDGEN_SEGMENT_H

#include "access/xlogdefs.h"
#include "port/atomics.h"
#include "storage/condition_variable.h"
#include "storage/latch.h"
#include "storage/spin.h"
#include "utils/timestamp.h"

#define SEGMENT_TAG_MAXLEN		(NAMEDATALEN - 1)

/*
 * One tag's buffers.  The slots are a fixed array in shared memory, set up
 * once at start-up (spinlocks included) and reused from tag to tag; a shared
 * hash table maps a tag to its slot number.
 *
 * generation identifies one use of a slot by one tag: a fresh value from
 * SegmentShared.generation_counter when the slot is taken, 0 while it is
 * free.  It changes only under the exclusive hash lock and the slot's mutex
 * together, so reading it under either is stable, and it is read atomically
 * on the hand-out path.
 *
 * Hand-out protocol (lock-free): a caller reads cur_end, then fetch-adds
 * cur_next, then checks that generation is still the one it looked up; the
 * value is good if it is below the cur_end it read.  A range switch (under
 * mutex) writes cur_next = new start, a write barrier, then cur_end = new
 * end.  Ranges only move up (each starts at or above the end of the one
 * before), so a caller that read an old cur_end and then drew from a newer
 * range gets a value at or above that old end and takes the slow path; a
 * caller that read the new cur_end draws at or above the new start.  Either
 * way a value is handed out only inside a granted range, and fetch-add hands
 * each value out once.  Freeing a slot writes its new generation before it
 * resets the range, so a caller that drew after the reset sees the change
 * (fetch-add is a full barrier) and discards what it drew.
 */
typedef struct SegmentSlot
{
	char		tag[NAMEDATALEN];	/* written with generation; immutable while taken */
	Oid			dbid;			/* the tag's database; likewise */
	int			dbno;			/* its entry in SegmentShared's databases; likewise */
	pg_atomic_uint64 generation;	/* see above */

	pg_atomic_uint64 cur_next;	/* atomic: next value of the current range */
	pg_atomic_uint64 cur_end;	/* atomic: end (exclusive); written under mutex */
	pg_atomic_uint64 prefetch_at;	/* atomic: value whose issue asks for a prefetch */
	pg_atomic_uint32 prefetch_wanted;	/* atomic flag for the worker */
	pg_atomic_uint32 block_max;	/* atomic: the tag's own step, the largest
								 * block (every range holds at least that
								 * many numbers); 0 before the first grant;
								 * written under mutex */

	slock_t		mutex;			/* protects everything below */
	uint64		cur_start;
	int64		cur_since_ns;	/* monotonic time cur_start became current */
	bool		has_next;		/* the second buffer holds a granted range */
	uint64		next_start;
	uint64		next_end;

	/*
	 * A range granted but held back until the standbys have confirmed a
	 * fence at or above its end (segment_grant.c); written by the worker.
	 */
	bool		has_pending;
	uint64		pending_start;
	uint64		pending_end;
	int64		pending_step;
	XLogRecPtr	pending_lsn;	/* standbys must have flushed up to here */

	/*
	 * The highest fence the worker committed for this tag and the end of
	 * that commit record (-1 and 0 if unknown, e.g. after a restart), and
	 * the highest fence the standbys are known to have.  Written by the
	 * worker.
	 */
	int64		fence;
	XLogRecPtr	fence_lsn;
	int64		fence_confirmed;

	bool		grant_requested;	/* a caller waits for a range */
	int			waiters;		/* callers sleeping on grant_cv */
	uint32		error_seq;		/* bumped by each failed grant */
	int			error_code;		/* sqlerrcode of the last failed grant */
	char		error_message[256];
	int64		step_in_use;
	TimestampTz last_grant_at;
	uint64		grants;
} SegmentSlot;

/*
 * A database whose tags have slots, or whose worker runs.  Each database's
 * tags are granted by a worker of its own, connected to it: the one of
 * idgen.database starts with the server and stays; the others are started
 * by the first caller that needs a grant and exit once their database has
 * had no slot for IDGEN_SEGMENT_WORKER_IDLE_MS.
 *
 * dbid changes only under the exclusive hash lock and SegmentShared.mutex
 * together (reading it under either is stable); nslots and alloc_relid are
 * protected by the hash lock; the worker fields by SegmentShared.mutex.  An
 * entry is free (dbid InvalidOid) once it has neither slots nor a worker.
 */
typedef struct SegmentDatabase
{
	Oid			dbid;
	int			nslots;			/* slots taken by this database's tags */

	/*
	 * The idgen.segment_alloc table every buffered range of this database
	 * was granted from, or InvalidOid before the first grant; when the
	 * worker grants from another table, the database's slots are freed
	 * first.
	 */
	Oid			alloc_relid;

	pid_t		worker_pid;		/* 0: no worker attached */
	Latch	   *worker_latch;
	TimestampTz launched_at;	/* a start requested then, not yet attached */
	bool		exit_requested; /* the database is being dropped */
} SegmentDatabase;

/* State shared with the workers. */
typedef struct SegmentShared
{
	slock_t		mutex;			/* see SegmentDatabase */
	pg_atomic_uint64 generation_counter;	/* atomic */

	/*
	 * Callers waiting for a grant sleep here, whatever their tag, and are
	 * woken after each grant, failure or drop.  One condition variable for
	 * all tags: waits are rare (the prefetch normally wins), so the extra
	 * wake-ups cost nothing that matters.
	 */
	ConditionVariable grant_cv;

	/*
	 * idgen.segment_max_tags slots, then the databases: as many as slots
	 * (each database with a slot) plus max_worker_processes (each with a
	 * worker but no slot any more).
	 */
	SegmentSlot slots[FLEXIBLE_ARRAY_MEMBER];
} SegmentShared;

/* What the worker's grant transaction produced. */
typedef struct SegmentGrant
{
	int64		start;			/* first value of the range */
	int64		end;			/* end of the range (exclusive) */
	int64		step;			/* step in use after tuning */
	int32		tag_step;		/* the tag's own step (segment_alloc.step) */
	int64		burned;			/* values burned first (failover), or 0 */
	Oid			relid;			/* the idgen.segment_alloc granted from */
	int64		fence;			/* fence committed with the grant, or -1 */
	XLogRecPtr	commit_lsn;		/* end of the grant's commit record */
	XLogRecPtr	need_lsn;		/* standbys must have flushed this first;
								 * InvalidXLogRecPtr: nothing to wait for */
} SegmentGrant;

/* SQLSTATE: no range could be had within idgen.segment_wait_timeout */
#define IDGEN_ERRCODE_SEGMENT_UNAVAILABLE	MAKE_SQLSTATE('I','G','0','1','1')

extern Size segment_shmem_size(void);
extern void segment_shmem_init(void);
extern void segment_install_hooks(void);

/* Worker side */
#define IDGEN_SEGMENT_WORKER_IDLE_MS	10000

extern bool segment_worker_attach(void);
extern bool segment_worker_idle_exit(bool permanent);
extern bool segment_worker_serve(void);
extern void segment_grant_range(const char *tag, int64 known_fence,
								XLogRecPtr known_fence_lsn, int64 confirmed_fence,
								double local_rate, SegmentGrant *grant);
extern XLogRecPtr segment_standbys_flushed(void);

#endif							/* IDGEN_SEGMENT_H */
