/*-------------------------------------------------------------------------
 *
 * segment_next.c
 *	  idgen.segment_next(tag [, n]): short, dense, increasing numbers per
 *	  tag, one at a time or in blocks of n consecutive numbers, drawn from
 *	  the tag's slot (segment.c); and the other SQL entry points of segments
 *	  (segment_buffers, _segment_forget, _current_timeline).
 *
 * A caller finds its tag's slot (once per backend and tag: the slot is
 * cached) and draws from the current range by fetch-add, without a lock
 * (see SegmentSlot in segment.h for the protocol).  Once
 * idgen.segment_prefetch_at percent of the current range is used, the
 * caller that draws that exact value sets the slot's prefetch flag and wakes
 * the worker, which grants the next range in a transaction of its own
 * (segment_worker.c, segment_grant.c).  A caller that finds the current
 * range used up switches to the next one under the slot's spinlock; if
 * there is none, it asks the worker for a grant and sleeps on the grant
 * condition variable, for at most idgen.segment_wait_timeout.  The worker
 * of idgen.database starts with the server; a caller in any other database
 * starts that database's worker when it first needs one.
 *
 * Ranges come from the worker only after their grant has committed durably
 * and, when standbys are attached, after they have confirmed the grant's
 * fence (segment_grant.c), so a caller's rollback never returns numbers, a
 * crash loses at most the unused part of the buffered ranges (gaps, never
 * repeats), and a promoted standby burns past every range handed out.
 *
 * One concept, the callers' side of the allocator; it is over 500 lines
 * because both forms of segment_next() share the slow path here.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lwlock.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "bgw.h"
#include "clock.h"
#include "errcodes.h"
#include "guc.h"
#include "idgen.h"
#include "segment.h"
#include "shmem.h"
#include "stats.h"

/*
 * A worker start requested this long ago that has not attached (it failed
 * to start, or to connect) is requested again by the next caller.
 */
#define IDGEN_SEGMENT_WORKER_START_TIMEOUT_MS	10000

/* This backend's last slot, to skip the hash lookup on repeated calls. */
static SegmentSlot *cached_slot = NULL;
static uint64 cached_generation = 0;
static SegmentKey cached_key;

/* Validate a tag argument; key it, NUL-padded, in this database. */
static void
segment_tag_key(text *tag, SegmentKey *key)
{
	int			len = VARSIZE_ANY_EXHDR(tag);

	if (len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("segment tag must not be empty")));
	if (len > SEGMENT_TAG_MAXLEN)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("segment tag is too long"),
				 errdetail("A tag has at most %d bytes; this one has %d.",
						   SEGMENT_TAG_MAXLEN, len)));
	memset(key, 0, sizeof(SegmentKey));
	memcpy(key->tag, VARDATA_ANY(tag), len);
	key->dbid = MyDatabaseId;
}

/* Is this idgen.database, whose worker starts with the server? */
static bool
segment_in_home_database(void)
{
	static Oid	home = InvalidOid;
	static bool looked_up = false;

	if (!looked_up)
	{
		home = get_database_oid(idgen_database, true);
		looked_up = true;
	}
	return MyDatabaseId == home;
}

/*
 * Wake the worker of a slot's database.  With launch, start one if there is
 * none and none is starting (outside idgen.database, whose worker the
 * postmaster starts and restarts); fail with a hint if none can be started.
 */
static void
segment_wake_worker(SegmentSlot *slot, bool launch)
{
	SegmentDatabase *db = &idgen_segment_dbs[slot->dbno];
	Oid			dbid = slot->dbid;
	Latch	   *latch = NULL;
	bool		start = false;
	TimestampTz now = 0;

	if (launch)
	{
		launch = !segment_in_home_database();
		now = GetCurrentTimestamp();
	}
	SpinLockAcquire(&idgen_segment_shared->mutex);
	if (db->dbid == dbid)
	{
		latch = db->worker_latch;
		if (latch == NULL && launch &&
			(db->launched_at == 0 ||
			 TimestampDifferenceExceeds(db->launched_at, now,
										IDGEN_SEGMENT_WORKER_START_TIMEOUT_MS)))
		{
			db->launched_at = now;
			start = true;
		}
	}
	SpinLockRelease(&idgen_segment_shared->mutex);
	if (latch)
		SetLatch(latch);
	if (start && !idgen_bgw_launch(IDGEN_BGW_SEGMENT_DATABASE, dbid))
	{
		SpinLockAcquire(&idgen_segment_shared->mutex);
		if (db->dbid == dbid && db->launched_at == now)
			db->launched_at = 0;
		SpinLockRelease(&idgen_segment_shared->mutex);
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("could not start idgen's segment worker for database \"%s\"",
						get_database_name(dbid)),
				 errdetail("Each database whose segment tags are in use needs a background worker of its own, and all max_worker_processes (%d) are taken.",
						   max_worker_processes),
				 errhint("Raise max_worker_processes and restart the server, or use segment numbers in fewer databases.")));
	}
}

