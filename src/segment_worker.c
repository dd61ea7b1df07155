/*-------------------------------------------------------------------------
 *
 * segment_worker.c
 *	  The segment grant worker ("idgen worker"), top to bottom: one per
 *	  database whose segment tags are in use, granting the ranges of that
 *	  database's tags from its idgen.segment_alloc.
 *
 * Like every idgen worker, it starts once recovery has finished (a standby
 * runs none).  The one of idgen.database is registered at start-up and
 * stays, restarted by the postmaster if it dies.  Any other database gets
 * one when a caller there first needs a grant (RegisterDynamicBackgroundWorker,
 * from segment_next.c); it is not restarted, exits once its database has had
 * no tag in shared memory for IDGEN_SEGMENT_WORKER_IDLE_MS or is being
 * dropped, and the next caller that needs it starts it again.  So
 * background work grows with the databases that use segments, not with
 * those that exist.
 *
 * Its life:
 *	1. Connect and attach: publish its latch in its database's entry
 *	   (segment.c), so that callers can wake it.  A second worker started
 *	   for the same database exits.
 *	2. Serve: sleep on the latch, which callers set when a tag needs a
 *	   range, and look at the database's slots once a second in case a
 *	   wake-up was missed, or every IDGEN_SEGMENT_WORKER_HELD_BACK_NAP_MS
 *	   while a granted range waits for the standbys to confirm its fence
 *	   (nothing wakes it when they do).  Each grant is a transaction of its own
 *	   (segment_grant.c); its range reaches the slot once committed and
 *	   confirmed by the standbys that could be promoted.
 *	3. Exit when idle or when its database is dropped, detached under the
 *	   exclusive hash lock, so a caller that takes a slot either finds it
 *	   attached or starts another.
 *
 * Its session runs with synchronous_commit = on regardless of the server's
 * setting, because the grants it commits protect uniqueness across crashes,
 * and with search_path = pg_catalog: it runs as the bootstrap superuser, so
 * nothing a database owner puts on the path may resolve in its queries.
 *
 * One concept, the worker; the grant loop, with its hold-back of ranges
 * until the standbys confirm their fence, makes it over 500 lines.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/dbcommands.h"
#include "miscadmin.h"
#include "replication/slot.h"
#include "replication/walsender_private.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "bgw.h"
#include "clock.h"
#include "guc.h"
#include "idgen.h"
#include "segment.h"
#include "shmem.h"
#include "stats.h"

/* How long the worker sleeps: normally, and while a range is held back. */
#define IDGEN_SEGMENT_WORKER_NAP_MS			1000
#define IDGEN_SEGMENT_WORKER_HELD_BACK_NAP_MS	10

/* A worker outside idgen.database exits after this long without a slot. */
#define IDGEN_SEGMENT_WORKER_IDLE_MS	10000

PGDLLEXPORT void idgen_worker_main(Datum main_arg);
PGDLLEXPORT void idgen_segment_worker_main(Datum main_arg);

static void segment_worker_run(bool permanent);
static bool segment_worker_attach(void);
static bool segment_worker_serve(void);
static XLogRecPtr segment_standbys_flushed(void);
static bool segment_slot_needs_grant(SegmentSlot *slot);
static double segment_slot_rate(SegmentSlot *slot, int64 now_ns);
static void segment_publish(SegmentSlot *slot, uint64 start, uint64 end,
							int64 step, TimestampTz now);
static bool segment_worker_idle_exit(bool permanent);
static void segment_worker_detach_locked(void);
static void segment_worker_exit(int code, Datum arg);

/* This worker's database entry (idgen_segment_dbs), -1 while detached. */
static int	my_dbno = -1;

/* The segment worker of idgen.database, registered at start-up. */
void
idgen_worker_main(Datum main_arg)
{
	idgen_bgw_setup_signals(false);
	idgen_bgw_connect("idgen worker", idgen_database, InvalidOid);
	segment_worker_run(true);
}

/* The segment worker of another database, started on demand. */
void
idgen_segment_worker_main(Datum main_arg)
{
	idgen_bgw_setup_signals(false);
	idgen_bgw_connect("idgen worker", NULL, DatumGetObjectId(main_arg));
	segment_worker_run(false);
}

