/*-------------------------------------------------------------------------
 *
 * segment.c
 *	  idgen.segment_next(tag): short, dense, increasing numbers per tag from
 *	  ranges granted by the background worker, with a double buffer.
 *
 * Each tag in use has a slot in a shared hash table (at most
 * idgen.segment_max_tags).  A slot holds the current range, handed out
 * lock-free by fetch-add (see SegmentSlot in segment.h for the protocol),
 * and the next range.  Once idgen.segment_prefetch_at percent of the
 * current range is used, the caller that draws that exact value sets the
 * slot's prefetch flag and wakes the worker, which grants the next range in
 * a transaction of its own (segment_grant.c); the worker also looks at
 * every slot once a second.  A caller that finds the current range used up
 * switches to the next one under the slot's spinlock; if there is none, it
 * asks the worker for a grant and sleeps on the slot's condition variable,
 * for at most idgen.segment_wait_timeout.
 *
 * Ranges come from the worker only after their grant has committed durably,
 * so a caller's rollback never returns numbers, and a crash loses at most
 * the unused part of the buffered ranges (gaps, never repeats).
 *
 * Locks: the hash table is protected by IDGEN_LWLOCK_SEGMENT_HASH (shared
 * to look up, exclusive to add or remove a tag); a slot's non-atomic fields
 * by its spinlock, never held across anything but a few assignments.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "access/xact.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "clock.h"
#include "guc.h"
#include "idgen.h"
#include "segment.h"
#include "shmem.h"
#include "stats.h"

static SegmentShared *segment_shared = NULL;
static HTAB *segment_hash = NULL;

/* This backend's last slot, to skip the hash lookup on repeated calls. */
static SegmentSlot *cached_slot = NULL;
static uint64 cached_generation = 0;

Size
segment_shmem_size(void)
{
	return add_size(MAXALIGN(sizeof(SegmentShared)),
					hash_estimate_size(idgen_segment_max_tags, sizeof(SegmentSlot)));
}

/* Called with AddinShmemInitLock held. */
void
segment_shmem_init(void)
{
	bool		found;
	HASHCTL		info;

	segment_shared = ShmemInitStruct("idgen segments", sizeof(SegmentShared), &found);
	if (!found)
	{
		memset(segment_shared, 0, sizeof(SegmentShared));
		SpinLockInit(&segment_shared->mutex);
		pg_atomic_init_u64(&segment_shared->generation_counter, 0);
		ConditionVariableInit(&segment_shared->grant_cv);
	}

	info.keysize = NAMEDATALEN;
	info.entrysize = sizeof(SegmentSlot);
	segment_hash = ShmemInitHash("idgen segment tags",
								 idgen_segment_max_tags, idgen_segment_max_tags,
								 &info, HASH_ELEM | HASH_STRINGS);
}

static void
segment_require_shared(void)
{
	if (segment_shared == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("idgen segments need idgen to be loaded via shared_preload_libraries"),
				 errdetail("Segment ranges are buffered in shared memory and granted by idgen's background worker."),
				 errhint("Add idgen to shared_preload_libraries in postgresql.conf and restart the server.")));
}

/* Validate a tag argument and copy it, NUL-padded, into key. */
static void
segment_tag_key(text *tag, char *key)
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
	memset(key, 0, NAMEDATALEN);
	memcpy(key, VARDATA_ANY(tag), len);
}

static void
segment_wake_worker(void)
{
	Latch	   *latch;

	SpinLockAcquire(&segment_shared->mutex);
	latch = segment_shared->worker_latch;
	SpinLockRelease(&segment_shared->mutex);
	if (latch)
		SetLatch(latch);
}

/*
 * Set up a slot for a tag, under the exclusive hash lock.  The memory may be
 * that of a dropped tag that a backend still points to: the new generation
 * goes in first, so that such a backend discards whatever it draws from here
 * (segment_next() checks the generation after its fetch-add), and the reset
 * happens under the slot's spinlock, never by re-initialising it (zeroed
 * shared memory is an unlocked spinlock, and a reused one is left unlocked).
 */
