/*-------------------------------------------------------------------------
 *
 * floor.c
 *	  The durable Snowflake time floor: raising it, its WAL record and
 *	  replay (idgen's custom resource manager), its state file, the
 *	  fence the lease worker passes through, and the write at shutdown.
 *
 * The floor is the highest time whose IDs may have been issued.  Before an
 * ID whose tick starts after the floor leaves snowflake_next(), the floor
 * is raised to that time plus idgen.time_floor_reserve (idgen_floor_raise())
 * and made durable twice:
 *
 *	1. A WAL record of idgen's custom resource manager, flushed (and, when
 *	   synchronous standbys are configured, acknowledged by them within
 *	   idgen.sync_standby_timeout, else IG009) whatever synchronous_commit
 *	   says.  Standbys replay it, so a promoted standby starts above its old
 *	   primary's floor even though it inherited a stale state file through
 *	   its base backup.
 *	2. The state file (statefile.c: temporary name, fsync, durable_rename).
 *	   WAL before the last checkpoint is not replayed after a crash; the
 *	   file covers that.
 *
 * The raise is started early, once issued time is within half the reserve
 * of the floor, by whichever backend gets the lock without waiting, so
 * callers rarely wait for it; those that must wait sleep on a condition
 * variable until it is done.  The early raise is optional: if the
 * synchronous standbys do not confirm it in time, the floor stays, the
 * caller's ID (below it) goes out, and no early raise is tried again until
 * a needed one has succeeded.
 *
 * Replay (redo) writes the file too and raises the floor, so that a
 * crash-recovered primary and a promoted standby both refuse to issue at or
 * below the replayed floor.  Times that count as issued (the floor found at
 * start-up, a replayed floor, the recorded floor of a leased id's previous
 * holders) are published in issued_to_ms; Snowflake's state word catches
 * up with it before its next ID (snowflake.c), so this file never touches
 * the Snowflake state.
 *
 * Permission and floor together: a raise re-checks, under the floor lock,
 * that the permission the caller read (lease.h) is still the published
 * one, and the caller checks it again after its floor read or raise; an ID
 * goes out only with a tick starting at or below a floor read under its
 * permission.  So once the lease worker has withdrawn a permission and
 * passed through the floor lock (idgen_floor_fence()), the floor bounds
 * every ID that can still leave under the withdrawn permission, which is
 * what it reports to the coordinator when it gives the id back.
 *
 * Locking protocol (IdgenFloorShared, floor.h):
 *	- floor_ms and issued_to_ms are atomics, read without a lock.  floor_ms
 *	  is written only by the holder of IDGEN_LWLOCK_FLOOR (exclusive), and
 *	  only after the new value is durable; issued_to_ms only ever grows, by
 *	  compare-and-swap.
 *	- IDGEN_LWLOCK_FLOOR is held across a raise's WAL flush, fsync and wait
 *	  for synchronous standbys (at most idgen.sync_standby_timeout).  Other
 *	  backends do not queue on it: they sleep on the condition variable
 *	  "raised", which the holder broadcasts when it lets go, and stop as
 *	  soon as the floor covers what they need.  Only the lease worker waits
 *	  for the lock itself, once, in idgen_floor_fence().
 *	- early_raise_failed is written under the lock and read without it.
 *	- unusable and its texts are set in the postmaster at start-up, or
 *	  under the lock by replay; the texts first, then a write barrier, then
 *	  the flag, which only goes from false to true.
 *
 * Over 500 lines because the floor is one concept: its raise, record,
 * replay, file and fence guard one invariant and are read together.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "access/xloginsert.h"
#include "access/xlogreader.h"
#include "access/rmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "replication/syncrep.h"
#include "replication/walsender.h"
#include "replication/walsender_private.h"
#include "storage/condition_variable.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/wait_event.h"

#include "clock.h"
#include "errcodes.h"
#include "floor.h"
#include "guc.h"
#include "idgen.h"
#include "lease.h"
#include "shmem.h"
#include "statefile.h"
#include "stats.h"

/* The record is a state record (statefile.h): magic and version first, CRC last. */
StaticAssertDecl(offsetof(IdgenFloorRecord, crc) + sizeof(uint32) == sizeof(IdgenFloorRecord),
				 "the floor record's CRC must be its last field");

