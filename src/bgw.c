/*-------------------------------------------------------------------------
 *
 * bgw.c
 *	  The toolkit every idgen background worker is built on.
 *
 * One registration table names every worker idgen starts: what it is
 * called, which function of the library runs it (by name: this file
 * depends on no worker's code), whether the postmaster starts it at
 * start-up (static) or a backend on demand (dynamic, one per database),
 * and whether it is restarted.  All start once recovery has finished (a
 * standby runs none); each connects to its database, except a lease
 * worker whose coordinator is another server (it needs no local one).
 *
 * The rest is what every worker's loop needs, written once: PostgreSQL's
 * signal handlers (die on SIGTERM, a reload flag on SIGHUP) plus the lease
 * worker's deferred cancel, a nap on the latch that then services
 * interrupts and reloads, and one way to run work in a transaction that
 * catches an error, aborts and hands the error back, so that one failed
 * grant, lease call or probe run never ends the worker.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/wait_event.h"

#include "bgw.h"
#include "guc.h"

typedef struct IdgenBgwSpec
{
	const char *function;		/* bgw_function_name in the library */
	const char *name;			/* bgw_type; bgw_name, with the database OID
								 * appended for a dynamic worker */
	bool		dynamic;		/* started on demand, per database */
	int			restart_s;		/* bgw_restart_time */
	bool		(*wanted) (void);	/* static: registered only if true; NULL
									 * for always */
} IdgenBgwSpec;

/* Static workers are registered in this order. */
static const IdgenBgwSpec idgen_bgw_table[IDGEN_BGW_COUNT] = {
	[IDGEN_BGW_SEGMENT] = {"idgen_worker_main", "idgen worker", false, 2, NULL},
	[IDGEN_BGW_PROBE] = {"idgen_probe_worker_main", "idgen probe worker", false, 2, NULL},
	[IDGEN_BGW_LEASE] = {"idgen_lease_worker_main", "idgen lease worker", false, 2,
	idgen_leasing_configured},
	[IDGEN_BGW_SEGMENT_DATABASE] = {"idgen_segment_worker_main", "idgen worker", true,
	BGW_NEVER_RESTART, NULL},
};

static void
idgen_bgw_fill(BackgroundWorker *worker, const IdgenBgwSpec *spec, Oid dbid)
{
	memset(worker, 0, sizeof(*worker));
	worker->bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker->bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker->bgw_restart_time = spec->restart_s;
	strlcpy(worker->bgw_library_name, "idgen", BGW_MAXLEN);
	strlcpy(worker->bgw_function_name, spec->function, BGW_MAXLEN);
	if (spec->dynamic)
		snprintf(worker->bgw_name, BGW_MAXLEN, "%s for database %u", spec->name, dbid);
	else
		strlcpy(worker->bgw_name, spec->name, BGW_MAXLEN);
	strlcpy(worker->bgw_type, spec->name, BGW_MAXLEN);
	worker->bgw_main_arg = ObjectIdGetDatum(dbid);
}

void
idgen_bgw_register_static(void)
{
	int			i;

	for (i = 0; i < IDGEN_BGW_COUNT; i++)
	{
		const IdgenBgwSpec *spec = &idgen_bgw_table[i];
		BackgroundWorker worker;

		if (spec->dynamic || (spec->wanted && !spec->wanted()))
			continue;
		idgen_bgw_fill(&worker, spec, InvalidOid);
		RegisterBackgroundWorker(&worker);
	}
}

bool
idgen_bgw_launch(IdgenBgw which, Oid dbid)
{
	BackgroundWorker worker;

	Assert(idgen_bgw_table[which].dynamic);
	idgen_bgw_fill(&worker, &idgen_bgw_table[which], dbid);
	return RegisterDynamicBackgroundWorker(&worker, NULL);
}

/* ---------- in a worker ---------- */

/*
 * A cancel that arrived while cancels were deferred.  PostgreSQL's handler
 * would turn it into an ERROR that, outside a transaction, ends the worker.
 */
static volatile sig_atomic_t cancel_deferred = false;

static void
idgen_bgw_sigint_deferred(SIGNAL_ARGS)
{
	int			save_errno = errno;

	cancel_deferred = true;
	SetLatch(MyLatch);
	errno = save_errno;
}

void
idgen_bgw_setup_signals(bool defer_cancel)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	if (defer_cancel)
		pqsignal(SIGINT, idgen_bgw_sigint_deferred);
	BackgroundWorkerUnblockSignals();
}

/* Whether a deferred cancel arrived since the last call. */
bool
idgen_bgw_cancel_requested(void)
{
	bool		requested = cancel_deferred;

	cancel_deferred = false;
	return requested;
}

/*
 * Let a cancel (and statement_timeout or lock_timeout, which arrive as
 * one) interrupt what follows, or defer cancels again.
 */
void
idgen_bgw_allow_cancel(bool allow)
{
	if (allow)
		pqsignal(SIGINT, StatementCancelHandler);
	else
	{
		pqsignal(SIGINT, idgen_bgw_sigint_deferred);
		QueryCancelPending = false; /* one that came after the last check */
	}
}

void
idgen_bgw_connect(const char *appname, const char *dbname, Oid dbid)
{
	if (dbname)
		BackgroundWorkerInitializeConnection(dbname, NULL, 0);
	else if (OidIsValid(dbid))
		BackgroundWorkerInitializeConnectionByOid(dbid, InvalidOid, 0);
	else
		BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	SetConfigOption("application_name", appname, PGC_USERSET, PGC_S_OVERRIDE);
	pgstat_report_appname(appname);
}

void
idgen_bgw_nap(long timeout_ms)
{
	(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					 Max(timeout_ms, 1), PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();

	if (ConfigReloadPending)
	{
		ConfigReloadPending = false;
		ProcessConfigFile(PGC_SIGHUP);
	}
}

ErrorData *
idgen_bgw_run_in_xact(const char *activity, IdgenXactStep body,
					  IdgenXactStep after_commit, void *arg)
{
	MemoryContext callcxt = CurrentMemoryContext;
	ErrorData  *volatile edata = NULL;

	PG_TRY();
	{
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		SPI_connect();
		PushActiveSnapshot(GetTransactionSnapshot());
		if (activity)
			pgstat_report_activity(STATE_RUNNING, activity);
		body(arg);
		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();
		MemoryContextSwitchTo(callcxt); /* commit leaves us in
										 * TopMemoryContext */
		if (after_commit)
			after_commit(arg);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(callcxt);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(callcxt);
	pgstat_report_activity(STATE_IDLE, NULL);
	return edata;
}
