/*-------------------------------------------------------------------------
 *
 * segment_grant.c
 *	  The grant transaction the background worker runs for a segment tag.
 *
 * One transaction per grant, never the caller's: a caller that rolls back
 * cannot return its range.  In it:
 *
 *	1. Lock the tag's row in idgen.segment_alloc (FOR UPDATE).
 *	2. If this grant runs on another timeline than the tag's last grant (a
 *	   promoted standby, a point-in-time restore), burn forward first: at
 *	   least idgen.segment_burn_steps steps and at least the numbers the
 *	   observed rate would use in idgen.segment_burn_window, so that any
 *	   range the old timeline granted after the last one this server saw is
 *	   skipped.  The burn is recorded in the outbox.
 *	3. Tune the step as Leaf does: double it when the last range lasted less
 *	   than idgen.segment_duration, halve it when it lasted over twice as
 *	   long, within [the tag's step, idgen.segment_max_step].
 *	4. Take the range (from this primary's residue class when grants are
 *	   interleaved between independent primaries), advance the row, and
 *	   write the grant to the outbox, idgen.segment_events.
 *	5. Commit.  The worker's session runs with synchronous_commit = on
 *	   whatever the server's setting, so the commit returns only once the
 *	   grant is flushed locally and acknowledged by synchronous standbys.
 *	   Only then does the range reach shared memory.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "common/int.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/postmaster.h"
#include "utils/builtins.h"
#include "utils/snapmgr.h"

#include "guc.h"
#include "segment.h"
#include "timefloor.h"

static void
segment_record_event(const char *tag, const char *kind, int64 start, int64 end,
					 const char *node, TimeLineID tli)
{
	Oid			types[6] = {TEXTOID, TEXTOID, INT8OID, INT8OID, TEXTOID, INT4OID};
	Datum		values[6];

	values[0] = CStringGetTextDatum(tag);
	values[1] = CStringGetTextDatum(kind);
	values[2] = Int64GetDatum(start);
	values[3] = Int64GetDatum(end);
	values[4] = CStringGetTextDatum(node);
	values[5] = Int32GetDatum((int32) tli);
	if (SPI_execute_with_args("INSERT INTO idgen.segment_events"
							  " (tag, kind, range_start, range_end, node, timeline)"
							  " VALUES ($1, $2, $3, $4, $5, $6)",
							  6, types, values, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "idgen: could not record segment event");
}

static int64
checked_add(int64 a, int64 b, const char *tag)
{
	int64		r;

	if (pg_add_s64_overflow(a, b, &r))
		ereport(ERROR,
				(errcode(ERRCODE_SEQUENCE_GENERATOR_LIMIT_EXCEEDED),
				 errmsg("segment tag \"%s\" has reached the end of the bigint range", tag),
				 errdetail("The next range would end beyond %lld.", (long long) PG_INT64_MAX)));
	return r;
}

static int64
checked_mul(int64 a, int64 b, const char *tag)
{
	int64		r;

	if (pg_mul_s64_overflow(a, b, &r))
		ereport(ERROR,
				(errcode(ERRCODE_SEQUENCE_GENERATOR_LIMIT_EXCEEDED),
				 errmsg("segment tag \"%s\" has reached the end of the bigint range", tag)));
	return r;
}

void
segment_grant_range(const char *tag, SegmentGrant *grant)
{
	Oid			types[1] = {TEXTOID};
	Datum		args[1];
	bool		isnull;
	HeapTuple	row;
	TupleDesc	desc;
	int64		start_value,
				next_value,
				cfg_step,
				step;
	int32		last_tli;
	double		elapsed = -1;
	double		rate = 0;
	double		stored_rate;
	TimeLineID	tli = GetWALInsertionTimeLine();
	char	   *node;
	int64		range_start,
				range_end;

	memset(grant, 0, sizeof(*grant));
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "idgen: granting a segment range");

	args[0] = CStringGetTextDatum(tag);
	/* a row locked by someone else must not stall the grants of other tags */
	if (SPI_execute("SET LOCAL lock_timeout = '500ms'", false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "idgen: could not set lock_timeout");
	if (SPI_execute_with_args("SELECT start_value, next_value, step, current_step, last_timeline,"
							  " extract(epoch FROM clock_timestamp() - last_grant_at)::float8,"
							  " rate_per_second"
							  " FROM idgen.segment_alloc WHERE tag = $1 FOR UPDATE",
							  1, types, args, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "idgen: could not read segment tag");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("segment tag \"%s\" does not exist", tag)));

	row = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	start_value = DatumGetInt64(SPI_getbinval(row, desc, 1, &isnull));
	next_value = DatumGetInt64(SPI_getbinval(row, desc, 2, &isnull));
	cfg_step = DatumGetInt32(SPI_getbinval(row, desc, 3, &isnull));
	step = DatumGetInt64(SPI_getbinval(row, desc, 4, &isnull));
	last_tli = DatumGetInt32(SPI_getbinval(row, desc, 5, &isnull));
	{
		Datum		d = SPI_getbinval(row, desc, 6, &isnull);

		if (!isnull)
			elapsed = DatumGetFloat8(d);
		d = SPI_getbinval(row, desc, 7, &isnull);
		if (!isnull)
			rate = DatumGetFloat8(d);
	}

	node = psprintf("%llu:%d", (unsigned long long) GetSystemIdentifier(), PostPortNumber);

	/*
	 * Observed rate: the last range's size over its lifetime.  Across a
	 * failover the gap since the last grant this server knows of makes that
	 * small, so the burn also uses the rate recorded at that grant.
	 */
	stored_rate = rate;
	if (elapsed > 0)
		rate = (double) step / elapsed;

	/* 2. failover burn (segment_create records the timeline it ran on) */
	if ((TimeLineID) last_tli != tli)
	{
		int64		burn = checked_mul(idgen_segment_burn_steps, step, tag);
		double		by_rate = Max(rate, stored_rate) * idgen_segment_burn_window_s;

		if (by_rate > (double) burn)
			burn = by_rate >= (double) PG_INT64_MAX ? PG_INT64_MAX : (int64) by_rate;
		if (burn > 0)
		{
			int64		burned_to = checked_add(next_value, burn, tag);

			segment_record_event(tag, "burn", next_value, burned_to, node, tli);
			ereport(LOG,
					(errmsg("idgen worker: segment tag \"%s\" first granted on timeline %u after timeline %d; burned %lld numbers [%lld, %lld)",
							tag, tli, last_tli, (long long) burn,
							(long long) next_value, (long long) burned_to)));
			next_value = burned_to;
			grant->burned = burn;
		}
	}

	/* 3. step tuning (not with interleaving, whose blocks are fixed) */
	if (idgen_segment_interleave_count == 1 && elapsed >= 0)
	{
		int64		ceiling = Max(cfg_step, (int64) idgen_segment_max_step);

		if (elapsed < idgen_segment_duration_s)
			step = Min(step * 2, ceiling);
		else if (elapsed >= 2.0 * idgen_segment_duration_s)
			step = Max(step / 2, cfg_step);
	}
	if (idgen_segment_interleave_count > 1)
		step = cfg_step;

	/* 4. the range */
	if (idgen_segment_interleave_count > 1)
	{
		int64		n = idgen_segment_interleave_count;
		int64		k = idgen_segment_interleave_index % n;
		int64		offset = next_value - start_value;
		int64		block = offset / step + (offset % step != 0 ? 1 : 0);

		block += ((k - block % n) % n + n) % n;
		range_start = checked_add(start_value, checked_mul(block, step, tag), tag);
	}
	else
		range_start = next_value;
	range_end = checked_add(range_start, step, tag);

	{
		Oid			utypes[5] = {TEXTOID, INT8OID, INT8OID, INT4OID, FLOAT8OID};
		Datum		uvalues[5];

		uvalues[0] = CStringGetTextDatum(tag);
		uvalues[1] = Int64GetDatum(range_end);
		uvalues[2] = Int64GetDatum(step);
		uvalues[3] = Int32GetDatum((int32) tli);
		uvalues[4] = Float8GetDatum(rate);
		if (SPI_execute_with_args("UPDATE idgen.segment_alloc SET next_value = $2,"
								  " current_step = $3, last_timeline = $4,"
								  " last_grant_at = clock_timestamp(),"
								  " rate_per_second = $5, grants = grants + 1"
								  " WHERE tag = $1",
								  5, utypes, uvalues, NULL, false, 0) != SPI_OK_UPDATE)
			elog(ERROR, "idgen: could not update segment tag");
	}
	segment_record_event(tag, "grant", range_start, range_end, node, tli);

	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();

	/*
	 * A cancelled or terminated wait for synchronous standbys returns with
	 * a warning only: do not hand out a range the standbys may not have.
	 */
	CHECK_FOR_INTERRUPTS();
	idgen_require_sync_standby_ack(XactLastCommitEnd, "the segment grant");
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);

	grant->start = range_start;
	grant->end = range_end;
	grant->step = step;
}