IdgenFloorShared *idgen_floor = NULL;

static void floor_replay(const IdgenFloorRecord *rec);

/* ---------- the layout ---------- */

void
idgen_layout_current(IdgenLayout *layout)
{
	memset(layout, 0, sizeof(*layout));
	layout->timestamp_bits = idgen_timestamp_bits;
	layout->worker_bits = idgen_worker_bits;
	layout->sequence_bits = idgen_sequence_bits;
	layout->tick_ms = idgen_tick_ms;
	layout->epoch_ms = idgen_epoch_ms;
}

bool
idgen_layout_equal(const IdgenLayout *a, const IdgenLayout *b)
{
	return a->timestamp_bits == b->timestamp_bits &&
		a->worker_bits == b->worker_bits &&
		a->sequence_bits == b->sequence_bits &&
		a->tick_ms == b->tick_ms &&
		a->epoch_ms == b->epoch_ms;
}

char *
idgen_layout_describe(const IdgenLayout *layout)
{
	return psprintf("%d/%d/%d bits, tick %d ms, epoch %lld ms since 1970-01-01",
					layout->timestamp_bits, layout->worker_bits,
					layout->sequence_bits, layout->tick_ms,
					(long long) layout->epoch_ms);
}

/* ---------- the state file ---------- */

typedef enum FloorFileRead
{
	FLOOR_FILE_ABSENT,
	FLOOR_FILE_OK,
	FLOOR_FILE_CORRUPT
} FloorFileRead;

static FloorFileRead
floor_read_file(IdgenFloorRecord *rec)
{
	switch (idgen_statefile_read(IDGEN_FLOOR_FILE, rec, sizeof(*rec),
								 IDGEN_FLOOR_MAGIC, IDGEN_FLOOR_VERSION, ERROR, NULL))
	{
		case IDGEN_STATE_ABSENT:
			return FLOOR_FILE_ABSENT;
		case IDGEN_STATE_OK:
			return FLOOR_FILE_OK;
		case IDGEN_STATE_CORRUPT:
			break;
	}
	return FLOOR_FILE_CORRUPT;
}

/*
 * Write the file durably; rec's magic, version and crc are filled in.
 * elevel is ERROR where an ID depends on the write, LOG for the best-effort
 * lowering at shutdown (an exit callback cannot raise an ERROR, and a
 * failed lowering keeps the higher floor, which is safe).
 */
static void
floor_write_file(IdgenFloorRecord *rec, int elevel)
{
	(void) idgen_statefile_write(IDGEN_FLOOR_FILE, rec, sizeof(*rec),
								 IDGEN_FLOOR_MAGIC, IDGEN_FLOOR_VERSION, elevel);
}

/* ---------- WAL and the synchronous standbys ---------- */

/*
 * Whether synchronous standbys are configured and, if so, whether they
 * have all confirmed flushing WAL up to lsn.
 */
static bool
sync_standbys_confirmed(XLogRecPtr lsn)
{
	bool		defined;
	bool		confirmed;

	LWLockAcquire(SyncRepLock, LW_SHARED);
#ifdef SYNC_STANDBY_DEFINED
	defined = (WalSndCtl->sync_standbys_status & SYNC_STANDBY_DEFINED) != 0;
#else
	defined = WalSndCtl->sync_standbys_defined;
#endif
	confirmed = WalSndCtl->lsn[SYNC_REP_WAIT_FLUSH] >= lsn;
	LWLockRelease(SyncRepLock);
	return !defined || confirmed;
}

/*
 * Wait until synchronous standbys, if any are configured, have confirmed
 * lsn: for at most idgen.sync_standby_timeout, then fail with IG009, so
 * that nothing relying on lsn gets ahead of them and no caller (nor the
 * callers waiting for the floor lock behind it) hangs for as long as a
 * standby is down.  A cancel or termination ends the wait with 57014.
 *
 * The caller may hold an LWLock, which holds off interrupts, so the flags
 * are checked here, as SyncRepWaitForLSN() does.  The walsender does not
 * wake us, so we poll its confirmed position: at 1 ms at first, backing
 * off to 10 ms.  After a commit, whose own wait may have been cancelled
 * with only a WARNING, this returns at once if the standbys have it.
 *
 * With must false, running out of idgen.sync_standby_timeout returns false
 * instead: for a caller that can go on without the confirmation.
 */
