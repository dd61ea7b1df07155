/*-------------------------------------------------------------------------
 *
 * segment.h
 *	  Leaf-style segment allocator: the shared state (segment.c) that the
 *	  backends handing out numbers (segment_next.c) and the grant worker of
 *	  each database (segment_worker.c, segment_grant.c) work on.
 *
 * Which lock protects what, and in which order they are taken, is written
 * at the top of segment.c; each field below names its protection.
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

/* A tag of a database: the hash key (no padding: hashed as bytes). */
typedef struct SegmentKey
{
	char		tag[NAMEDATALEN];	/* NUL-padded */
	Oid			dbid;
} SegmentKey;

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
	/* set with generation (hash lock and mutex); immutable while taken */
	char		tag[NAMEDATALEN];
	Oid			dbid;			/* the tag's database */
	int			dbno;			/* its entry in idgen_segment_dbs */
	pg_atomic_uint64 generation;	/* atomic; see above */

	/*
	 * Atomics of the hand-out path, read without a lock.  Written under
	 * mutex, except that callers fetch-add cur_next and set prefetch_wanted
	 * without it.
	 */
	pg_atomic_uint64 cur_next;	/* next value of the current range */
	pg_atomic_uint64 cur_end;	/* end of the current range (exclusive) */
	pg_atomic_uint64 prefetch_at;	/* value whose issue asks for a prefetch */
	pg_atomic_uint32 prefetch_wanted;	/* flag for the worker */
	pg_atomic_uint32 block_max; /* the tag's own step, the largest block
								 * (every range holds at least that many
								 * numbers); 0 before the first grant */

	slock_t		mutex;			/* protects everything below */
	uint64		cur_start;
	int64		cur_since_ns;	/* monotonic time cur_start became current */
	bool		has_next;		/* the second buffer holds a granted range */
	uint64		next_start;
	uint64		next_end;

	/*
	 * A range granted but held back until the standbys have confirmed a fence
	 * at or above its end (segment_grant.c); written by the worker.
	 */
	bool		has_pending;
	uint64		pending_start;
	uint64		pending_end;
	int64		pending_step;
	XLogRecPtr	pending_lsn;	/* standbys must have flushed up to here */

	/*
	 * The highest fence the worker committed for this tag and the end of that
	 * commit record (-1 and 0 if unknown, e.g. after a restart), and the
	 * highest fence the standbys are known to have.  Written by the worker.
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
 * had no slot for a while (segment_worker.c).  An entry is free (dbid
 * InvalidOid) once it has neither slots nor a worker.
 */
typedef struct SegmentDatabase
{
	/*
	 * dbid is written under the exclusive hash lock and SegmentShared.mutex
	 * together, so reading it under either is stable.
	 */
	Oid			dbid;
	int			nslots;			/* hash lock; slots taken by its tags */

	/*
	 * The idgen.segment_alloc table every buffered range of this database was
	 * granted from, or InvalidOid before the first grant; when the worker
	 * grants from another table, the database's slots are freed first.  Hash
	 * lock.
	 */
	Oid			alloc_relid;

	/* SegmentShared.mutex (attach and detach also hold the hash lock) */
	pid_t		worker_pid;		/* 0: no worker attached */
	Latch	   *worker_latch;
	TimestampTz launched_at;	/* a start requested then, not yet attached */
	bool		exit_requested; /* the database is being dropped */
} SegmentDatabase;

/* State shared by the callers and the workers. */
typedef struct SegmentShared
{
	slock_t		mutex;			/* the database entries' worker fields */
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

/* segment.c: the shared state (NULL without shared_preload_libraries) */
extern SegmentShared *idgen_segment_shared;
extern SegmentDatabase *idgen_segment_dbs;	/* after the slots */

extern Size idgen_segment_shmem_size(void);
extern void idgen_segment_shmem_init(void);
extern void idgen_segment_install_hooks(void);
extern int	idgen_segment_db_for(Oid dbid, bool create);
extern void idgen_segment_db_release_if_unused(SegmentDatabase *db);
extern SegmentSlot *idgen_segment_find(const SegmentKey *key, uint64 *generation);
extern SegmentSlot *idgen_segment_find_or_take(const SegmentKey *key,
											   uint64 *generation);
extern void idgen_segment_free_tag(const SegmentKey *key, uint64 generation);
extern void idgen_segment_free_database_locked(Oid dbid);

/* segment_grant.c: one grant transaction, run by the worker */
extern ErrorData *idgen_segment_grant(const char *tag, int64 known_fence,
									  XLogRecPtr known_fence_lsn,
									  int64 confirmed_fence,
									  double local_rate, SegmentGrant *grant);

#endif							/* IDGEN_SEGMENT_H */
