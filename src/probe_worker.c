/*-------------------------------------------------------------------------
 *
 * probe_worker.c
 *	  The probe worker ("idgen probe worker"), top to bottom: runs the
 *	  registered uniqueness probes of idgen.database every
 *	  idgen.probe_interval seconds.
 *
 * It starts once recovery has finished (a standby runs none), connects to
 * idgen.database, and calls idgen.probe_run(), which runs each probe as
 * its table's owner (probe.c).  It is a worker of its own so that a long
 * probe, or one waiting for a lock on a probed table, can never hold up
 * segment grants; each run also gives up on a table lock after
 * IDGEN_PROBE_LOCK_TIMEOUT, and each probe's scan after idgen.probe_timeout
 * (probe.c): that probe fails and is logged, the others go on, and the
 * run's transaction (whose snapshot holds back the xmin horizon) stays
 * bounded.
 *
 * Its session runs with search_path = pg_catalog: it runs as the bootstrap
 * superuser, so nothing a database owner puts on the path may resolve in
 * its queries.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"
#include "pgstat.h"
#include "utils/guc.h"

#include "bgw.h"
#include "clock.h"
#include "guc.h"
#include "idgen.h"

/* Longest the worker sleeps before it looks at the schedule again. */
#define IDGEN_PROBE_WORKER_NAP_MS	1000
#define IDGEN_PROBE_LOCK_TIMEOUT	"5s"

PGDLLEXPORT void idgen_probe_worker_main(Datum main_arg);

static void probe_worker_run_probes(void);
static void probe_worker_probe_run(void *arg);
static bool probe_worker_probes_runnable(void);

/*
 * Connect, then run the probes every idgen.probe_interval seconds (the
 * first run one interval after start); 0 turns the schedule off.
 */
void
idgen_probe_worker_main(Datum main_arg)
{
	int64		next_probe_ns = 0;

	idgen_bgw_setup_signals(false);
	idgen_bgw_connect("idgen probe worker", idgen_database, InvalidOid);
	SetConfigOption("search_path", "pg_catalog", PGC_SUSET, PGC_S_OVERRIDE);

	for (;;)
	{
		long		nap_ms = IDGEN_PROBE_WORKER_NAP_MS;

		if (idgen_probe_interval_s > 0)
		{
			int64		now = idgen_monotonic_ns();

			if (next_probe_ns == 0)
				next_probe_ns = now + idgen_probe_interval_s * IDGEN_NS_PER_S;
			else if (now >= next_probe_ns)
			{
				probe_worker_run_probes();
				next_probe_ns = idgen_monotonic_ns() + idgen_probe_interval_s * IDGEN_NS_PER_S;
			}
			nap_ms = Min(nap_ms, (next_probe_ns - idgen_monotonic_ns()) / IDGEN_NS_PER_MS + 1);
		}
		else
			next_probe_ns = 0;

		idgen_bgw_nap(nap_ms);
	}
}

/* Run the uniqueness probes in a transaction of their own; log failures. */
static void
probe_worker_run_probes(void)
{
	ErrorData  *edata;

	edata = idgen_bgw_run_in_xact("idgen: running uniqueness probes",
								  probe_worker_probe_run, NULL, NULL);
	if (edata)
	{
		ereport(LOG,
				(errmsg("idgen probe worker: uniqueness probes failed: %s", edata->message)));
		FreeErrorData(edata);
	}
	pgstat_report_stat(false);
}

/* In the run's transaction, connected to SPI: idgen.probe_run(). */
static void
probe_worker_probe_run(void *arg)
{
	if (probe_worker_probes_runnable() &&
		(SPI_execute("SET LOCAL lock_timeout = '" IDGEN_PROBE_LOCK_TIMEOUT "'",
					 false, 0) != SPI_OK_UTILITY ||
		 SPI_execute("SELECT pg_catalog.count(*) FROM idgen.probe_run()",
					 false, 0) != SPI_OK_SELECT))
		elog(ERROR, "idgen: could not run the uniqueness probes");
}

/*
 * Whether this database's idgen.probe_run() runs each probe as its table's
 * owner.  Version 1.0's runs every probe as this worker's superuser, and
 * rows of its probes table may come from roles granted DML on it, so a 1.0
 * catalog is not probed until ALTER EXTENSION idgen UPDATE (said once).
 * Called inside the worker's transaction, connected to SPI.
 */
static bool
probe_worker_probes_runnable(void)
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