static bool
wait_for_sync_standbys(XLogRecPtr lsn, const char *what, bool must)
{
	int64		start_ns;
	long		nap_ms = 1;

	if (max_wal_senders == 0 || WalSndCtl == NULL)
		return true;
	start_ns = idgen_monotonic_ns();
	while (!sync_standbys_confirmed(lsn))
	{
		int64		waited_ms = (idgen_monotonic_ns() - start_ns) / IDGEN_NS_PER_MS;

		if (ProcDiePending || QueryCancelPending)
		{
			QueryCancelPending = false;
			ereport(ERROR,
					(errcode(ERRCODE_QUERY_CANCELED),
					 errmsg("the wait for synchronous standbys to confirm %s was cancelled", what),
					 errdetail("The standbys had not flushed WAL up to %X/%X.",
							   LSN_FORMAT_ARGS(lsn)),
					 errhint("Nothing that depends on it was handed out; retry.")));
		}
		if (waited_ms >= idgen_sync_standby_timeout_ms && !must)
			return false;
		if (waited_ms >= idgen_sync_standby_timeout_ms)
			ereport(ERROR,
					(errcode(ERRCODE_IDGEN_STANDBY_TIMEOUT),
					 errmsg("synchronous standbys did not confirm %s within %d ms", what,
							idgen_sync_standby_timeout_ms),
					 errdetail("The standbys named in synchronous_standby_names had not flushed WAL up to %X/%X when idgen.sync_standby_timeout ran out.",
							   LSN_FORMAT_ARGS(lsn)),
					 errhint("Nothing that depends on it was handed out. Check the synchronous standbys (pg_stat_replication); calls succeed again once they confirm.")));
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 Min(nap_ms, (long) (idgen_sync_standby_timeout_ms - waited_ms)),
						 WAIT_EVENT_SYNC_REP);
		ResetLatch(MyLatch);
		nap_ms = Min(nap_ms * 2, 10);
	}
	return true;
}

void
idgen_require_sync_standby_ack(XLogRecPtr lsn, const char *what)
{
	(void) wait_for_sync_standbys(lsn, what, true);
}

/*
 * WAL-log the floor and wait until it is flushed locally and, if synchronous
 * standbys are configured, acknowledged by them (within
 * idgen.sync_standby_timeout): regardless of this session's
 * synchronous_commit.  Returns whether the standbys confirmed it.  Only
 * with must_confirm false can that be false; otherwise their silence is an
 * error (IG009).  An early raise passes false: its caller's ID is below the
 * floor already and must not fail for want of a raise it did not need.
 */
static bool
floor_log_and_flush(IdgenFloorRecord *rec, bool must_confirm)
{
	XLogRecPtr	lsn;

	idgen_statefile_seal(rec, sizeof(*rec), IDGEN_FLOOR_MAGIC, IDGEN_FLOOR_VERSION);

	XLogBeginInsert();
	XLogRegisterData((char *) rec, sizeof(*rec));
	lsn = XLogInsert(IDGEN_RMGR_ID, XLOG_IDGEN_FLOOR);
	XLogFlush(lsn);
	return wait_for_sync_standbys(lsn, "the new Snowflake time floor", must_confirm);
}

static void
idgen_rmgr_redo(XLogReaderState *record)
{
	uint8		info = XLogRecGetInfo(record) & ~XLR_INFO_MASK;
	IdgenFloorRecord rec;

	if (info != XLOG_IDGEN_FLOOR)
		elog(PANIC, "idgen redo: unknown op code %u", info);
	if (XLogRecGetDataLen(record) != sizeof(rec))
		elog(PANIC, "idgen redo: floor record has length %u, expected %zu",
			 (unsigned) XLogRecGetDataLen(record), sizeof(rec));
	memcpy(&rec, XLogRecGetData(record), sizeof(rec));
	floor_replay(&rec);
}

