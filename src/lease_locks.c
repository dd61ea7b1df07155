/*-------------------------------------------------------------------------
 *
 * lease_locks.c
 *	  The coordinator's lease locks: heavyweight locks that only idgen's
 *	  lease functions can take.
 *
 * A node's coordinator session holds a session-level lock on its worker
 * id, so that no other session takes the id while it lives; an
 * acquisition holds the acquisition lock for the length of its call, so
 * that simultaneous boots get distinct ids without retrying.  The
 * acquisition lock is session-level: lease_acquire releases it before it
 * returns, and the end of the transaction or the abort of a
 * subtransaction always does, so that a caller that leaves its
 * transaction open after lease_acquire cannot block every other node's
 * acquisition.  These used to be advisory locks, which any role that can
 * connect could take first and so stop every node from leasing.  These locks are
 * advisory-type lock tags whose fourth field is IDGEN_LOCK_SPACE: SQL's
 * pg_advisory_* functions only ever use 1 and 2 there, so no SQL can
 * take, wait for or release them except through these functions, and
 * EXECUTE on them is revoked from PUBLIC (idgen's SECURITY DEFINER lease
 * functions call them).  They show in pg_locks as locktype 'advisory'
 * with objsubid = 7534: classid 7534 and objid = the worker id for a
 * holder's lock, classid 7535 and objid 0 for the acquisition lock.
 *
 * A session holds at most one worker id's lock: taking another releases
 * the one it held.  A released worker-id lock is let go of at the end of
 * the transaction, not at once (see pending_ids).  The check whether the session holds its lock is a
 * lookup in the backend's local lock table, O(1) whatever the number of
 * holders.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/memutils.h"
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
PG_FUNCTION_INFO_V1(idgen_lease_acquisition_unlock);
PG_FUNCTION_INFO_V1(idgen_lease_check_caller);

/* The worker id whose lock this session took last, or -1. */
static int32 session_lock_id = -1;

/*
 * Worker ids whose lock this session let go of in the current transaction:
 * released when it ends.  Until then the transaction may hold an
 * uncommitted insert of the id's row, which another session's insert
 * would wait for; the id's lock, taken without waiting, must keep that
 * session away instead.  Allocated in TopMemoryContext.
 */
static int32 *pending_ids = NULL;
static int	n_pending = 0;
static int	max_pending = 0;

/* Whether this session holds the acquisition lock. */
static bool acquisition_held = false;
static bool callbacks_registered = false;

static void register_callbacks(void);

static void
holder_tag(LOCKTAG *tag, int32 worker_id)
{
	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, IDGEN_LOCK_HOLDER,
						 (uint32) worker_id, IDGEN_LOCK_SPACE);
}

/*
 * Let go of this session's worker-id lock, if it holds one: at the end of
 * the current transaction.
 */
static void
release_session_lock(void)
{
	if (session_lock_id < 0)
		return;
	register_callbacks();
	if (n_pending == max_pending)
	{
		int			new_max = Max(4, max_pending * 2);

		pending_ids = pending_ids == NULL
			? MemoryContextAlloc(TopMemoryContext, new_max * sizeof(int32))
			: repalloc(pending_ids, new_max * sizeof(int32));
		max_pending = new_max;
	}
	pending_ids[n_pending++] = session_lock_id;
	session_lock_id = -1;
}

/* Release the locks let go of in the transaction that ends. */
static void
release_pending_locks(void)
{
	for (int i = 0; i < n_pending; i++)
	{
		LOCKTAG		tag;

		if (pending_ids[i] == session_lock_id)
			continue;			/* taken again since */
		holder_tag(&tag, pending_ids[i]);
		if (lock_held_by_me(&tag, ExclusiveLock))
			LockRelease(&tag, ExclusiveLock, true);
	}
	n_pending = 0;
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

	register_callbacks();
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
 * Release this session's worker-id lock, if any, at the end of the
 * transaction.
 */
Datum
idgen_lease_unlock(PG_FUNCTION_ARGS)
{
	release_session_lock();
	PG_RETURN_VOID();
}

static void
acquisition_tag(LOCKTAG *tag)
{
	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, IDGEN_LOCK_ACQUISITION, 0,
						 IDGEN_LOCK_SPACE);
}

static void
release_acquisition_lock(void)
{
	LOCKTAG		tag;

	if (!acquisition_held)
		return;
	acquisition_tag(&tag);
	LockRelease(&tag, ExclusiveLock, true);
	acquisition_held = false;
}

/*
 * The end of any transaction lets go of the acquisition lock and of the
 * worker-id locks released in it.
 */
static void
lease_xact_callback(XactEvent event, void *arg)
{
	release_acquisition_lock();
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			release_pending_locks();
			break;
		default:
			break;
	}
}

/*
 * The abort of a subtransaction (an error the caller catches) lets go of
 * the acquisition lock.
 */
static void
acquisition_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
							 SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		release_acquisition_lock();
}

static void
register_callbacks(void)
{
	if (callbacks_registered)
		return;
	RegisterXactCallback(lease_xact_callback, NULL);
	RegisterSubXactCallback(acquisition_subxact_callback, NULL);
	callbacks_registered = true;
}

/*
 * idgen._lease_acquisition_lock() RETURNS void
 *
 * Take the acquisition lock, waiting at most lock_timeout (the caller
 * makes sure it is set): a timeout raises 55P03 like any lock wait.  Held
 * until idgen._lease_acquisition_unlock() or the end of the transaction.
 */
Datum
idgen_lease_acquisition_lock(PG_FUNCTION_ARGS)
{
	LOCKTAG		tag;

	register_callbacks();
	if (acquisition_held)
		PG_RETURN_VOID();
	acquisition_tag(&tag);
	(void) LockAcquire(&tag, ExclusiveLock, true, false);
	acquisition_held = true;
	PG_RETURN_VOID();
}

/*
 * idgen._lease_acquisition_unlock() RETURNS void
 *
 * Release the acquisition lock, if this session holds it.
 */
Datum
idgen_lease_acquisition_unlock(PG_FUNCTION_ARGS)
{
	release_acquisition_lock();
	PG_RETURN_VOID();
}

/*
 * idgen._lease_check_caller() RETURNS void
 *
 * The lease functions act for session_user.  In a security-restricted
 * operation (a probe's scan as the table's owner, a maintenance command,
 * REFRESH MATERIALIZED VIEW) the code running is another role's, which
 * must not renew, release or take a holding of the session's role (a
 * superuser's, say): refuse the call there.
 */
Datum
idgen_lease_check_caller(PG_FUNCTION_ARGS)
{
	if (InSecurityRestrictedOperation())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("idgen's lease functions cannot be called in a security-restricted operation"),
				 errdetail("They act for the session's role, and the code running is another role's."),
				 errhint("Call them from the node's own session, as its lease worker does.")));
	PG_RETURN_VOID();
}