/*
 * A segment worker's life once connected; permanent: the one of
 * idgen.database, which does not exit when idle.
 */
static void
segment_worker_run(bool permanent)
{
	char	   *dbname;

	/* for the log: the name as it is now (the worker is bound to the OID) */
	StartTransactionCommand();
	dbname = MemoryContextStrdup(TopMemoryContext, get_database_name(MyDatabaseId));
	CommitTransactionCommand();

	SetConfigOption("search_path", "pg_catalog", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("synchronous_commit", "on", PGC_SUSET, PGC_S_OVERRIDE);

	/*
	 * Exit code 1 has the postmaster restart the permanent worker later (with
	 * 0 it would be unregistered); the others are started on demand.
	 */
	if (!segment_worker_attach())
	{
		/* started twice for one database: the other one serves it */
		ereport(DEBUG1,
				(errmsg("idgen worker: database \"%s\" is served by another worker",
						dbname)));
		proc_exit(permanent ? 1 : 0);
	}
	ereport(LOG,
			(errmsg("idgen worker started in database \"%s\"", dbname)));

	for (;;)
	{
		bool		held_back = segment_worker_serve();

		if (!held_back && segment_worker_idle_exit(permanent))
		{
			ereport(LOG,
					(errmsg("idgen worker in database \"%s\" exiting: no segment tag in use",
							dbname)));
			proc_exit(permanent ? 1 : 0);
		}
		idgen_bgw_nap(held_back ? IDGEN_SEGMENT_WORKER_HELD_BACK_NAP_MS :
					  IDGEN_SEGMENT_WORKER_NAP_MS);
	}
}

/*
 * Serve the database this worker is connected to.  False if another worker
 * serves it already (or, which cannot happen, no entry is free).
 */
static bool
segment_worker_attach(void)
{
	LWLock	   *lock = idgen_lwlock(IDGEN_LWLOCK_SEGMENT_HASH);
	bool		attached = false;
	int			dbno;

	LWLockAcquire(lock, LW_EXCLUSIVE);
	dbno = idgen_segment_db_for(MyDatabaseId, true);
	if (dbno >= 0)
	{
		SegmentDatabase *db = &idgen_segment_dbs[dbno];

		SpinLockAcquire(&idgen_segment_shared->mutex);
		if (db->worker_pid == 0)
		{
			db->worker_pid = MyProcPid;
			db->worker_latch = MyLatch;
			db->launched_at = 0;
			db->exit_requested = false;
			attached = true;
		}
		SpinLockRelease(&idgen_segment_shared->mutex);
	}
	if (attached)
		my_dbno = dbno;
	LWLockRelease(lock);
	if (attached)
		before_shmem_exit(segment_worker_exit, (Datum) 0);
	return attached;
}

/*
 * Grant a range to every slot that needs one, and publish the held-back
 * ranges the standbys have confirmed meanwhile.  Each grant is its own
 * transaction; a failure is recorded in the slot for its waiters and does
 * not stop the others.  Returns whether a range is still held back (the
 * worker then looks again soon).
 */
static bool
segment_worker_serve(void)
{
	LWLock	   *lock = idgen_lwlock(IDGEN_LWLOCK_SEGMENT_HASH);
	typedef struct SegmentTodo
	{
		int			slotno;
		uint64		generation;
		char		tag[NAMEDATALEN];
		int64		fence;
		XLogRecPtr	fence_lsn;
		int64		fence_confirmed;
		double		rate;		/* numbers per second drawn from the current
								 * range, or 0 */
	} SegmentTodo;
	SegmentTodo *todo;
	int			ntodo = 0;
	bool		held_back = false;
	bool		released = false;
	XLogRecPtr	flushed = segment_standbys_flushed();
	TimestampTz now = GetCurrentTimestamp();
	int64		now_ns = idgen_monotonic_ns();

	todo = palloc(sizeof(SegmentTodo) * idgen_segment_max_tags);
	LWLockAcquire(lock, LW_SHARED);
	for (int i = 0; i < idgen_segment_max_tags; i++)
	{
		SegmentSlot *slot = &idgen_segment_shared->slots[i];
		uint64		generation = pg_atomic_read_u64(&slot->generation);
		bool		needed;

		/* dbid is stable while the generation is, under the hash lock */
		if (generation == 0 || slot->dbid != MyDatabaseId)
			continue;
		SpinLockAcquire(&slot->mutex);
		if (!XLogRecPtrIsInvalid(slot->fence_lsn) && slot->fence_lsn <= flushed)
			slot->fence_confirmed = Max(slot->fence_confirmed, slot->fence);
		if (slot->has_pending && slot->pending_lsn <= flushed)
		{
			slot->has_pending = false;
			segment_publish(slot, slot->pending_start, slot->pending_end,
							slot->pending_step, now);
			released = true;
		}
		held_back |= slot->has_pending;
		needed = segment_slot_needs_grant(slot);
		if (needed)
		{
			todo[ntodo].slotno = i;
			todo[ntodo].generation = generation;
			memcpy(todo[ntodo].tag, slot->tag, NAMEDATALEN);
			todo[ntodo].fence = slot->fence;
			todo[ntodo].fence_lsn = slot->fence_lsn;
			todo[ntodo].fence_confirmed = slot->fence_confirmed;
			todo[ntodo].rate = segment_slot_rate(slot, now_ns);
			ntodo++;
		}
		SpinLockRelease(&slot->mutex);
	}
	LWLockRelease(lock);
	if (released)
		ConditionVariableBroadcast(&idgen_segment_shared->grant_cv);

	for (int i = 0; i < ntodo; i++)
	{
		SegmentSlot *slot = &idgen_segment_shared->slots[todo[i].slotno];
		SegmentGrant grant;
		ErrorData  *edata;
		bool		waited = false;
		bool		confirmed = true;
		bool		published = false;

		CHECK_FOR_INTERRUPTS();
		edata = idgen_segment_grant(todo[i].tag, todo[i].fence, todo[i].fence_lsn,
									todo[i].fence_confirmed, todo[i].rate, &grant);

		if (edata)
		{
			ereport(LOG,
					(errmsg("idgen worker: could not grant a range for segment tag \"%s\": %s",
							todo[i].tag, edata->message)));
			if (edata->sqlerrcode == ERRCODE_UNDEFINED_OBJECT)
			{
				/* not in the table: free the slot, its waiters fail */
				SegmentKey	key;

				memset(&key, 0, sizeof(key));
				memcpy(key.tag, todo[i].tag, NAMEDATALEN);
				key.dbid = MyDatabaseId;
				idgen_segment_free_tag(&key, todo[i].generation);
				FreeErrorData(edata);
				continue;
			}
		}
		else if (!XLogRecPtrIsInvalid(grant.need_lsn))
			confirmed = grant.need_lsn <= segment_standbys_flushed();
		now = GetCurrentTimestamp();

		LWLockAcquire(lock, LW_EXCLUSIVE);

		/*
		 * Ranges of another table (the extension or its database dropped and
		 * created again, unseen by the hook) must not stay next to this one.
		 */
		if (!edata && idgen_segment_dbs[my_dbno].alloc_relid != InvalidOid &&
			idgen_segment_dbs[my_dbno].alloc_relid != grant.relid)
		{
			ereport(LOG,
					(errmsg("idgen worker: idgen.segment_alloc is not the table the buffered ranges were granted from; forgetting them")));
			idgen_segment_free_database_locked(MyDatabaseId);
		}
		if (!edata)
			idgen_segment_dbs[my_dbno].alloc_relid = grant.relid;

		/* a tag freed (and maybe taken again) meanwhile gets nothing */
		if (pg_atomic_read_u64(&slot->generation) == todo[i].generation)
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

				/*
				 * no periodic retries for this range; a caller's request
				 * retries
				 */
				pg_atomic_write_u64(&slot->prefetch_at, PG_UINT64_MAX);
			}
			else
			{
				pg_atomic_write_u32(&slot->block_max, (uint32) grant.tag_step);
				if (grant.fence >= 0)
				{
					slot->fence = grant.fence;
					slot->fence_lsn = grant.commit_lsn;
				}
				if (confirmed)
					segment_publish(slot, (uint64) grant.start, (uint64) grant.end,
									grant.step, now);
				else
				{
					slot->has_pending = true;
					slot->pending_start = (uint64) grant.start;
					slot->pending_end = (uint64) grant.end;
					slot->pending_step = grant.step;
					slot->pending_lsn = grant.need_lsn;
					held_back = true;
				}
				published = true;
			}
			SpinLockRelease(&slot->mutex);
		}
		LWLockRelease(lock);
		ConditionVariableBroadcast(&idgen_segment_shared->grant_cv);

		if (published)
		{
			idgen_count_event(IDGEN_C_SEGMENT_GRANTS);
			if (!waited)
				idgen_count_event(IDGEN_C_SEGMENT_PREFETCHES);
			if (grant.burned > 0)
				idgen_count_event(IDGEN_C_SEGMENT_BURNS);
		}
		if (edata)
			FreeErrorData(edata);
	}
	pfree(todo);
	return held_back;
}

