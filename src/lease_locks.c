/*-------------------------------------------------------------------------
 *
 * lease_locks.c
 *	  The coordinator's lease locks: heavyweight locks that only idgen's
 *	  lease functions can take.
 *
 * A node's coordinator session holds a session-level lock on its worker
 * id, so that no other session takes the id while it lives; acquisitions
 * take a transaction-level lock so that simultaneous boots get distinct
 * ids.  These used to be advisory locks, which any role that can connect
 * could take first and so stop every node from leasing.  These locks are
 * advisory-type lock tags whose fourth field is IDGEN_LOCK_SPACE: SQL's
 * pg_advisory_* functions only ever use 1 and 2 there, so no SQL can
 * take, wait for or release them except through these functions, and
 * EXECUTE on them is revoked from PUBLIC (idgen's SECURITY DEFINER lease
 * functions call them).  They show in pg_locks as locktype 'advisory'
 * with objsubid = 7534: classid 7534 and objid = the worker id for a
 * holder's lock, classid 7535 and objid 0 for the acquisition lock.
 *
 * A session holds at most one worker id's lock: taking another releases
 * the one it held.  The check whether the session holds its lock is a
 * lookup in the backend's local lock table, O(1) whatever the number of
 * holders.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "storage/lock.h"

#define IDGEN_LOCK_SPACE		7534	/* field4; pg_advisory_* use 1 and 2 */
#define IDGEN_LOCK_HOLDER		7534	/* field2 of a worker id's lock */
#define IDGEN_LOCK_ACQUISITION	7535	/* field2 of the acquisition lock */

/* PostgreSQL 17 added LockHeldByMe()'s orstronger argument. */
#if PG_VERSION_NUM >= 170000
#define lock_held_by_me(tag, mode)	LockHeldByMe((tag), (mode), false)
#else
#define lock_held_by_me(tag, mode)	LockHeldByMe((tag), (mode))
#endif

PG_FUNCTION_INFO_V1(idgen_lease_lock);
PG_FUNCTION_INFO_V1(idgen_lease_unlock);
PG_FUNCTION_INFO_V1(idgen_lease_acquisition_lock);

/* The worker id whose lock this session took last, or -1. */
static int32 session_lock_id = -1;

static void
holder_tag(LOCKTAG *tag, int32 worker_id)
{
	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, IDGEN_LOCK_HOLDER,
						 (uint32) worker_id, IDGEN_LOCK_SPACE);
}

/* Release this session's worker-id lock, if it still holds one. */
static void
release_session_lock(void)
{
	LOCKTAG		tag;

	if (session_lock_id < 0)
		return;
	holder_tag(&tag, session_lock_id);
	if (lock_held_by_me(&tag, ExclusiveLock))
		LockRelease(&tag, ExclusiveLock, true);
	session_lock_id = -1;
}

/*
 * idgen._lease_lock(worker_id integer) RETURNS boolean
 *
 * Take the session-level lock on worker_id without waiting; true when this
 * session holds it (already, or now), false when another session does.
 * On success any other worker id's lock of this session is released.
 */
Datum
idgen_lease_lock(PG_FUNCTION_ARGS)
{
	int32		worker_id = PG_GETARG_INT32(0);
	LOCKTAG		tag;

	if (worker_id < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("worker id must not be negative")));
	holder_tag(&tag, worker_id);
	if (lock_held_by_me(&tag, ExclusiveLock))
	{
		session_lock_id = worker_id;
		PG_RETURN_BOOL(true);
	}
	if (LockAcquire(&tag, ExclusiveLock, true, true) == LOCKACQUIRE_NOT_AVAIL)
		PG_RETURN_BOOL(false);
	if (session_lock_id != worker_id)
		release_session_lock();
	session_lock_id = worker_id;
	PG_RETURN_BOOL(true);
}

/*
 * idgen._lease_unlock() RETURNS void
 *
 * Release this session's worker-id lock, if any.
 */
Datum
idgen_lease_unlock(PG_FUNCTION_ARGS)
{
	release_session_lock();
	PG_RETURN_VOID();
}

/*
 * idgen._lease_acquisition_lock() RETURNS void
 *
 * Take the transaction-level acquisition lock, waiting at most
 * lock_timeout (the caller makes sure it is set): a timeout raises 55P03
 * like any lock wait.
 */
Datum
idgen_lease_acquisition_lock(PG_FUNCTION_ARGS)
{
	LOCKTAG		tag;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, IDGEN_LOCK_ACQUISITION, 0,
						 IDGEN_LOCK_SPACE);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
	PG_RETURN_VOID();
}
