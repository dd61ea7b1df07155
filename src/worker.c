/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  idgen's background worker.
 *
 * One worker per server, started once recovery has finished (a standby
 * runs none), connected to the database named by idgen.database.  Today it
 * grants segment ranges (segment.c, segment_grant.c): it sleeps on its
 * latch, which callers set when a tag needs a range, and looks at every tag
 * once a second in case a wake-up was missed.  Every idgen.probe_interval
 * seconds it runs the registered uniqueness probes (idgen.probe_run()).  Its session runs with
 * synchronous_commit = on regardless of the server's setting, because the
 * grants it commits protect uniqueness across crashes.
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
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"
#include "utils/wait_event.h"

#include "clock.h"
#include "guc.h"
#include "segment.h"
#include "worker.h"

#define IDGEN_WORKER_NAP_MS 1000

void
idgen_register_worker(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 2;
	strlcpy(worker.bgw_library_name, "idgen", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "idgen_worker_main", BGW_MAXLEN);
	strlcpy(worker.bgw_name, "idgen worker", BGW_MAXLEN);
	strlcpy(worker.bgw_type, "idgen worker", BGW_MAXLEN);
	RegisterBackgroundWorker(&worker);
}

/* Run the uniqueness probes in a transaction of their own; log failures. */
static void
worker_run_probes(void)
{
	MemoryContext oldcxt = CurrentMemoryContext;

	PG_TRY();
	{
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		SPI_connect();
		PushActiveSnapshot(GetTransactionSnapshot());
		pgstat_report_activity(STATE_RUNNING, "idgen: running uniqueness probes");
		if (SPI_execute("SELECT count(*) FROM idgen.probe_run()", false, 0) != SPI_OK_SELECT)
			elog(ERROR, "idgen: could not run the uniqueness probes");
		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		ereport(LOG,
				(errmsg("idgen worker: uniqueness probes failed: %s", edata->message)));
		FreeErrorData(edata);
	}
	PG_END_TRY();
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
}

void
idgen_worker_main(Datum main_arg)
{
	int64		next_probe_ns = 0;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	BackgroundWorkerInitializeConnection(idgen_database, NULL, 0);
	SetConfigOption("synchronous_commit", "on", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("application_name", "idgen worker", PGC_USERSET, PGC_S_OVERRIDE);
	pgstat_report_appname("idgen worker");

	segment_worker_attach(MyDatabaseId);
	ereport(LOG,
			(errmsg("idgen worker started in database \"%s\"", idgen_database)));

	for (;;)
	{
		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 IDGEN_WORKER_NAP_MS, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();

		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		segment_worker_serve();

		if (idgen_probe_interval_s > 0)
		{
			int64		now = idgen_monotonic_ns();

			if (next_probe_ns == 0)
				next_probe_ns = now + (int64) idgen_probe_interval_s * 1000000000;
			else if (now >= next_probe_ns)
			{
				worker_run_probes();
				next_probe_ns = idgen_monotonic_ns() + (int64) idgen_probe_interval_s * 1000000000;
			}
		}
		else
			next_probe_ns = 0;
	}
}
