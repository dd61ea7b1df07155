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

#include "port/atomics.h"
#include "storage/condition_variable.h"
#include "storage/latch.h"
#include "storage/spin.h"

#define SEGMENT_TAG_MAXLEN		(NAMEDATALEN - 1)

/*
 * One tag's buffers.  Hash key first (tag, NUL-padded).
 *
 * Hand-out protocol (lock-free): a caller reads cur_end, then fetch-adds
 * cur_next; the value is good if it is below the cur_end it read.  A range
 * switch (under mutex) writes cur_next = new start, a write barrier, then
 * cur_end = new end.  Ranges only move up (each starts at or above the end
 * of the one before), so a caller that read an old cur_end and then drew
 * from a newer range gets a value at or above that old end and takes the
 * slow path; a caller that read the new cur_end draws at or above the new
 * start.  Either way a value is handed out only inside a granted range,
 * and fetch-add hands each value out once.
 */
typedef struct SegmentSlot
{
	char		tag[NAMEDATALEN];	/* hash key; immutable while in the table */
	uint64		generation;		/* set under the hash lock; 0 once removed */

	pg_atomic_uint64 cur_next;	/* atomic: next value of the current range */
	pg_atomic_uint64 cur_end;	/* atomic: end (exclusive); written under mutex */
	pg_atomic_uint64 prefetch_at;	/* atomic: value whose issue asks for a prefetch */
	pg_atomic_uint32 prefetch_wanted;	/* atomic flag for the worker */

	slock_t		mutex;			/* protects everything below */
	uint64		cur_start;
	bool		has_next;		/* the second buffer holds a granted range */
	uint64		next_start;
	uint64		next_end;
	bool		grant_requested;	/* a caller waits for a range */
	int			waiters;		/* callers sleeping on cv */
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
	 * Callers waiting for a grant sleep here, whatever their tag, and are
	 * woken after each grant, failure or drop.  One condition variable for
	 * all tags: a slot's memory is reused after a drop, and a condition
	 * variable must not be re-initialised while anyone may still sleep on
	 * it.  Waits are rare (the prefetch normally wins), so the extra
	 * wake-ups cost nothing that matters.
	 */
	ConditionVariable grant_cv;
} SegmentShared;

/* What the worker's grant transaction produced. */
typedef struct SegmentGrant
{
	int64		start;			/* first value of the range */
	int64		end;			/* end of the range (exclusive) */
	int64		step;			/* step in use after tuning */
	int64		burned;			/* values burned first (failover), or 0 */
} SegmentGrant;

/* SQLSTATE: no range could be had within idgen.segment_wait_timeout */
#define IDGEN_ERRCODE_SEGMENT_UNAVAILABLE	MAKE_SQLSTATE('I','G','0','1','1')

extern Size segment_shmem_size(void);
extern void segment_shmem_init(void);

/* Worker side */
extern void segment_worker_attach(Oid database_oid);
extern void segment_worker_detach(void);
extern void segment_worker_serve(void);
extern void segment_grant_range(const char *tag, SegmentGrant *grant);

#endif							/* IDGEN_SEGMENT_H */