/*
 * Only a tag that exists gets a slot: ask the table (through a SECURITY
 * DEFINER function, as callers need not be able to read it).
 */
static void
segment_require_known_tag(const char *key)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	bool		isnull;
	bool		exists;

	values[0] = CStringGetTextDatum(key);
	SPI_connect();
	if (SPI_execute_with_args("SELECT idgen._segment_exists($1)", 1, types, values,
							  NULL, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "idgen: could not look up segment tag");
	exists = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	if (!exists)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("segment tag \"%s\" does not exist", key),
				 errhint("Create the tag with idgen.segment_create().")));
}

/* Find or take the slot of a tag; return it and its generation. */
static SegmentSlot *
segment_lookup(const SegmentKey *key, uint64 *generation)
{
	SegmentSlot *slot;

	if (cached_slot && memcmp(&cached_key, key, sizeof(SegmentKey)) == 0 &&
		pg_atomic_read_u64(&cached_slot->generation) == cached_generation)
	{
		*generation = cached_generation;
		return cached_slot;
	}
	cached_slot = NULL;

	slot = idgen_segment_find(key, &cached_generation);
	if (slot == NULL)
	{
		segment_require_known_tag(key->tag);
		slot = idgen_segment_find_or_take(key, &cached_generation);
	}

	cached_key = *key;
	cached_slot = slot;
	*generation = cached_generation;
	return slot;
}

/*
 * Make the buffered next range current at now_ns (monotonic, read before
 * the spinlock was taken).  Caller holds slot->mutex.
 */
static void
segment_switch(SegmentSlot *slot, int64 now_ns)
{
	uint64		size = slot->next_end - slot->next_start;
	uint64		used_for_prefetch = size * idgen_segment_prefetch_at / 100;

	slot->cur_start = slot->next_start;
	slot->cur_since_ns = now_ns;
	pg_atomic_write_u64(&slot->prefetch_at, slot->next_start + used_for_prefetch);
	pg_atomic_write_u64(&slot->cur_next, slot->next_start);
	pg_write_barrier();
	pg_atomic_write_u64(&slot->cur_end, slot->next_end);
	slot->has_next = false;
	if (used_for_prefetch == 0)
		pg_atomic_write_u32(&slot->prefetch_wanted, 1);
}

/*
 * Sleep until the worker has granted a range for this slot (return true),
 * the slot is freed (return false), the worker reports a failure, or
 * idgen.segment_wait_timeout passes.  Not inlined into segment_refill's
 * PG_TRY block, where its locals could be clobbered by longjmp.
 */