/*
 * How far every standby that could be promoted has flushed WAL: the least
 * flush position of the connected physical walsenders and the restart_lsn
 * of the physical replication slots (a slot stays while its standby is
 * disconnected, so a standby that is down still counts).  With none of
 * them, there is nothing to wait for: PG_UINT64_MAX.
 *
 * Not counted: logical walsenders (their subscribers are not standbys),
 * base backups, temporary slots, walsenders that have not reported a flush
 * position yet, and standbys the primary does not know of (archive-only,
 * cascaded, or disconnected without a slot).
 */
static XLogRecPtr
segment_standbys_flushed(void)
{
	XLogRecPtr	result = PG_UINT64_MAX;

	for (int i = 0; WalSndCtl != NULL && i < max_wal_senders; i++)
	{
		WalSnd	   *walsnd = &WalSndCtl->walsnds[i];
		pid_t		pid;
		WalSndState state;
		XLogRecPtr	flush;
		PGPROC	   *proc;

		SpinLockAcquire(&walsnd->mutex);
		pid = walsnd->pid;
		state = walsnd->state;
		flush = walsnd->flush;
		SpinLockRelease(&walsnd->mutex);

		if (pid == 0 || state == WALSNDSTATE_BACKUP || XLogRecPtrIsInvalid(flush))
			continue;
		/* a logical walsender is connected to a database */
		proc = BackendPidGetProc(pid);
		if (proc == NULL || proc->databaseId != InvalidOid)
			continue;
		result = Min(result, flush);
	}

	if (ReplicationSlotCtl != NULL)
	{
		LWLockAcquire(ReplicationSlotControlLock, LW_SHARED);
		for (int i = 0; i < max_replication_slots; i++)
		{
			ReplicationSlot *s = &ReplicationSlotCtl->replication_slots[i];
			XLogRecPtr	restart_lsn;

			if (!s->in_use || !SlotIsPhysical(s) ||
				s->data.persistency != RS_PERSISTENT)
				continue;
			SpinLockAcquire(&s->mutex);
			restart_lsn = s->data.restart_lsn;
			SpinLockRelease(&s->mutex);
			if (!XLogRecPtrIsInvalid(restart_lsn))
				result = Min(result, restart_lsn);
		}
		LWLockRelease(ReplicationSlotControlLock);
	}
	return result;
}