static void
segment_slot_init(SegmentSlot *slot)
{
	slot->generation = pg_atomic_add_fetch_u64(&segment_shared->generation_counter, 1);
	pg_write_barrier();
	SpinLockAcquire(&slot->mutex);
	pg_atomic_write_u64(&slot->cur_end, 0);
	pg_atomic_write_u64(&slot->cur_next, 0);
	pg_atomic_write_u64(&slot->prefetch_at, PG_UINT64_MAX);
	pg_atomic_write_u32(&slot->prefetch_wanted, 0);
	slot->cur_start = 0;
	slot->has_next = false;
	slot->next_start = slot->next_end = 0;
	slot->grant_requested = false;
	slot->waiters = 0;
	slot->error_seq = 0;
	slot->error_code = 0;
	slot->error_message[0] = '\0';
	slot->step_in_use = 0;
	slot->last_grant_at = 0;
	slot->grants = 0;
	SpinLockRelease(&slot->mutex);
}

/*
 * With every slot taken, an unknown tag should still say so rather than
 * report the limit: ask the table (through a SECURITY DEFINER function, as
 * callers need not be able to read it).
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

/* Find or create the slot of a tag. */
static SegmentSlot *
segment_lookup(const char *key)
{
	SegmentSlot *slot;
	LWLock	   *lock = idgen_lwlock(IDGEN_LWLOCK_SEGMENT_HASH);
	bool		found;

	if (cached_slot && cached_slot->generation == cached_generation &&
		strcmp(cached_slot->tag, key) == 0)
		return cached_slot;

	LWLockAcquire(lock, LW_SHARED);
	slot = hash_search(segment_hash, key, HASH_FIND, NULL);
	LWLockRelease(lock);

	if (slot == NULL)
	{
		LWLockAcquire(lock, LW_EXCLUSIVE);
		/* shared hash tables grow into spare shared memory: enforce the limit */
		slot = hash_search(segment_hash, key, HASH_FIND, NULL);
		if (slot == NULL && hash_get_num_entries(segment_hash) < idgen_segment_max_tags)
			slot = hash_search(segment_hash, key, HASH_ENTER_NULL, &found);
		else
			found = (slot != NULL);
		if (slot == NULL)
		{
			LWLockRelease(lock);
			segment_require_known_tag(key);
			ereport(ERROR,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("too many segment tags in use"),
					 errdetail("Shared memory holds buffers for at most %d tags (idgen.segment_max_tags), and all are taken.",
							   idgen_segment_max_tags),
					 errhint("Raise idgen.segment_max_tags and restart the server, or drop tags that are no longer used.")));
		}
		if (!found)
			segment_slot_init(slot);
		LWLockRelease(lock);
	}

	cached_slot = slot;
	cached_generation = slot->generation;
	return slot;
}

/* Forget a slot: after segment_drop, or for a tag the worker does not know. */
static void
segment_remove(const char *key)
{
	LWLock	   *lock = idgen_lwlock(IDGEN_LWLOCK_SEGMENT_HASH);
	SegmentSlot *slot;

	LWLockAcquire(lock, LW_EXCLUSIVE);
	slot = hash_search(segment_hash, key, HASH_FIND, NULL);
	if (slot)
	{
		slot->generation = 0;
		pg_write_barrier();
		hash_search(segment_hash, key, HASH_REMOVE, NULL);
		ConditionVariableBroadcast(&segment_shared->grant_cv);
	}
	LWLockRelease(lock);
	cached_slot = NULL;
}

/* Make the buffered next range current.  Caller holds slot->mutex. */
static void
segment_switch(SegmentSlot *slot)
{
	uint64		size = slot->next_end - slot->next_start;
	uint64		used_for_prefetch = size * idgen_segment_prefetch_at / 100;

	slot->cur_start = slot->next_start;
	pg_atomic_write_u64(&slot->prefetch_at, slot->next_start + used_for_prefetch);
	pg_atomic_write_u64(&slot->cur_next, slot->next_start);
	pg_write_barrier();
	pg_atomic_write_u64(&slot->cur_end, slot->next_end);
	slot->has_next = false;
	if (used_for_prefetch == 0)
		pg_atomic_write_u32(&slot->prefetch_wanted, 1);
}

/*
 * Slow path: the range whose end we read is used up.  Switch to the next
 * range, or ask the worker for one and wait.  Returns once a caller may try
 * the fast path again.
 */
/*
 * Sleep until the worker has granted a range for this slot, it reports a
 * failure, the tag is dropped, or idgen.segment_wait_timeout passes.
 */