static pg_noinline bool
segment_wait_for_range(SegmentSlot *slot, uint64 generation, const char *key,
					   uint64 observed_end, uint32 error_seq)
{
	int64		deadline_ns = idgen_monotonic_ns() +
	(int64) idgen_segment_wait_timeout_ms * IDGEN_NS_PER_MS;

	ConditionVariablePrepareToSleep(&idgen_segment_shared->grant_cv);
	for (;;)
	{
		bool		done = false;
		bool		gone = false;
		bool		held_back = false;
		int			code = 0;
		char		message[sizeof(slot->error_message)];
		int64		remaining_ns;

		SpinLockAcquire(&slot->mutex);
		if (pg_atomic_read_u64(&slot->generation) != generation)
			gone = true;
		else if (slot->error_seq != error_seq)
		{
			code = slot->error_code;
			strlcpy(message, slot->error_message, sizeof(message));
		}
		else if (pg_atomic_read_u64(&slot->cur_end) != observed_end || slot->has_next)
			done = true;
		else
			held_back = slot->has_pending;
		SpinLockRelease(&slot->mutex);

		if (done || gone)
			return done;
		if (code)
			ereport(ERROR,
					(errcode(code),
					 errmsg("could not get a range for segment tag \"%s\"", key),
					 errdetail("idgen's background worker failed to grant one: %s", message)));

		remaining_ns = deadline_ns - idgen_monotonic_ns();
		if (remaining_ns <= 0)
		{
			idgen_count_event(IDGEN_C_SEGMENT_WAIT_TIMEOUTS);
			if (held_back)
				ereport(ERROR,
						(errcode(ERRCODE_IDGEN_SEGMENT_UNAVAILABLE),
						 errmsg("timed out waiting for a range for segment tag \"%s\"", key),
						 errdetail("A range was granted but is held back until the standbys confirm its fence, and they did not within idgen.segment_wait_timeout (%d ms).",
								   idgen_segment_wait_timeout_ms),
						 errhint("Check the standbys in pg_stat_replication and the physical replication slots in pg_replication_slots; drop the slot of a standby that is gone for good.")));
			ereport(ERROR,
					(errcode(ERRCODE_IDGEN_SEGMENT_UNAVAILABLE),
					 errmsg("timed out waiting for a range for segment tag \"%s\"", key),
					 errdetail("Both buffers of the tag were empty and no range was granted within idgen.segment_wait_timeout (%d ms).",
							   idgen_segment_wait_timeout_ms),
					 errhint("Check that the idgen worker of this database is running (pg_stat_activity, backend_type 'idgen worker'), what it waits for (a lock on the tag's row in idgen.segment_alloc, synchronous standbys), and the server log.")));
		}
		(void) ConditionVariableTimedSleep(&idgen_segment_shared->grant_cv,
										   Min(remaining_ns / IDGEN_NS_PER_MS + 1, 1000),
										   PG_WAIT_EXTENSION);
		segment_wake_worker(slot, true);
	}
}

/*
 * Slow path: the range whose end we read is used up.  Switch to the next
 * range, or ask the worker for one and wait.  Returns once a caller may try
 * the fast path again (which also notices a freed slot); false if the slot
 * was freed while this call waited.
 */
static bool
segment_refill(SegmentSlot *slot, uint64 generation, const char *key,
			   uint64 observed_end)
{
	uint32		error_seq;
	volatile bool granted = false;
	int64		now_ns = idgen_monotonic_ns();

	SpinLockAcquire(&slot->mutex);
	if (pg_atomic_read_u64(&slot->generation) != generation ||
		pg_atomic_read_u64(&slot->cur_end) != observed_end)
	{
		SpinLockRelease(&slot->mutex);
		return true;			/* freed, or someone else switched already */
	}
	if (slot->has_next)
	{
		segment_switch(slot, now_ns);
		SpinLockRelease(&slot->mutex);
		return true;
	}
	slot->grant_requested = true;
	slot->waiters++;
	error_seq = slot->error_seq;
	SpinLockRelease(&slot->mutex);

	idgen_count_event(IDGEN_C_SEGMENT_CALLER_WAITS);

	/* waiters must come down however the wait ends (cancel included) */
	PG_TRY();
	{
		segment_wake_worker(slot, true);
		granted = segment_wait_for_range(slot, generation, key, observed_end, error_seq);
	}
	PG_FINALLY();
	{
		ConditionVariableCancelSleep();
		SpinLockAcquire(&slot->mutex);
		/* a freed slot's count was reset, maybe for another tag */
		if (pg_atomic_read_u64(&slot->generation) == generation)
			slot->waiters--;
		SpinLockRelease(&slot->mutex);
	}
	PG_END_TRY();
	return granted;
}

/*
 * Checks shared by both forms of segment_next(): the tag argument (keyed
 * in this database), preload, recovery.
 */
static inline void
segment_check_call(FunctionCallInfo fcinfo, SegmentKey *key)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("segment tag must not be null")));
	if (idgen_segment_shared == NULL)
		idgen_require_preload("segments",
							  "Segment ranges are buffered in shared memory and granted by idgen's background worker.",
							  NULL);
	segment_tag_key(PG_GETARG_TEXT_PP(0), key);

	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot hand out segment numbers during recovery"),
				 errdetail("Segment ranges are granted only by a primary."),
				 errhint("Call idgen.segment_next() on the primary.")));
}