/* Does this slot need a range now?  Caller holds slot->mutex. */
static bool
segment_slot_needs_grant(SegmentSlot *slot)
{
	uint64		cur_next;
	uint64		cur_end;

	if (slot->has_next || slot->has_pending)
		return false;
	if (slot->grant_requested || pg_atomic_read_u32(&slot->prefetch_wanted))
		return true;
	/* the periodic scan: prefetch once the threshold is passed */
	cur_next = pg_atomic_read_u64(&slot->cur_next);
	cur_end = pg_atomic_read_u64(&slot->cur_end);
	return cur_end > 0 && cur_next >= pg_atomic_read_u64(&slot->prefetch_at);
}

/*
 * The rate at which callers drew the current range: the numbers drawn since
 * it became current over the time since, or 0 if unknown.  Measured when
 * the next range is wanted (the prefetch point, or a caller waiting), so
 * over at least idgen.segment_prefetch_at percent of the range; an
 * underestimate if callers have waited meanwhile.  Caller holds
 * slot->mutex.
 */
static double
segment_slot_rate(SegmentSlot *slot, int64 now_ns)
{
	uint64		cur_end = pg_atomic_read_u64(&slot->cur_end);
	uint64		drawn = Min(pg_atomic_read_u64(&slot->cur_next), cur_end);

	if (slot->cur_since_ns == 0 || cur_end == 0 || drawn <= slot->cur_start ||
		now_ns <= slot->cur_since_ns)
		return 0;
	return (double) (drawn - slot->cur_start) * 1e9 / (double) (now_ns - slot->cur_since_ns);
}

