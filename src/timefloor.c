/*-------------------------------------------------------------------------
 *
 * timefloor.c
 *	  Making the Snowflake time floor durable: a file in the data directory
 *	  and a WAL record that standbys (and crash recovery) replay.
 *
 * The floor is the highest time whose IDs may have been issued.  Before an
 * ID above the floor leaves snowflake_next(), the floor is raised past it
 * and made durable twice:
 *
 *	1. A WAL record of idgen's custom resource manager, flushed (and, when
 *	   synchronous standbys are configured, acknowledged by them within
 *	   idgen.sync_standby_timeout) whatever synchronous_commit says.
 *	   Standbys replay it, so a promoted standby starts above its old
 *	   primary's floor even though it inherited a stale state file through
 *	   its base backup.
 *	2. The state file, written to a temporary name, fsynced and renamed with
 *	   durable_rename().  WAL before the last checkpoint is not replayed
 *	   after a crash; the file covers that.
 *
 * Replay (redo) writes the file too and raises the floor in shared memory,
 * so that a crash-recovered primary and a promoted standby both refuse to
 * issue at or below the replayed floor.
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
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "utils/wait_event.h"

#include "clock.h"
#include "errcodes.h"
#include "guc.h"
#include "idgen.h"
#include "snowflake.h"
#include "statefile.h"
#include "timefloor.h"

/* The record is a state record (statefile.h): magic and version first, CRC last. */
StaticAssertDecl(offsetof(IdgenFloorRecord, crc) + sizeof(uint32) == sizeof(IdgenFloorRecord),
				 "the floor record's CRC must be its last field");

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

IdgenFloorReadResult
idgen_floor_read_file(IdgenFloorRecord *rec)
{
	switch (idgen_statefile_read(IDGEN_FLOOR_FILE, rec, sizeof(*rec),
								 IDGEN_FLOOR_MAGIC, IDGEN_FLOOR_VERSION, ERROR, NULL))
	{
		case IDGEN_STATE_ABSENT:
			return IDGEN_FLOOR_ABSENT;
		case IDGEN_STATE_OK:
			return IDGEN_FLOOR_OK;
		case IDGEN_STATE_CORRUPT:
			break;
	}
	return IDGEN_FLOOR_CORRUPT;
}

/* Write the file durably; rec's magic, version and crc are filled in. */
void
idgen_floor_write_file(IdgenFloorRecord *rec)
{
	(void) idgen_statefile_write(IDGEN_FLOOR_FILE, rec, sizeof(*rec),
								 IDGEN_FLOOR_MAGIC, IDGEN_FLOOR_VERSION, ERROR);
}

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
bool
idgen_floor_log_and_flush(IdgenFloorRecord *rec, bool must_confirm)
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
	snowflake_replay_floor(&rec);
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