/*
 * The slot was freed while a call waited: the tag was dropped, or the
 * buffers forgotten with their table.  The call looks the tag up once more
 * (it may exist in the new table); a second time it is gone (a snapshot
 * older than the drop still shows the tag).
 */
static void
segment_freed_while_waiting(const char *key, bool *freed_once)
{
	if (*freed_once)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("segment tag \"%s\" does not exist", key),
				 errdetail("The tag, or the table idgen.segment_alloc, was dropped while this call waited for a range."),
				 errhint("Create the tag with idgen.segment_create().")));
	*freed_once = true;
}

PG_FUNCTION_INFO_V1(idgen_segment_next);

/* idgen.segment_next(tag text) RETURNS bigint */
Datum
idgen_segment_next(PG_FUNCTION_ARGS)
{
	SegmentKey	key;
	SegmentSlot *slot;
	uint64		generation;
	bool		freed_once = false;

	segment_check_call(fcinfo, &key);

	slot = segment_lookup(&key, &generation);
	for (;;)
	{
		uint64		end = pg_atomic_read_u64(&slot->cur_end);
		uint64		value;

		pg_read_barrier();
		value = pg_atomic_fetch_add_u64(&slot->cur_next, 1);
		if (unlikely(pg_atomic_read_u64(&slot->generation) != generation))
		{
			/* the slot was freed (and maybe reused) meanwhile */
			slot = segment_lookup(&key, &generation);
			continue;
		}
		if (likely(value < end))
		{
			if (unlikely(value == pg_atomic_read_u64(&slot->prefetch_at)))
			{
				pg_atomic_write_u32(&slot->prefetch_wanted, 1);
				segment_wake_worker(slot, false);
			}
			idgen_count_issued(IDGEN_C_SEGMENT_ISSUED);
			PG_RETURN_INT64((int64) value);
		}
		if (!segment_refill(slot, generation, key.tag, end))
		{
			segment_freed_while_waiting(key.tag, &freed_once);
			slot = segment_lookup(&key, &generation);
		}
	}
}

PG_FUNCTION_INFO_V1(idgen_segment_next_block);

/*
 * idgen.segment_next(tag text, n integer) RETURNS bigint: the first of n
 * consecutive numbers, all the caller's.
 *
 * One fetch-add of n draws the block, so no other caller can get any of its
 * numbers (the same protocol as a single draw: see SegmentSlot).  A block
 * lies within one range: one that would cross the end of the current range
 * leaves the rest of that range unused (a gap, as a rollback leaves) and is
 * drawn again from the next range.  n is at most the tag's own step, which
 * every range holds (segment_grant.c never grants less), so a block always
 * fits in a fresh range; the slot learns that step with its first grant, so
 * a call that finds none yet waits for it before checking n.
 */
Datum
idgen_segment_next_block(PG_FUNCTION_ARGS)
{
	SegmentKey	key;
	SegmentSlot *slot;
	uint64		generation;
	bool		freed_once = false;
	int32		n;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("segment block size must not be null")));
	n = PG_GETARG_INT32(1);
	if (n < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("segment block size must be at least 1"),
				 errdetail("The block size given was %d.", n),
				 errhint("Ask for between 1 and the tag's step numbers per call.")));
	segment_check_call(fcinfo, &key);

	slot = segment_lookup(&key, &generation);
	for (;;)
	{
		uint32		block_max = pg_atomic_read_u32(&slot->block_max);
		uint64		end = pg_atomic_read_u64(&slot->cur_end);
		uint64		value;

		if (block_max != 0)
		{
			if ((uint32) n > block_max &&
				pg_atomic_read_u64(&slot->generation) == generation)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("segment block size %d exceeds the step of segment tag \"%s\"",
								n, key.tag),
						 errdetail("A block comes from one range, and every range of this tag holds at least its step, %u numbers.",
								   block_max),
						 errhint("Ask for at most %u numbers per call, or create the tag with a step of at least %d.",
								 block_max, n)));
			pg_read_barrier();
			value = pg_atomic_fetch_add_u64(&slot->cur_next, (uint64) n);
			if (unlikely(pg_atomic_read_u64(&slot->generation) != generation))
			{
				slot = segment_lookup(&key, &generation);
				continue;
			}
			if (value + n <= end && (uint32) n <= block_max)
			{
				uint64		prefetch_at = pg_atomic_read_u64(&slot->prefetch_at);

				if (prefetch_at >= value && prefetch_at < value + n)
				{
					pg_atomic_write_u32(&slot->prefetch_wanted, 1);
					segment_wake_worker(slot, false);
				}
				idgen_count_issued_n(IDGEN_C_SEGMENT_ISSUED, (uint64) n);
				PG_RETURN_INT64((int64) value);
			}
		}
		if (!segment_refill(slot, generation, key.tag, end))
		{
			segment_freed_while_waiting(key.tag, &freed_once);
			slot = segment_lookup(&key, &generation);
		}
	}
}

