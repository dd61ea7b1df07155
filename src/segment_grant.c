/*-------------------------------------------------------------------------
 *
 * segment_grant.c
 *	  The grant transaction the segment worker (segment_worker.c) runs for
 *	  a segment tag.
 *
 * One transaction per grant, never the caller's: a caller that rolls back
 * cannot return its range.  In it:
 *
 *	1. Lock the tag's row in idgen.segment_alloc (FOR UPDATE).
 *	2. If this grant runs on another timeline than the tag's last grant (a
 *	   promoted standby, a point-in-time restore), burn forward first, up to
 *	   the tag's fence (see below), and at least idgen.segment_burn_steps
 *	   steps and the numbers the observed rate would use in
 *	   idgen.segment_burn_window (for standbys the old primary did not know
 *	   of), and for a tag never granted the first range (3).  The burn is
 *	   recorded in the outbox.
 *	3. Tune the step as Leaf does: double it when the last range lasted less
 *	   than idgen.segment_duration, halve it when it lasted over twice as
 *	   long, within [the tag's step, idgen.segment_max_step].  Doubling
 *	   alone is too slow when a tag is drawn fast: a range of a few thousand
 *	   numbers lasts microseconds, a grant milliseconds (its commit is
 *	   flushed), so every range would run out before the next one is
 *	   granted, for the first dozen grants.  So the step is also at least
 *	   what the rate at which this server hands out the tag's numbers
 *	   (measured by segment_worker.c over the current range) uses in
 *	   idgen.segment_min_range, within the same bounds: from the second
 *	   grant on, ranges last long enough for the prefetch to land.  The
 *	   first grant of a new tag has no rate to go by, so its range is
 *	   idgen.segment_max_step long (see below); the step in use stays the
 *	   tag's.
 *	4. Take the range (from this primary's residue class when grants are
 *	   interleaved between independent primaries), advance the row and its
 *	   fence, and write the grant to the outbox, idgen.segment_events.
 *	5. Commit.  The worker's session runs with synchronous_commit = on
 *	   whatever the server's setting, so the commit returns only once the
 *	   grant is flushed locally and acknowledged by synchronous standbys.
 *	6. The range reaches shared memory once every standby that could be
 *	   promoted has flushed a fence at or above its end (segment_worker.c
 *	   holds it back until then).
 *
 * The fence (segment_alloc.fence) is how far this primary may grant: every
 * grant raises it to the range's end plus a headroom of
 * idgen.segment_burn_steps steps (at the new step) and the numbers
 * idgen.segment_burn_window would use at the observed rate, and a range is
 * used only once the standbys (connected physical walsenders and physical
 * replication slots) have flushed WAL that holds a fence at or above its
 * end.  A promoted standby burns up to the fence it has, so it never hands
 * out a number the old primary could have granted, however fast the step
 * grew; a standby that stops confirming makes the primary stop granting
 * once the headroom is used up.  Normally the fence needed is the one the
 * previous grant committed, long confirmed, so grants do not wait.
 *
 * With a 1.0 catalog (no fence column, before ALTER EXTENSION idgen UPDATE)
 * grants are not fenced and the burn is the estimate alone, as in 1.0.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "common/int.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/postmaster.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "bgw.h"
#include "floor.h"
#include "guc.h"
#include "segment.h"

/* One grant's arguments and result, passed through idgen_bgw_run_in_xact(). */
typedef struct SegmentGrantCall
{
	const char *tag;
	int64		known_fence;
	XLogRecPtr	known_fence_lsn;
	int64		confirmed_fence;
	double		local_rate;
	SegmentGrant *grant;
	bool		need_own_commit;	/* the standbys must have this grant's
									 * commit before the range is used */
} SegmentGrantCall;

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

/* a * b, or PG_INT64_MAX when it does not fit (a headroom, not a range) */
static int64
saturating_mul(int64 a, int64 b)
{
	int64		r;

	return pg_mul_s64_overflow(a, b, &r) ? PG_INT64_MAX : r;
}

static int64
saturating_add(int64 a, int64 b)
{
	int64		r;

	return pg_add_s64_overflow(a, b, &r) ? PG_INT64_MAX : r;
}

