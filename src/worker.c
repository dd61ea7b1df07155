/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  What idgen's segment and probe workers share: their registration, the
 *	  on-demand start of a database's segment worker, the connection with
 *	  its signal handlers, and the nap on the latch.  The workers themselves
 *	  are in segment_worker.c and probe_worker.c.
 *
 * All start once recovery has finished (a standby runs none).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/wait_event.h"

#include "worker.h"

static void
register_database_worker(const char *name, const char *function)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 2;
	strlcpy(worker.bgw_library_name, "idgen", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, function, BGW_MAXLEN);
	strlcpy(worker.bgw_name, name, BGW_MAXLEN);
	strlcpy(worker.bgw_type, name, BGW_MAXLEN);
	RegisterBackgroundWorker(&worker);
}

void
idgen_register_worker(void)
{
	register_database_worker("idgen worker", "idgen_worker_main");
	register_database_worker("idgen probe worker", "idgen_probe_worker_main");
}

/*
 * Start the segment worker of a database other than idgen.database (called
 * by segment_next.c from a backend); false if no background worker slot is
 * free.
 */
bool
idgen_launch_segment_worker(Oid dbid)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	strlcpy(worker.bgw_library_name, "idgen", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "idgen_segment_worker_main", BGW_MAXLEN);
	snprintf(worker.bgw_name, BGW_MAXLEN, "idgen worker for database %u", dbid);
	strlcpy(worker.bgw_type, "idgen worker", BGW_MAXLEN);
	worker.bgw_main_arg = ObjectIdGetDatum(dbid);
	return RegisterDynamicBackgroundWorker(&worker, NULL);
}

/* Signal handlers and the connection to a database (by name or OID). */
void
idgen_worker_connect(const char *appname, const char *dbname, Oid dbid)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	if (dbname)
		BackgroundWorkerInitializeConnection(dbname, NULL, 0);
	else
		BackgroundWorkerInitializeConnectionByOid(dbid, InvalidOid, 0);
	SetConfigOption("application_name", appname, PGC_USERSET, PGC_S_OVERRIDE);
	pgstat_report_appname(appname);
}

/* Sleep on the latch for at most timeout_ms; service interrupts and reloads. */
void
idgen_worker_nap(long timeout_ms)
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