static void
segment_wait_for_range(SegmentSlot *slot, const char *key, uint64 observed_end,
					   uint32 error_seq)
{
	int64		deadline_ns = idgen_monotonic_ns() +
		(int64) idgen_segment_wait_timeout_ms * 1000000;

	ConditionVariablePrepareToSleep(&segment_shared->grant_cv);
	for (;;)
	{
		bool		done = false;
		int			code = 0;
		char		message[sizeof(slot->error_message)];
		int64		remaining_ns;

		SpinLockAcquire(&slot->mutex);
		if (slot->generation == 0)
			code = ERRCODE_UNDEFINED_OBJECT;
		else if (slot->error_seq != error_seq)
		{
			code = slot->error_code;
			strlcpy(message, slot->error_message, sizeof(message));
		}
		else if (pg_atomic_read_u64(&slot->cur_end) != observed_end || slot->has_next)
			done = true;
		SpinLockRelease(&slot->mutex);

		if (done)
			return;
		if (code == ERRCODE_UNDEFINED_OBJECT)
		{
			segment_remove(key);
			ereport(ERROR,
					(errcode(code),
					 errmsg("segment tag \"%s\" does not exist", key),
					 errhint("Create the tag with idgen.segment_create().")));
		}
		if (code)
			ereport(ERROR,
					(errcode(code),
					 errmsg("could not get a range for segment tag \"%s\"", key),
					 errdetail("idgen's background worker failed to grant one: %s", message)));

		remaining_ns = deadline_ns - idgen_monotonic_ns();
		if (remaining_ns <= 0)
		{
			idgen_count_event(IDGEN_C_SEGMENT_WAIT_TIMEOUTS);
			ereport(ERROR,
					(errcode(IDGEN_ERRCODE_SEGMENT_UNAVAILABLE),
					 errmsg("timed out waiting for a range for segment tag \"%s\"", key),
					 errdetail("Both buffers of the tag were empty and no range was granted within idgen.segment_wait_timeout (%d ms).",
							   idgen_segment_wait_timeout_ms),
					 errhint("Check that the idgen worker is running (pg_stat_activity, backend_type 'idgen worker') in idgen.database, what it waits for (a lock on the tag's row in idgen.segment_alloc, synchronous standbys), and the server log.")));
		}
		(void) ConditionVariableTimedSleep(&segment_shared->grant_cv,
										   Min(remaining_ns / 1000000 + 1, 1000),
										   PG_WAIT_EXTENSION);
		segment_wake_worker();
	}
}

static void
segment_refill(SegmentSlot *slot, const char *key, uint64 observed_end)
{
	uint32		error_seq;

	SpinLockAcquire(&slot->mutex);
	if (pg_atomic_read_u64(&slot->cur_end) != observed_end)
	{
		SpinLockRelease(&slot->mutex);
		return;					/* someone else switched already */
	}
	if (slot->has_next)
	{
		segment_switch(slot);
		SpinLockRelease(&slot->mutex);
		return;
	}
	slot->grant_requested = true;
	slot->waiters++;
	error_seq = slot->error_seq;
	SpinLockRelease(&slot->mutex);

	idgen_count_event(IDGEN_C_SEGMENT_CALLER_WAITS);
	segment_wake_worker();

	/* waiters must come down however the wait ends (cancel included) */
	PG_TRY();
	{
		segment_wait_for_range(slot, key, observed_end, error_seq);
	}
	PG_FINALLY();
	{
		ConditionVariableCancelSleep();
		SpinLockAcquire(&slot->mutex);
		slot->waiters--;
		SpinLockRelease(&slot->mutex);
	}
	PG_END_TRY();
}

PG_FUNCTION_INFO_V1(idgen_segment_next);