static void
idgen_rmgr_desc(StringInfo buf, XLogReaderState *record)
{
	uint8		info = XLogRecGetInfo(record) & ~XLR_INFO_MASK;

	if (info == XLOG_IDGEN_FLOOR &&
		XLogRecGetDataLen(record) == sizeof(IdgenFloorRecord))
	{
		IdgenFloorRecord rec;

		memcpy(&rec, XLogRecGetData(record), sizeof(rec));
		appendStringInfo(buf, "floor %lld ms, worker %d, layout %s",
						 (long long) rec.floor_ms, rec.worker_id,
						 idgen_layout_describe(&rec.layout));
	}
}

static const char *
idgen_rmgr_identify(uint8 info)
{
	if ((info & ~XLR_INFO_MASK) == XLOG_IDGEN_FLOOR)
		return "SNOWFLAKE_FLOOR";
	return NULL;
}

static RmgrData idgen_rmgr = {
	.rm_name = IDGEN_RMGR_NAME,
	.rm_redo = idgen_rmgr_redo,
	.rm_desc = idgen_rmgr_desc,
	.rm_identify = idgen_rmgr_identify,
};

void
idgen_floor_register_rmgr(void)
{
	RegisterCustomRmgr(IDGEN_RMGR_ID, &idgen_rmgr);
}

/* ---------- shared state ---------- */

static void
floor_mark_unusable(const char *summary, const char *reason, const char *hint)
{
	/* the texts first: readers that see the flag print them at once */
	strlcpy(idgen_floor->unusable_summary, summary,
			sizeof(idgen_floor->unusable_summary));
	strlcpy(idgen_floor->unusable_reason, reason,
			sizeof(idgen_floor->unusable_reason));
	strlcpy(idgen_floor->unusable_hint, hint,
			sizeof(idgen_floor->unusable_hint));
	pg_write_barrier();
	idgen_floor->unusable = true;
}

/* Count every time up to floor_ms as issued (see issued_to_ms). */
static void
floor_raise_issued_to(int64 floor_ms)
{
	uint64		target = (uint64) Max(floor_ms, 0);
	uint64		last = pg_atomic_read_u64(&idgen_floor->issued_to_ms);

	while (last < target &&
		   !pg_atomic_compare_exchange_u64(&idgen_floor->issued_to_ms, &last, target))
		;
}

Size
idgen_floor_shmem_size(void)
{
	return sizeof(IdgenFloorShared);
}

/*
 * Called with AddinShmemInitLock held, in the postmaster (and again after a
 * crash restart): load the persisted floor and layout.
 */
void
idgen_floor_shmem_init(void)
{
	bool		found;
	IdgenFloorRecord rec;
	IdgenLayout current;
	int64		floor_ms = 0;

	idgen_floor = ShmemInitStruct("idgen floor", sizeof(IdgenFloorShared), &found);
	if (found)
		return;

	memset(idgen_floor, 0, sizeof(IdgenFloorShared));
	idgen_layout_current(&current);

	switch (floor_read_file(&rec))
	{
		case FLOOR_FILE_ABSENT:
			break;
		case FLOOR_FILE_OK:
			floor_ms = rec.floor_ms;
			if (!idgen_layout_equal(&rec.layout, &current))
			{
				floor_mark_unusable("the layout differs from the one this database first used",
									psprintf("This data directory first issued Snowflake IDs with the layout %s; the settings now give %s.",
											 idgen_layout_describe(&rec.layout),
											 idgen_layout_describe(&current)),
									"IDs of two layouts can collide. Restore the original idgen.epoch, idgen.tick and bit settings, or, if no IDs of the old layout remain in use, remove the file " IDGEN_FLOOR_FILE " from the data directory and restart.");
				ereport(WARNING,
						(errmsg("idgen: Snowflake layout changed; snowflake_next() will refuse"),
						 errdetail_internal("%s", idgen_floor->unusable_reason)));
			}
			break;
		case FLOOR_FILE_CORRUPT:
			floor_mark_unusable("the Snowflake state file is damaged",
								"The file " IDGEN_FLOOR_FILE " in the data directory is damaged, so the time floor and layout are unknown.",
								"Restore the file from a backup, or, once the clock is certainly past every ID issued, remove it and restart.");
			ereport(WARNING,
					(errmsg("idgen: Snowflake state file \"%s\" is damaged; snowflake_next() will refuse",
							IDGEN_FLOOR_FILE)));
			break;
	}

	pg_atomic_init_u64(&idgen_floor->floor_ms, (uint64) Max(floor_ms, 0));
	pg_atomic_init_u64(&idgen_floor->issued_to_ms, (uint64) Max(floor_ms, 0));
	pg_atomic_init_u32(&idgen_floor->early_raise_failed, 0);
	ConditionVariableInit(&idgen_floor->raised);
}

