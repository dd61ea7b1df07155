/*-------------------------------------------------------------------------
 *
 * status.c
 *	  idgen.status(): one row of operational state for monitoring, behind
 *	  the idgen.status view.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "clock.h"
#include "guc.h"
#include "idgen.h"
#include "lease.h"
#include "snowflake.h"

PG_FUNCTION_INFO_V1(idgen_status);

#define STATUS_COLUMNS 16

static Datum
unix_ms_datum(int64 ms, bool *isnull)
{
	*isnull = (ms <= 0 || ms == PG_INT64_MAX);
	return *isnull ? (Datum) 0 :
		TimestampTzGetDatum(idgen_unix_us_to_timestamptz(ms * 1000));
}

/*
 * idgen.status() RETURNS TABLE(worker_id int, lease_state text,
 *   lease_expires_at timestamptz, lease_generation bigint,
 *   lease_deadline_ms bigint, lease_error text, workers_in_use int,
 *   last_issued_at timestamptz,
 *   time_floor timestamptz, snowflake_problem text,
 *   clock_synchronised bool, clock_state text, clock_est_error_us bigint,
 *   clock_max_error_us bigint, leap_second_pending bool,
 *   require_clock_sync bool)
 */
Datum
idgen_status(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[STATUS_COLUMNS];
	bool		nulls[STATUS_COLUMNS] = {false};
	IdgenClockHealth health;
	int32		worker_id;
	int64		last_ms;
	int64		floor_ms;
	bool		issued;
	const char *problem;
	LeaseSnapshot lease;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	idgen_snowflake_status(&worker_id, &last_ms, &floor_ms, &issued, &problem);
	idgen_clock_health(&health);

	idgen_lease_snapshot_effective(&lease);

	values[0] = Int32GetDatum(worker_id);
	values[1] = CStringGetTextDatum(idgen_lease_state_name(lease.state));
	values[2] = TimestampTzGetDatum(lease.expires_at);
	nulls[2] = (lease.state == LEASE_STATIC || lease.expires_at == 0);
	values[3] = Int64GetDatum(lease.generation);
	nulls[3] = (lease.generation == 0);
	values[4] = Int64GetDatum(lease.deadline_in_ms);
	nulls[4] = (lease.state == LEASE_STATIC || lease.deadline_in_ms < 0);
	values[5] = CStringGetTextDatum(lease.last_error);
	nulls[5] = (lease.last_error[0] == '\0');
	values[6] = Int32GetDatum(lease.state == LEASE_STATIC ? (worker_id >= 0 ? 1 : 0) : lease.in_use);
	values[7] = unix_ms_datum(issued ? last_ms : 0, &nulls[7]);
	values[8] = unix_ms_datum(floor_ms, &nulls[8]);
	if (problem)
		values[9] = CStringGetTextDatum(problem);
	else
		nulls[9] = true;
	values[10] = BoolGetDatum(health.synchronised);
	values[11] = CStringGetTextDatum(idgen_clock_state_name(health.kernel_state));
	values[12] = Int64GetDatum(health.est_error_us);
	values[13] = Int64GetDatum(health.max_error_us);
	values[14] = BoolGetDatum(health.leap_pending);
	values[15] = BoolGetDatum(idgen_require_clock_sync);

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