/* Put a granted range in the slot's second buffer.  Caller holds mutex. */
static void
segment_publish(SegmentSlot *slot, uint64 start, uint64 end, int64 step,
				TimestampTz now)
{
	slot->has_next = true;
	slot->next_start = start;
	slot->next_end = end;
	slot->step_in_use = step;
	slot->last_grant_at = now;
	slot->grants++;
}

/*
 * Whether this worker is to exit now, detached: its database is being
 * dropped, or (unless permanent) it has had no slot for
 * IDGEN_SEGMENT_WORKER_IDLE_MS.
 */
static bool
segment_worker_idle_exit(bool permanent)
{
	static int64 idle_since_ns = 0;
	LWLock	   *lock = idgen_lwlock(IDGEN_LWLOCK_SEGMENT_HASH);
	SegmentDatabase *db = &idgen_segment_dbs[my_dbno];
	bool		exit_requested;
	int64		now_ns = idgen_monotonic_ns();

	LWLockAcquire(lock, LW_SHARED);
	if (db->nslots > 0)
		idle_since_ns = 0;
	else if (idle_since_ns == 0)
		idle_since_ns = now_ns;
	SpinLockAcquire(&idgen_segment_shared->mutex);
	exit_requested = db->exit_requested;
	SpinLockRelease(&idgen_segment_shared->mutex);
	LWLockRelease(lock);
	if (idle_since_ns == 0 ||
		!(exit_requested ||
		  (!permanent && now_ns - idle_since_ns >= (int64) IDGEN_SEGMENT_WORKER_IDLE_MS * IDGEN_NS_PER_MS)))
		return false;

	/* a caller may have taken a slot meanwhile: look again, exclusively */
	LWLockAcquire(lock, LW_EXCLUSIVE);
	if (db->nslots > 0)
	{
		LWLockRelease(lock);
		idle_since_ns = 0;
		return false;
	}
	segment_worker_detach_locked();
	LWLockRelease(lock);
	return true;
}

/*
 * Withdraw this worker's latch from its database's entry.  Under the
 * exclusive hash lock (the caller holds it), so a caller that takes a slot
 * either finds the worker attached or starts another.
 */
static void
segment_worker_detach_locked(void)
{
	SegmentDatabase *db = &idgen_segment_dbs[my_dbno];

	SpinLockAcquire(&idgen_segment_shared->mutex);
	if (db->worker_pid == MyProcPid)
	{
		db->worker_latch = NULL;
		db->worker_pid = 0;
	}
	SpinLockRelease(&idgen_segment_shared->mutex);
	idgen_segment_db_release_if_unused(db);
	my_dbno = -1;
}

/* Detach however the worker exits (before_shmem_exit callback). */
static void
segment_worker_exit(int code, Datum arg)
{
	LWLock	   *lock = idgen_lwlock(IDGEN_LWLOCK_SEGMENT_HASH);

	if (my_dbno < 0)
		return;
	/* exiting on an error may hold it: nothing else is done after this */
	LWLockReleaseAll();
	LWLockAcquire(lock, LW_EXCLUSIVE);
	segment_worker_detach_locked();
	LWLockRelease(lock);
}