/*
 * WAL replay of a floor record (crash recovery, or a standby following its
 * primary): persist it, raise the floor, and count its time as issued.
 */
static void
floor_replay(const IdgenFloorRecord *rec)
{
	IdgenLayout current;

	if (idgen_floor == NULL)
		return;

	idgen_layout_current(&current);

	LWLockAcquire(idgen_lwlock(IDGEN_LWLOCK_FLOOR), LW_EXCLUSIVE);
	if (!idgen_layout_equal(&rec->layout, &current) && !idgen_floor->unusable)
		floor_mark_unusable("the layout differs from the primary's",
							psprintf("The primary issued Snowflake IDs with the layout %s; this server's settings give %s.",
									 idgen_layout_describe(&rec->layout),
									 idgen_layout_describe(&current)),
							"Give every server that shares WAL the same idgen.epoch, idgen.tick and bit settings.");

	if (rec->floor_ms > idgen_floor_ms())
	{
		IdgenFloorRecord copy = *rec;

		floor_write_file(&copy, ERROR);
		pg_atomic_write_u64(&idgen_floor->floor_ms, (uint64) rec->floor_ms);
	}

	floor_raise_issued_to(rec->floor_ms);
	LWLockRelease(idgen_lwlock(IDGEN_LWLOCK_FLOOR));
}

/*
 * At clean shutdown of the postmaster (snowflake.c's exit callback), lower
 * the persisted floor to the last tick actually issued, so that a prompt
 * restart need not wait out the reserve.  Nothing above that tick was
 * issued, so this is safe; a standby keeps the higher replayed floor.
 */
void
idgen_floor_lower_at_shutdown(int64 last_issued_ms)
{
	IdgenFloorRecord rec;
	IdgenPermission perm;

	if (idgen_floor == NULL || idgen_floor->unusable)
		return;

	/*
	 * Times counted as issued (a leased id's previous holders) stay covered
	 * even when no ID was issued since they were counted.
	 */
	last_issued_ms = Max(last_issued_ms, idgen_floor_issued_to_ms());
	if (last_issued_ms >= idgen_floor_ms())
		return;

	memset(&rec, 0, sizeof(rec));
	idgen_layout_current(&rec.layout);
	rec.floor_ms = last_issued_ms;
	idgen_permission_read(&perm);
	rec.worker_id = perm.worker_id;
	floor_write_file(&rec, LOG);
}

/* ---------- for the lease worker ---------- */

/*
 * A worker id has been leased.  Count the time floor its previous holders
 * recorded as issued, before the permission to issue with it is published
 * (the barrier orders the two).
 */
void
idgen_floor_raise_for_holding(int64 previous_floor_ms)
{
	floor_raise_issued_to(previous_floor_ms);
	pg_write_barrier();
}

/*
 * After withdrawing a permission: wait for a floor raise in progress
 * (bounded by idgen.sync_standby_timeout) and return the floor, Unix ms.
 * Later raises see the withdrawal under the lock and do not happen, so no
 * ID under the withdrawn permission carries a later time.
 */
int64
idgen_floor_fence(void)
{
	LWLock	   *lock = idgen_lwlock(IDGEN_LWLOCK_FLOOR);
	int64		floor_ms;

	LWLockAcquire(lock, LW_EXCLUSIVE);
	floor_ms = idgen_floor_ms();
	LWLockRelease(lock);
	return floor_ms;
}

