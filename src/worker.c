/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  idgen's background workers: the segment workers ("idgen worker"), one
 *	  per database whose segment tags are in use, and the probe worker
 *	  ("idgen probe worker") in idgen.database.
 *
 * All start once recovery has finished (a standby runs none).
 *
 * An idgen worker grants the segment ranges of the database it is connected
 * to (segment.c, segment_grant.c), from that database's idgen.segment_alloc.
 * The one of idgen.database is registered at start-up and stays, restarted
 * by the postmaster if it dies.  Any other database gets one when a caller
 * there first needs a grant (RegisterDynamicBackgroundWorker, from
 * segment.c); it is not restarted, exits once its database has had no tag
 * in shared memory for IDGEN_SEGMENT_WORKER_IDLE_MS or is being dropped,
 * and the next caller that needs it starts it again.  So background work
 * grows with the databases that use segments, not with those that exist.
 * A worker sleeps on its latch, which callers set when a tag needs a range,
 * and looks at its tags once a second in case a wake-up was missed, or every
 * IDGEN_WORKER_HELD_BACK_NAP_MS while a granted range waits for the
 * standbys to confirm its fence (nothing wakes it when they do).  Its
 * session runs with synchronous_commit = on regardless of the server's
 * setting, because the grants it commits protect uniqueness across crashes.
 *
 * Every session runs with search_path = pg_catalog: they run as the
 * bootstrap superuser, so nothing a database owner puts on the path may
 * resolve in their queries.
 *
 * The probe worker runs the registered uniqueness probes (idgen.probe_run(),
 * each probe as its table's owner: probe.c) every idgen.probe_interval
 * seconds.  It is a worker of its own so that a long probe, or one waiting
 * for a lock on a probed table, can never hold up segment grants; each run
 * also gives up on a table lock after IDGEN_PROBE_LOCK_TIMEOUT, and each
 * probe's scan after idgen.probe_timeout (probe.c): that probe fails and is
 * logged, the others go on, and the run's transaction (whose snapshot holds
 * back the xmin horizon) stays bounded.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/wait_event.h"

#include "clock.h"
#include "guc.h"
#include "segment.h"
#include "worker.h"

#define IDGEN_WORKER_NAP_MS			1000
#define IDGEN_WORKER_HELD_BACK_NAP_MS	10
#define IDGEN_PROBE_LOCK_TIMEOUT	"5s"

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
 * by segment.c from a backend); false if no background worker slot is free.
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
static void
worker_connect(const char *appname, const char *dbname, Oid dbid)
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
static void
worker_nap(long timeout_ms)
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
	 * Exit code 1 has the postmaster restart the permanent worker later
	 * (with 0 it would be unregistered); the others are started on demand.
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
		worker_nap(held_back ? IDGEN_WORKER_HELD_BACK_NAP_MS : IDGEN_WORKER_NAP_MS);
	}
}

/* The segment worker of idgen.database, registered at start-up. */
void
idgen_worker_main(Datum main_arg)
{
	worker_connect("idgen worker", idgen_database, InvalidOid);
	segment_worker_run(true);
}

/* The segment worker of another database, started on demand. */
void
idgen_segment_worker_main(Datum main_arg)
{
	worker_connect("idgen worker", NULL, DatumGetObjectId(main_arg));
	segment_worker_run(false);
}

/*
 * Whether this database's idgen.probe_run() runs each probe as its table's
 * owner.  Version 1.0's runs every probe as this worker's superuser, and
 * rows of its probes table may come from roles granted DML on it, so a 1.0
 * catalog is not probed until ALTER EXTENSION idgen UPDATE (said once).
 * Called inside the worker's transaction, connected to SPI.
 */
static bool
worker_probes_runnable(void)
{
	static bool said_old = false;
	char	   *version = NULL;

	if (SPI_execute("SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'idgen'",
					true, 1) != SPI_OK_SELECT)
		elog(ERROR, "idgen: could not read the installed extension version");
	if (SPI_processed == 1)
		version = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	if (version == NULL || strcmp(version, "1.0") != 0)
		return true;			/* not installed: probe_run() reports that */
	if (!said_old)
		ereport(LOG,
				(errmsg("idgen probe worker: not running the uniqueness probes of database \"%s\"",
						idgen_database),
				 errdetail("Its idgen extension is version 1.0, whose probe_run() runs probes with superuser rights."),
				 errhint("Run ALTER EXTENSION idgen UPDATE in that database.")));
	said_old = true;
	return false;
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
		if (worker_probes_runnable() &&
			(SPI_execute("SET LOCAL lock_timeout = '" IDGEN_PROBE_LOCK_TIMEOUT "'",
						 false, 0) != SPI_OK_UTILITY ||
			 SPI_execute("SELECT pg_catalog.count(*) FROM idgen.probe_run()",
						 false, 0) != SPI_OK_SELECT))
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
				(errmsg("idgen probe worker: uniqueness probes failed: %s", edata->message)));
		FreeErrorData(edata);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(oldcxt);
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
}

void
idgen_probe_worker_main(Datum main_arg)
{
	int64		next_probe_ns = 0;

	worker_connect("idgen probe worker", idgen_database, InvalidOid);
	SetConfigOption("search_path", "pg_catalog", PGC_SUSET, PGC_S_OVERRIDE);

	for (;;)
	{
		long		nap_ms = IDGEN_WORKER_NAP_MS;

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
			nap_ms = Min(nap_ms, (next_probe_ns - idgen_monotonic_ns()) / 1000000 + 1);
		}
		else
			next_probe_ns = 0;

		worker_nap(nap_ms);
	}
}
