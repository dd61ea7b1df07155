/*-------------------------------------------------------------------------
 *
 * snowflake_decode.c
 *	  Reading Snowflake IDs back: idgen.snowflake_decode(),
 *	  idgen.snowflake_min() (range bounds for a time) and
 *	  idgen.bit_budget() (how long the layout lasts).
 *
 * Pure layout math over the settings (snowflake.c's derived constants);
 * nothing here touches the issuing state.  bit_budget() shows the worker
 * ids in use from the lease state (lease.h), as idgen.status does.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/timestamp.h"

#include "clock.h"
#include "guc.h"
#include "idgen.h"
#include "lease.h"
#include "snowflake.h"

PG_FUNCTION_INFO_V1(idgen_snowflake_decode);

/*
 * idgen.snowflake_decode(id bigint)
 *	 RETURNS TABLE(ts timestamptz, worker_id int, sequence int)
 */
Datum
idgen_snowflake_decode(PG_FUNCTION_ARGS)
{
	int64		id = PG_GETARG_INT64(0);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Datum		values[3];
	bool		nulls[3] = {false};
	uint64		tick;
	SnowflakeGeometry g;

	idgen_snowflake_geometry(&g);
	if (id < 0)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("Snowflake ID %lld is negative", (long long) id),
				 errdetail("Snowflake IDs keep the sign bit 0, so a negative value was not made by idgen.snowflake_next().")));

	InitMaterializedSRF(fcinfo, 0);
	tick = (uint64) id >> g.worker_shift;
	values[0] = TimestampTzGetDatum(idgen_snowflake_tick_timestamptz(tick));
	values[1] = Int32GetDatum((int32) (((uint64) id >> g.sequence_shift) &
									   ((UINT64CONST(1) << idgen_worker_bits) - 1)));
	values[2] = Int32GetDatum((int32) ((uint64) id & g.sequence_mask));
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(idgen_snowflake_min);

/* idgen.snowflake_min(ts timestamptz) RETURNS bigint */
Datum
idgen_snowflake_min(PG_FUNCTION_ARGS)
{
	TimestampTz ts = PG_GETARG_TIMESTAMPTZ(0);
	int64		unix_ms;
	uint64		tick;
	SnowflakeGeometry g;

	idgen_snowflake_geometry(&g);
	if (TIMESTAMP_NOT_FINITE(ts))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("cannot compute a Snowflake ID for an infinite timestamp"),
				 errdetail("Snowflake IDs hold a finite time since idgen.epoch.")));

	unix_ms = idgen_timestamptz_to_unix_us(ts);
	unix_ms = (unix_ms - (unix_ms % 1000 + 1000) % 1000) / 1000;	/* floor */
	if (unix_ms < idgen_epoch_ms)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp %s is before the Snowflake epoch %s",
						timestamptz_to_str(ts), idgen_epoch_string),
				 errdetail("Snowflake IDs count time from idgen.epoch; no ID can hold an earlier time.")));

	tick = (uint64) (unix_ms - idgen_epoch_ms) / idgen_tick_ms;
	if (tick > g.max_tick)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp %s is beyond the range of the Snowflake layout",
						timestamptz_to_str(ts)),
				 errdetail("%d timestamp bits of %d ms from the epoch end at %s.",
						   idgen_timestamp_bits, idgen_tick_ms,
						   timestamptz_to_str(idgen_snowflake_tick_timestamptz(g.max_tick + 1)))));

	PG_RETURN_INT64((int64) (tick << g.worker_shift));
}

PG_FUNCTION_INFO_V1(idgen_bit_budget);

/*
 * idgen.bit_budget() RETURNS TABLE(timestamp_bits int, worker_bits int,
 *   sequence_bits int, epoch timestamptz, tick interval,
 *   exhausted_at timestamptz, years_left float8,
 *   ids_per_second_per_worker bigint, worker_capacity bigint,
 *   workers_in_use int)
 */
Datum
idgen_bit_budget(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[10];
	bool		nulls[10] = {false};
	Interval   *tick = palloc0(sizeof(Interval));
	int64		now_ms = idgen_realtime_ns() / IDGEN_NS_PER_MS;
	double		end_ms;
	SnowflakeGeometry g;

	idgen_snowflake_geometry(&g);
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	tick->time = (int64) idgen_tick_ms * 1000;
	end_ms = (double) idgen_epoch_ms + ((double) g.max_tick + 1.0) * idgen_tick_ms;

	values[0] = Int32GetDatum(idgen_timestamp_bits);
	values[1] = Int32GetDatum(idgen_worker_bits);
	values[2] = Int32GetDatum(idgen_sequence_bits);
	values[3] = TimestampTzGetDatum(idgen_unix_us_to_timestamptz(idgen_epoch_ms * 1000));
	values[4] = IntervalPGetDatum(tick);
	values[5] = TimestampTzGetDatum(idgen_snowflake_tick_timestamptz(g.max_tick + 1));
	values[6] = Float8GetDatum((end_ms - (double) now_ms) / IDGEN_MS_PER_YEAR);
	values[7] = Int64GetDatum((int64) ((g.sequence_mask + 1) * 1000 / idgen_tick_ms));
	values[8] = Int64GetDatum(INT64CONST(1) << idgen_worker_bits);
	if (idgen_lease_mode())
	{
		LeaseSnapshot lease;

		idgen_lease_snapshot_effective(&lease);
		values[9] = Int32GetDatum(lease.in_use);
	}
	else
		values[9] = Int32GetDatum(1);	/* the static id */

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