/* idgen.segment_next(tag text) RETURNS bigint */
Datum
idgen_segment_next(PG_FUNCTION_ARGS)
{
	char		key[NAMEDATALEN];
	SegmentSlot *slot;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("segment tag must not be null")));
	segment_require_shared();
	segment_tag_key(PG_GETARG_TEXT_PP(0), key);

	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot hand out segment numbers during recovery"),
				 errdetail("Segment ranges are granted only by a primary."),
				 errhint("Call idgen.segment_next() on the primary.")));

	if (segment_shared->database_oid != InvalidOid &&
		segment_shared->database_oid != MyDatabaseId)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("segment numbers are served in database \"%s\" only", idgen_database),
				 errdetail("idgen's background worker grants ranges from the idgen.segment_alloc table of the database named by idgen.database."),
				 errhint("Call idgen.segment_next() in that database, or change idgen.database and restart.")));

	slot = segment_lookup(key);
	for (;;)
	{
		uint64		end = pg_atomic_read_u64(&slot->cur_end);
		uint64		value;

		pg_read_barrier();
		value = pg_atomic_fetch_add_u64(&slot->cur_next, 1);
		if (unlikely(slot->generation != cached_generation))
		{
			/* the tag was dropped (and its slot maybe reused) meanwhile */
			cached_slot = NULL;
			slot = segment_lookup(key);
			continue;
		}
		if (likely(value < end))
		{
			if (unlikely(value == pg_atomic_read_u64(&slot->prefetch_at)))
			{
				pg_atomic_write_u32(&slot->prefetch_wanted, 1);
				segment_wake_worker();
			}
			idgen_count_issued(IDGEN_C_SEGMENT_ISSUED);
			PG_RETURN_INT64((int64) value);
		}
		segment_refill(slot, key, end);
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

/* idgen._segment_forget(tag text): drop a tag's buffers (segment_drop). */
Datum
idgen_segment_forget(PG_FUNCTION_ARGS)
{
	char		key[NAMEDATALEN];

	if (segment_shared == NULL)
		PG_RETURN_VOID();
	segment_tag_key(PG_GETARG_TEXT_PP(0), key);
	segment_remove(key);
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
	HASH_SEQ_STATUS status;
	SegmentSlot *slot;

	InitMaterializedSRF(fcinfo, 0);
	if (segment_shared == NULL)
		return (Datum) 0;

	LWLockAcquire(idgen_lwlock(IDGEN_LWLOCK_SEGMENT_HASH), LW_SHARED);
	hash_seq_init(&status, segment_hash);
	while ((slot = hash_seq_search(&status)) != NULL)
	{
		Datum		values[10];
		bool		nulls[10] = {false};
		uint64		cur_next = pg_atomic_read_u64(&slot->cur_next);
		uint64		cur_end = pg_atomic_read_u64(&slot->cur_end);
		bool		current_left;

		values[0] = CStringGetTextDatum(slot->tag); /* the key: immutable */
		SpinLockAcquire(&slot->mutex);
		current_left = cur_next < cur_end;
		values[1] = Int32GetDatum((current_left ? 1 : 0) + (slot->has_next ? 1 : 0));
		values[2] = Int64GetDatum((int64) slot->cur_start);
		values[3] = Int64GetDatum((int64) cur_end);
		values[4] = Int64GetDatum((int64) Min(cur_next, cur_end));
		values[5] = Int64GetDatum((int64) slot->next_start);
		values[6] = Int64GetDatum((int64) slot->next_end);
		nulls[5] = nulls[6] = !slot->has_next;
		nulls[2] = nulls[3] = nulls[4] = (cur_end == 0);
		values[7] = Int64GetDatum(slot->step_in_use);
		values[8] = Int64GetDatum((int64) slot->grants);
		values[9] = Int32GetDatum(slot->waiters);
		SpinLockRelease(&slot->mutex);

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	LWLockRelease(idgen_lwlock(IDGEN_LWLOCK_SEGMENT_HASH));
	return (Datum) 0;
}

/*
 * Worker side.  The worker publishes its latch so that callers can wake it,
 * and the database it serves so that callers elsewhere get a clear error.
 */
static void
segment_worker_exit(int code, Datum arg)
{
	segment_worker_detach();
}

void
segment_worker_attach(Oid database_oid)
{
	SpinLockAcquire(&segment_shared->mutex);
	segment_shared->worker_latch = MyLatch;
	segment_shared->worker_pid = MyProcPid;
	segment_shared->database_oid = database_oid;
	SpinLockRelease(&segment_shared->mutex);
	before_shmem_exit(segment_worker_exit, (Datum) 0);
}

void
segment_worker_detach(void)
{
	SpinLockAcquire(&segment_shared->mutex);
	if (segment_shared->worker_pid == MyProcPid)
	{
		segment_shared->worker_latch = NULL;
		segment_shared->worker_pid = 0;
	}
	SpinLockRelease(&segment_shared->mutex);
}

/* Does this slot need a range now?  Caller holds slot->mutex. */
static bool
segment_slot_needs_grant(SegmentSlot *slot)
{
	uint64		cur_next;
	uint64		cur_end;

	if (slot->has_next)
		return false;
	if (slot->grant_requested || pg_atomic_read_u32(&slot->prefetch_wanted))
		return true;
	/* the periodic scan: prefetch once the threshold is passed */
	cur_next = pg_atomic_read_u64(&slot->cur_next);
	cur_end = pg_atomic_read_u64(&slot->cur_end);
	return cur_end > 0 && cur_next >= pg_atomic_read_u64(&slot->prefetch_at);
}

/* Run one grant; on failure return the error instead of raising it. */
static ErrorData *
segment_try_grant(const char *tag, SegmentGrant *grant)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ErrorData  *volatile edata = NULL;

	PG_TRY();
	{
		segment_grant_range(tag, grant);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		pgstat_report_activity(STATE_IDLE, NULL);
	}
	PG_END_TRY();
	return edata;
}

/*
 * Grant a range to every slot that needs one.  Each grant is its own
 * transaction; a failure is recorded in the slot for its waiters and does
 * not stop the others.
 */
void
segment_worker_serve(void)
{
	HASH_SEQ_STATUS status;
	SegmentSlot *slot;
	typedef struct SegmentTodo
	{
		char		tag[NAMEDATALEN];
		uint64		generation;
	}			SegmentTodo;
	SegmentTodo *todo;
	int			ntodo = 0;
	int			i;

	todo = palloc(sizeof(SegmentTodo) * idgen_segment_max_tags);
	LWLockAcquire(idgen_lwlock(IDGEN_LWLOCK_SEGMENT_HASH), LW_SHARED);
	hash_seq_init(&status, segment_hash);
	while ((slot = hash_seq_search(&status)) != NULL)
	{
		bool		needed;

		SpinLockAcquire(&slot->mutex);
		needed = segment_slot_needs_grant(slot);
		SpinLockRelease(&slot->mutex);
		if (needed && ntodo < idgen_segment_max_tags)
		{
			memcpy(todo[ntodo].tag, slot->tag, NAMEDATALEN);
			todo[ntodo++].generation = slot->generation;
		}
	}
	LWLockRelease(idgen_lwlock(IDGEN_LWLOCK_SEGMENT_HASH));

	for (i = 0; i < ntodo; i++)
	{
		SegmentGrant grant;
		ErrorData  *edata;
		bool		waited;

		CHECK_FOR_INTERRUPTS();
		edata = segment_try_grant(todo[i].tag, &grant);

		if (edata)
		{
			ereport(LOG,
					(errmsg("idgen worker: could not grant a range for segment tag \"%s\": %s",
							todo[i].tag, edata->message)));
		}

		LWLockAcquire(idgen_lwlock(IDGEN_LWLOCK_SEGMENT_HASH), LW_SHARED);
		slot = hash_search(segment_hash, todo[i].tag, HASH_FIND, NULL);
		/* a tag dropped (and maybe created again) meanwhile gets nothing */
		if (slot && slot->generation == todo[i].generation)
		{
			SpinLockAcquire(&slot->mutex);
			waited = slot->grant_requested;
			slot->grant_requested = false;
			pg_atomic_write_u32(&slot->prefetch_wanted, 0);
			if (edata && edata->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE)
			{
				/* the tag's row is locked by someone: try again later */
				slot->grant_requested = waited;
			}
			else if (edata)
			{
				slot->error_seq++;
				slot->error_code = edata->sqlerrcode;
				strlcpy(slot->error_message, edata->message, sizeof(slot->error_message));
				/* no periodic retries for this range; a caller's request retries */
				pg_atomic_write_u64(&slot->prefetch_at, PG_UINT64_MAX);
			}
			else
			{
				slot->has_next = true;
				slot->next_start = (uint64) grant.start;
				slot->next_end = (uint64) grant.end;
				slot->step_in_use = grant.step;
				slot->last_grant_at = GetCurrentTimestamp();
				slot->grants++;
			}
			SpinLockRelease(&slot->mutex);
			ConditionVariableBroadcast(&segment_shared->grant_cv);
			if (!edata)
			{
				idgen_count_event(IDGEN_C_SEGMENT_GRANTS);
				if (!waited)
					idgen_count_event(IDGEN_C_SEGMENT_PREFETCHES);
				if (grant.burned > 0)
					idgen_count_event(IDGEN_C_SEGMENT_BURNS);
			}
		}
		LWLockRelease(idgen_lwlock(IDGEN_LWLOCK_SEGMENT_HASH));
		if (edata)
			FreeErrorData(edata);
	}
	pfree(todo);
}
