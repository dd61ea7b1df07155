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

/* State shared with the worker. */
typedef struct SegmentShared
{
	slock_t		mutex;			/* protects worker_latch, worker_pid, database_oid */
	Latch	   *worker_latch;
	pid_t		worker_pid;
	Oid			database_oid;	/* database the worker serves, once connected */
	pg_atomic_uint64 generation_counter;	/* atomic */

	/*
	 * The idgen.segment_alloc table every buffered range was granted from:
	 * its database and OID, or InvalidOid before the first grant.  Protected
	 * by the exclusive hash lock; when the worker grants from another table,
	 * every slot is freed first (segment.c).
	 */
	Oid			alloc_database;
	Oid			alloc_relid;

	/*
	 * Callers waiting for a grant sleep here, whatever their tag, and are
	 * woken after each grant, failure or drop.  One condition variable for
	 * all tags: waits are rare (the prefetch normally wins), so the extra
	 * wake-ups cost nothing that matters.
	 */
	ConditionVariable grant_cv;

	SegmentSlot slots[FLEXIBLE_ARRAY_MEMBER];	/* idgen.segment_max_tags */
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
extern void segment_worker_attach(Oid database_oid);
extern void segment_worker_detach(void);
extern bool segment_worker_serve(void);
extern void segment_grant_range(const char *tag, int64 known_fence,
								XLogRecPtr known_fence_lsn, int64 confirmed_fence,
								SegmentGrant *grant);
extern XLogRecPtr segment_standbys_flushed(void);

#endif							/* IDGEN_SEGMENT_H */