/* ---------- raising the floor ---------- */

/*
 * Raise the durable floor so that a tick starting at needed_ms may be
 * issued under perm.  With must_wait false, give up at once if another
 * process is already raising it (the caller is still below the floor).
 * Nothing is raised for a permission that is no longer the published one.
 */
void
idgen_floor_raise(int64 needed_ms, bool must_wait, const IdgenPermission *perm)
{
	LWLock	   *lock = idgen_lwlock(IDGEN_LWLOCK_FLOOR);
	ConditionVariable *cv = &idgen_floor->raised;
	int64		reserve = idgen_time_floor_reserve_ms;

	/*
	 * After an early raise the synchronous standbys did not confirm, further
	 * early ones would each hold a caller for idgen.sync_standby_timeout:
	 * leave the next raise to the caller that needs it.
	 */
	if (!must_wait && pg_atomic_read_u32(&idgen_floor->early_raise_failed))
		return;

	/*
	 * The holder may be waiting for synchronous standbys: sleep on the
	 * condition variable it broadcasts when it lets go, interruptibly (an
	 * LWLock wait is not), and stop as soon as someone else's raise has
	 * covered what we need.  The wait has the standby wait's bound, so that
	 * callers queued behind one another do not add their waits up.
	 */
	if (!LWLockConditionalAcquire(lock, LW_EXCLUSIVE))
	{
		int64		deadline_ns;

		if (!must_wait)
			return;
		deadline_ns = idgen_monotonic_ns() +
			(int64) idgen_sync_standby_timeout_ms * IDGEN_NS_PER_MS;
		ConditionVariablePrepareToSleep(cv);
		while (!LWLockConditionalAcquire(lock, LW_EXCLUSIVE))
		{
			int64		remaining_ms;

			if (needed_ms <= (int64) pg_atomic_read_u64(&idgen_floor->floor_ms))
			{
				ConditionVariableCancelSleep();
				return;
			}
			remaining_ms = (deadline_ns - idgen_monotonic_ns()) / IDGEN_NS_PER_MS;
			if (remaining_ms <= 0)
			{
				ConditionVariableCancelSleep();
				ereport(ERROR,
						(errcode(ERRCODE_IDGEN_STANDBY_TIMEOUT),
						 errmsg("the Snowflake time floor was not raised within %d ms",
								idgen_sync_standby_timeout_ms),
						 errdetail("Another call was raising it and waiting for the synchronous standbys to confirm when idgen.sync_standby_timeout ran out."),
						 errhint("No ID was handed out. Check the synchronous standbys (pg_stat_replication); calls succeed again once they confirm.")));
			}
			(void) ConditionVariableTimedSleep(cv, (long) remaining_ms, PG_WAIT_EXTENSION);
		}
		ConditionVariableCancelSleep();
	}

	PG_TRY();
	{
		int64		floor_ms = (int64) pg_atomic_read_u64(&idgen_floor->floor_ms);

		/*
		 * A raise the caller does not need yet (its tick is below the floor)
		 * gives up quietly when the synchronous standbys do not confirm in
		 * time: the floor stays where they confirmed it, and the caller's ID,
		 * covered by it, still goes out.
		 */
		if (idgen_permission_current(perm) && needed_ms > floor_ms - reserve / 2)
		{
			IdgenFloorRecord rec;

			memset(&rec, 0, sizeof(rec));
			idgen_layout_current(&rec.layout);
			rec.floor_ms = needed_ms + reserve;
			rec.worker_id = perm->worker_id;

			if (floor_log_and_flush(&rec, needed_ms > floor_ms))
			{
				floor_write_file(&rec, ERROR);
				pg_atomic_write_u64(&idgen_floor->floor_ms, (uint64) rec.floor_ms);
				pg_atomic_write_u32(&idgen_floor->early_raise_failed, 0);
				idgen_count_event(IDGEN_C_FLOOR_WRITES);
			}
			else
				pg_atomic_write_u32(&idgen_floor->early_raise_failed, 1);
		}
	}
	PG_FINALLY();
	{
		LWLockRelease(lock);
		ConditionVariableBroadcast(cv);
	}
	PG_END_TRY();
}
