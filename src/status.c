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
#include "snowflake.h"

PG_FUNCTION_INFO_V1(idgen_status);

#define STATUS_COLUMNS 12

static Datum
unix_ms_datum(int64 ms, bool *isnull)
{
	*isnull = (ms <= 0 || ms == PG_INT64_MAX);
	return *isnull ? (Datum) 0 :
		TimestampTzGetDatum(idgen_unix_us_to_timestamptz(ms * 1000));
}

/*
 * idgen.status() RETURNS TABLE(worker_id int, lease_state text,
 *   lease_expires_at timestamptz, last_issued_at timestamptz,
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

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	snowflake_status(&worker_id, &last_ms, &floor_ms, &issued, &problem);
	idgen_clock_health(&health);

	values[0] = Int32GetDatum(worker_id);
	if (worker_id >= 0 && idgen_worker_id >= 0)
		values[1] = CStringGetTextDatum("static");
	else
		nulls[1] = true;
	nulls[2] = true;
	values[3] = unix_ms_datum(issued ? last_ms : 0, &nulls[3]);
	values[4] = unix_ms_datum(floor_ms, &nulls[4]);
	if (problem)
		values[5] = CStringGetTextDatum(problem);
	else
		nulls[5] = true;
	values[6] = BoolGetDatum(health.synchronised);
	values[7] = CStringGetTextDatum(idgen_clock_state_name(health.kernel_state));
	values[8] = Int64GetDatum(health.est_error_us);
	values[9] = Int64GetDatum(health.max_error_us);
	values[10] = BoolGetDatum(health.leap_pending);
	values[11] = BoolGetDatum(idgen_require_clock_sync);

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