/* numbers the given rate uses in idgen.segment_burn_window, saturated */
static int64
numbers_in_burn_window(double rate)
{
	double		n = rate * idgen_segment_burn_window_s;

	return n >= (double) PG_INT64_MAX ? PG_INT64_MAX : (int64) n;
}

/*
 * Steps 1 to 4 of a grant, in the transaction idgen_segment_grant() runs
 * (see there for the arguments).
 */
static void
segment_grant_range(void *arg)
{
	SegmentGrantCall *call = (SegmentGrantCall *) arg;
	const char *tag = call->tag;
	int64		known_fence = call->known_fence;
	XLogRecPtr	known_fence_lsn = call->known_fence_lsn;
	int64		confirmed_fence = call->confirmed_fence;
	double		local_rate = call->local_rate;
	SegmentGrant *grant = call->grant;
	Oid			types[1] = {TEXTOID};
	Datum		args[1];
	bool		isnull;
	HeapTuple	row;
	TupleDesc	desc;
	Oid			nspid;
	Oid			relid;
	bool		has_fence;
	int64		start_value,
				next_value,
				cfg_step,
				step;
	int32		last_tli;
	int64		old_fence = -1;
	double		elapsed = -1;
	double		rate = 0;
	double		stored_rate;
	TimestampTz now;
	TimeLineID	tli = GetWALInsertionTimeLine();
	XLogRecPtr	read_lsn;
	char	   *node;
	int64		range_start,
				range_end;
	int64		first_range = 0;
	int64		fence = -1;

	memset(grant, 0, sizeof(*grant));

	/* the table, and whether its catalog is 1.1 (the fence column) */
	nspid = get_namespace_oid("idgen", true);
	relid = OidIsValid(nspid) ? get_relname_relid("segment_alloc", nspid) : InvalidOid;
	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("segment tag \"%s\" does not exist", tag),
				 errdetail("There is no table idgen.segment_alloc in database \"%s\".",
						   get_database_name(MyDatabaseId))));
	has_fence = get_attnum(relid, "fence") != InvalidAttrNumber;

	args[0] = CStringGetTextDatum(tag);
	/* a row locked by someone else must not stall the grants of other tags */
	if (SPI_execute("SET LOCAL lock_timeout = '500ms'", false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "idgen: could not set lock_timeout");
	if (SPI_execute_with_args(has_fence ?
							  "SELECT a.tableoid, a.start_value, a.next_value, a.step,"
							  " a.current_step, a.last_timeline, a.last_grant_at,"
							  " a.rate_per_second, a.fence"
							  " FROM idgen.segment_alloc a"
							  " WHERE a.tag OPERATOR(pg_catalog.=) $1 FOR UPDATE" :
							  "SELECT a.tableoid, a.start_value, a.next_value, a.step,"
							  " a.current_step, a.last_timeline, a.last_grant_at,"
							  " a.rate_per_second"
							  " FROM idgen.segment_alloc a"
							  " WHERE a.tag OPERATOR(pg_catalog.=) $1 FOR UPDATE",
							  1, types, args, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "idgen: could not read segment tag");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("segment tag \"%s\" does not exist", tag)));

	/*
	 * Every commit that wrote what we read ends before this: the LSN at which
	 * a fence read here is certainly in the WAL.
	 */
	read_lsn = GetXLogInsertRecPtr();
	now = GetCurrentTimestamp();

	row = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	if (DatumGetObjectId(SPI_getbinval(row, desc, 1, &isnull)) != relid)
		ereport(ERROR,
				(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
				 errmsg("idgen.segment_alloc was replaced during the grant")));
	start_value = DatumGetInt64(SPI_getbinval(row, desc, 2, &isnull));
	next_value = DatumGetInt64(SPI_getbinval(row, desc, 3, &isnull));
	cfg_step = DatumGetInt32(SPI_getbinval(row, desc, 4, &isnull));
	step = DatumGetInt64(SPI_getbinval(row, desc, 5, &isnull));
	last_tli = DatumGetInt32(SPI_getbinval(row, desc, 6, &isnull));
	{
		Datum		d = SPI_getbinval(row, desc, 7, &isnull);

		if (!isnull)
			elapsed = Max((double) (now - DatumGetTimestampTz(d)) / USECS_PER_SEC, 0.0);
		d = SPI_getbinval(row, desc, 8, &isnull);
		if (!isnull)
			rate = DatumGetFloat8(d);
		if (has_fence)
		{
			d = SPI_getbinval(row, desc, 9, &isnull);
			if (!isnull)
				old_fence = DatumGetInt64(d);
		}
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

	/*
	 * A tag never granted (just created) has no rate yet, and its first range
	 * must outlast the grant after it, a durable commit of 1-20 ms, at
	 * whatever rate it is drawn: at one backend's top rate (~20 million calls
	 * a second) a range of the default step, 1000, lasts 50 us.  So, with
	 * sizing by rate on, it is as long as sizing by rate makes any range,
	 * which at that rate lasts as long as the tag's later ranges will (45 ms
	 * at 22 million a second), and its prefetch lands before its end.  It
	 * does not become the step in use: a slow tag goes on with ranges of its
	 * step, and pays for this once, a gap of at most this range if the server
	 * restarts before it is used.  A tag this server knows as never granted
	 * may have had that range from an old primary: the burn covers it.
	 */
	if (elapsed < 0 && idgen_segment_interleave_count == 1 &&
		idgen_segment_min_range_ms > 0)
		first_range = Max(step, (int64) idgen_segment_max_step);

	/* 2. failover burn (segment_create records the timeline it ran on) */
	if ((TimeLineID) last_tli != tli)
	{
		int64		burned_to;

		burned_to = saturating_add(next_value,
								   Max(Max(saturating_mul(idgen_segment_burn_steps, step),
										   numbers_in_burn_window(Max(rate, stored_rate))),
									   first_range));
		burned_to = Max(burned_to, old_fence);
		if (burned_to == PG_INT64_MAX)
			ereport(ERROR,
					(errcode(ERRCODE_SEQUENCE_GENERATOR_LIMIT_EXCEEDED),
					 errmsg("segment tag \"%s\" has reached the end of the bigint range", tag),
					 errdetail("The failover burn would end beyond %lld.", (long long) PG_INT64_MAX)));
		if (burned_to > next_value)
		{
			segment_record_event(tag, "burn", next_value, burned_to, node, tli);
			ereport(LOG,
					(errmsg("idgen worker: segment tag \"%s\" first granted on timeline %u after timeline %d; burned %lld numbers [%lld, %lld)",
							tag, tli, last_tli, (long long) (burned_to - next_value),
							(long long) next_value, (long long) burned_to),
					 old_fence >= 0 ?
					 errdetail("The fence the old primary granted below was %lld.",
							   (long long) old_fence) : 0));
			grant->burned = burned_to - next_value;
			next_value = burned_to;
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
	if (idgen_segment_interleave_count == 1 && local_rate > 0)
	{
		int64		ceiling = Max(cfg_step, (int64) idgen_segment_max_step);
		double		want = local_rate * idgen_segment_min_range_ms / 1000.0;

		if (want > (double) step)
			step = want >= (double) ceiling ? ceiling : (int64) want;
	}
	if (idgen_segment_interleave_count > 1)
		step = cfg_step;

	/* 4. the range (the start-up check keeps the index below the count) */
	/* cppcheck-suppress duplicateCondition ; step 3 sizes, step 4 places */
	if (idgen_segment_interleave_count > 1)
	{
		int64		n = idgen_segment_interleave_count;
		int64		k = idgen_segment_interleave_index;
		int64		offset = next_value - start_value;
		int64		block = offset / step + (offset % step != 0 ? 1 : 0);

		block += ((k - block % n) % n + n) % n;
		range_start = checked_add(start_value, checked_mul(block, step, tag), tag);
	}
	else
		range_start = next_value;
	range_end = checked_add(range_start, Max(step, first_range), tag);

	/* the new fence: the range's end plus the headroom, never lower */
	if (has_fence)
		fence = Max(old_fence,
					saturating_add(range_end,
								   Max(saturating_mul(idgen_segment_burn_steps, step),
									   numbers_in_burn_window(rate))));

	{
		Oid			utypes[7] = {TEXTOID, INT8OID, INT8OID, INT4OID, FLOAT8OID,
		TIMESTAMPTZOID, INT8OID};
		Datum		uvalues[7];

		uvalues[0] = CStringGetTextDatum(tag);
		uvalues[1] = Int64GetDatum(range_end);
		uvalues[2] = Int64GetDatum(step);
		uvalues[3] = Int32GetDatum((int32) tli);
		uvalues[4] = Float8GetDatum(rate);
		uvalues[5] = TimestampTzGetDatum(now);
		uvalues[6] = Int64GetDatum(fence);
		if (SPI_execute_with_args(has_fence ?
								  "UPDATE idgen.segment_alloc SET next_value = $2,"
								  " current_step = $3, last_timeline = $4,"
								  " last_grant_at = $6, rate_per_second = $5,"
								  " grants = grants OPERATOR(pg_catalog.+) 1, fence = $7"
								  " WHERE tag OPERATOR(pg_catalog.=) $1" :
								  "UPDATE idgen.segment_alloc SET next_value = $2,"
								  " current_step = $3, last_timeline = $4,"
								  " last_grant_at = $6, rate_per_second = $5,"
								  " grants = grants OPERATOR(pg_catalog.+) 1"
								  " WHERE tag OPERATOR(pg_catalog.=) $1",
								  has_fence ? 7 : 6, utypes, uvalues, NULL, false, 0) != SPI_OK_UPDATE)
			elog(ERROR, "idgen: could not update segment tag");
	}
	segment_record_event(tag, "grant", range_start, range_end, node, tli);

	grant->start = range_start;
	grant->end = range_end;
	grant->step = step;
	grant->tag_step = (int32) cfg_step;
	grant->relid = relid;
	grant->fence = fence;

	/*
	 * Which commit the standbys must have before the range is used: none if a
	 * fence they have covers it; the one that wrote the fence read above if
	 * that fence covers it (known exactly if this worker wrote it, else
	 * bounded by read_lsn); otherwise this grant's own.
	 */
	if (!has_fence || range_end <= confirmed_fence)
		grant->need_lsn = InvalidXLogRecPtr;
	else if (old_fence >= range_end)
		grant->need_lsn = (old_fence == known_fence && !XLogRecPtrIsInvalid(known_fence_lsn)) ?
			known_fence_lsn : read_lsn;
	else
		call->need_own_commit = true;
}

/* Step 5, once the grant has committed. */
static void
segment_grant_committed(void *arg)
{
	SegmentGrantCall *call = (SegmentGrantCall *) arg;

	/*
	 * A cancelled or terminated wait for synchronous standbys returns with a
	 * warning only: do not hand out a range the standbys may not have.
	 */
	CHECK_FOR_INTERRUPTS();
	idgen_require_sync_standby_ack(XactLastCommitEnd, "the segment grant");
	pgstat_report_stat(false);

	call->grant->commit_lsn = XactLastCommitEnd;
	if (call->need_own_commit)
		call->grant->need_lsn = XactLastCommitEnd;
}

/*
 * Grant the next range of a tag, in a transaction of its own; NULL, or the
 * error that made it fail (the transaction aborted).  known_fence and
 * known_fence_lsn are the fence this worker last committed for the tag and
 * the end of that commit record, confirmed_fence the highest fence the
 * standbys are known to have (-1 and InvalidXLogRecPtr when unknown, e.g.
 * after a restart); local_rate the rate at which this server drew the
 * tag's current range (numbers per second, or 0).
 */
ErrorData *
idgen_segment_grant(const char *tag, int64 known_fence,
					XLogRecPtr known_fence_lsn, int64 confirmed_fence,
					double local_rate, SegmentGrant *grant)
{
	SegmentGrantCall call;

	call.tag = tag;
	call.known_fence = known_fence;
	call.known_fence_lsn = known_fence_lsn;
	call.confirmed_fence = confirmed_fence;
	call.local_rate = local_rate;
	call.grant = grant;
	call.need_own_commit = false;
	return idgen_bgw_run_in_xact("idgen: granting a segment range",
								 segment_grant_range, segment_grant_committed,
								 &call);
}