PG_FUNCTION_INFO_V1(idgen_current_timeline);

/* idgen._current_timeline(): the timeline WAL is written on (segment_create) */
Datum
idgen_current_timeline(PG_FUNCTION_ARGS)
{
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot create segment tags during recovery")));
	PG_RETURN_INT32((int32) GetWALInsertionTimeLine());
}

PG_FUNCTION_INFO_V1(idgen_segment_forget);

/*
 * idgen._segment_forget(tag text): drop a tag's buffers (segment_drop,
 * segment_create).
 */
Datum
idgen_segment_forget(PG_FUNCTION_ARGS)
{
	SegmentKey	key;

	if (idgen_segment_shared == NULL)
		PG_RETURN_VOID();
	segment_tag_key(PG_GETARG_TEXT_PP(0), &key);
	idgen_segment_free_tag(&key, 0);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(idgen_segment_buffers);

/*
 * idgen.segment_buffers() RETURNS TABLE(tag text, ranges_buffered int,
 *   current_start bigint, current_end bigint, next_value bigint,
 *   next_start bigint, next_end bigint, step_in_use bigint,
 *   grants bigint, waiters int)
 */
Datum
idgen_segment_buffers(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	LWLock	   *lock;

	InitMaterializedSRF(fcinfo, 0);
	if (idgen_segment_shared == NULL)
		return (Datum) 0;

	lock = idgen_lwlock(IDGEN_LWLOCK_SEGMENT_HASH);
	LWLockAcquire(lock, LW_SHARED);
	for (int i = 0; i < idgen_segment_max_tags; i++)
	{
		SegmentSlot *slot = &idgen_segment_shared->slots[i];
		Datum		values[10];
		bool		nulls[10] = {false};
		uint64		cur_next;
		uint64		cur_end;
		uint64		cur_start;
		bool		has_next;
		uint64		next_start;
		uint64		next_end;
		int64		step_in_use;
		uint64		grants;
		int			waiters;

		/*
		 * generations change only under the exclusive lock; tags of this
		 * database
		 */
		if (pg_atomic_read_u64(&slot->generation) == 0 || slot->dbid != MyDatabaseId)
			continue;

		/* copy under the spinlock; build datums (which may allocate) after */
		SpinLockAcquire(&slot->mutex);
		cur_next = pg_atomic_read_u64(&slot->cur_next);
		cur_end = pg_atomic_read_u64(&slot->cur_end);
		cur_start = slot->cur_start;
		has_next = slot->has_next;
		next_start = slot->next_start;
		next_end = slot->next_end;
		step_in_use = slot->step_in_use;
		grants = slot->grants;
		waiters = slot->waiters;
		SpinLockRelease(&slot->mutex);

		values[0] = CStringGetTextDatum(slot->tag);
		values[1] = Int32GetDatum((cur_next < cur_end ? 1 : 0) + (has_next ? 1 : 0));
		values[2] = Int64GetDatum((int64) cur_start);
		values[3] = Int64GetDatum((int64) cur_end);
		values[4] = Int64GetDatum((int64) Min(cur_next, cur_end));
		values[5] = Int64GetDatum((int64) next_start);
		values[6] = Int64GetDatum((int64) next_end);
		nulls[5] = nulls[6] = !has_next;
		nulls[2] = nulls[3] = nulls[4] = (cur_end == 0);
		values[7] = Int64GetDatum(step_in_use);
		values[8] = Int64GetDatum((int64) grants);
		values[9] = Int32GetDatum(waiters);

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	LWLockRelease(lock);
	return (Datum) 0;
}
