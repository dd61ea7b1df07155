/*-------------------------------------------------------------------------
 *
 * guc.c
 *	  Definitions of the idgen.* settings.
 *
 * The Snowflake layout settings are PGC_POSTMASTER: IDs of two layouts can
 * collide, so the layout may only change with a restart, and snowflake.c
 * checks at start-up that the fields sum to 63 bits and match the layout
 * this data directory first used.  The clock-handling settings can change on
 * reload.  Every setting is defined only when the library is preloaded
 * (PostgreSQL allows PGC_POSTMASTER settings nowhere else), which is also
 * the only case in which the features they configure exist.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "utils/guc.h"

#include "guc.h"

int			idgen_worker_id = -1;
char	   *idgen_epoch_string = NULL;
int64		idgen_epoch_ms = 0;
int			idgen_timestamp_bits = 41;
int			idgen_worker_bits = 10;
int			idgen_sequence_bits = 12;
int			idgen_tick_ms = 1;
int			idgen_timestamp_warn_years = 5;

int			idgen_max_clock_wait_ms = 10;
int			idgen_time_floor_reserve_ms = 500;
int			idgen_sync_standby_timeout_ms = 10000;
bool		idgen_require_clock_sync = false;

char	   *idgen_coordinator = NULL;
int			idgen_lease_ttl_s = 30;
int			idgen_lease_max_per_role = 4;

char	   *idgen_database = NULL;
int			idgen_segment_max_tags = 64;
int			idgen_segment_prefetch_at = 10;
int			idgen_segment_duration_s = 900;
int			idgen_segment_min_range_ms = 100;
int			idgen_segment_max_step = 1000000;
int			idgen_segment_wait_timeout_ms = 10000;
int			idgen_segment_burn_steps = 10;
int			idgen_segment_burn_window_s = 60;
int			idgen_segment_interleave_count = 1;
int			idgen_segment_interleave_index = 0;

int			idgen_probe_interval_s = 300;
int			idgen_probe_timeout_ms = 60000;

/* Days from 1970-01-01 to the given proleptic Gregorian date. */
static int64
days_from_civil(int y, int m, int d)
{
	int			era;
	int			yoe;
	int			doy;
	int			doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return (int64) era * 146097 + doe - 719468;
}

/*
 * Parse an epoch given as 'YYYY-MM-DD' or 'YYYY-MM-DD HH:MM:SS', always in
 * UTC (an optional trailing 'Z', '+00' or ' UTC' is accepted).  We cannot use
 * timestamptz_in here: the postmaster reads this setting before time zones
 * are loaded, and an epoch must not depend on the server's TimeZone anyway.
 */
bool
idgen_parse_epoch(const char *input, int64 *unix_ms)
{
	int			y,
				mo,
				d,
				h = 0,
				mi = 0,
				s = 0;
	int			consumed = 0;
	const char *rest;

	if (sscanf(input, "%4d-%2d-%2d%n", &y, &mo, &d, &consumed) != 3)
		return false;
	rest = input + consumed;
	if (*rest == ' ' || *rest == 'T')
	{
		int			more = 0;

		if (sscanf(rest + 1, "%2d:%2d:%2d%n", &h, &mi, &s, &more) != 3)
			return false;
		rest += 1 + more;
	}
	if (!(*rest == '\0' || strcmp(rest, "Z") == 0 || strcmp(rest, "+00") == 0 ||
		  strcmp(rest, "+00:00") == 0 || strcmp(rest, " UTC") == 0))
		return false;
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 ||
		h > 23 || mi > 59 || s > 59 || h < 0 || mi < 0 || s < 0)
		return false;
	/* reject dates such as February 30th */
	if (days_from_civil(y, mo, d) >=
		days_from_civil(mo == 12 ? y + 1 : y, mo == 12 ? 1 : mo + 1, 1))
		return false;
	*unix_ms = ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60000 +
		(int64) s * 1000;
	return true;
}

static bool
check_epoch(char **newval, void **extra, GucSource source)
{
	int64		ms;

	if (*newval == NULL || !idgen_parse_epoch(*newval, &ms))
	{
		GUC_check_errdetail("The epoch must be a UTC date, 'YYYY-MM-DD' or 'YYYY-MM-DD HH:MM:SS', on or after 1970-01-01.");
		return false;
	}
	return true;
}

static void
assign_epoch(const char *newval, void *extra)
{
	int64		ms;

	if (newval && idgen_parse_epoch(newval, &ms))
		idgen_epoch_ms = ms;
}

/*
 * PostgreSQL applies a preloaded library's settings from postgresql.conf
 * with only a WARNING when a value is invalid, and falls back to the
 * default.  For the Snowflake layout that would silently record a layout
 * the DBA did not ask for, so idgen refuses to start instead.
 */
typedef struct LayoutSetting
{
	const char *name;
	int			unit_flags;		/* 0 for the epoch (a string) */
	int		   *int_variable;
	char	   *given;			/* value from the configuration, if any */
} LayoutSetting;

static LayoutSetting layout_settings[] = {
	{"idgen.worker_id", 0, &idgen_worker_id, NULL},
	{"idgen.epoch", 0, NULL, NULL},
	{"idgen.timestamp_bits", 0, &idgen_timestamp_bits, NULL},
	{"idgen.worker_bits", 0, &idgen_worker_bits, NULL},
	{"idgen.sequence_bits", 0, &idgen_sequence_bits, NULL},
	{"idgen.tick", GUC_UNIT_MS, &idgen_tick_ms, NULL},
};

static void
remember_layout_settings(void)
{
	int			i;

	for (i = 0; i < lengthof(layout_settings); i++)
	{
		const char *given = GetConfigOption(layout_settings[i].name, true, false);

		layout_settings[i].given = given ? pstrdup(given) : NULL;
	}
}

static void
require_layout_settings_applied(void)
{
	int			i;

	for (i = 0; i < lengthof(layout_settings); i++)
	{
		LayoutSetting *ls = &layout_settings[i];
		bool		applied;

		if (ls->given == NULL)
			continue;
		if (ls->int_variable)
		{
			int			value;

			applied = parse_int(ls->given, &value, ls->unit_flags, NULL) &&
				value == *ls->int_variable;
		}
		else
		{
			int64		ms;

			applied = idgen_parse_epoch(ls->given, &ms) && ms == idgen_epoch_ms;
		}
		if (!applied)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid value for parameter \"%s\": \"%s\"", ls->name, ls->given),
					 errdetail("idgen does not start with a Snowflake layout setting it cannot apply: IDs of an unintended layout could collide with others."),
					 errhint("Correct the setting in postgresql.conf; see the warning above for what is wrong with it.")));
	}
}

/*
 * Whether this server leases its worker id: always with idgen.worker_id = -1,
 * and for a static id too once a coordinator is configured (it is then
 * claimed through the same lease table).  Fixed at start-up.
 */
bool
idgen_leasing_configured(void)
{
	return idgen_worker_id < 0 || idgen_coordinator[0] != '\0';
}

void
idgen_define_gucs(void)
{
	remember_layout_settings();

	DefineCustomIntVariable("idgen.worker_id",
							"Worker id embedded in Snowflake IDs; -1 means leased from the coordinator.",
							"A value of 0 or more is a static worker id; it must fit in idgen.worker_bits.",
							&idgen_worker_id,
							-1, -1, (1 << 30) - 1,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);

	DefineCustomStringVariable("idgen.epoch",
							   "Start of Snowflake time (UTC), 'YYYY-MM-DD' or 'YYYY-MM-DD HH:MM:SS'.",
							   NULL,
							   &idgen_epoch_string,
							   "2024-01-01",
							   PGC_POSTMASTER, 0,
							   check_epoch, assign_epoch, NULL);

	DefineCustomIntVariable("idgen.timestamp_bits",
							"Bits of a Snowflake ID that hold the tick count since the epoch.",
							"timestamp_bits + worker_bits + sequence_bits must be 63.",
							&idgen_timestamp_bits,
							41, 1, 63,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("idgen.worker_bits",
							"Bits of a Snowflake ID that hold the worker id.",
							"timestamp_bits + worker_bits + sequence_bits must be 63.",
							&idgen_worker_bits,
							10, 0, 30,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("idgen.sequence_bits",
							"Bits of a Snowflake ID that hold the sequence within a tick.",
							"timestamp_bits + worker_bits + sequence_bits must be 63.",
							&idgen_sequence_bits,
							12, 0, 30,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("idgen.tick",
							"Length of one Snowflake time tick.",
							NULL,
							&idgen_tick_ms,
							1, 1, 1000,
							PGC_POSTMASTER, GUC_UNIT_MS, NULL, NULL, NULL);

	DefineCustomIntVariable("idgen.timestamp_warn_years",
							"Warn at start-up when the Snowflake timestamp bits run out in fewer years than this.",
							NULL,
							&idgen_timestamp_warn_years,
							5, 0, 1000,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("idgen.max_clock_wait",
							"Longest a Snowflake call waits for the clock to catch up after it stepped back.",
							"A longer step back makes calls fail until the clock has caught up.",
							&idgen_max_clock_wait_ms,
							10, 0, 10000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);

	DefineCustomIntVariable("idgen.time_floor_reserve",
							"How far ahead of issued time the durable Snowflake time floor is reserved.",
							"Larger values mean fewer durable writes but a longer refusal after a crash restart.",
							&idgen_time_floor_reserve_ms,
							500, 10, 60000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);

	DefineCustomIntVariable("idgen.sync_standby_timeout",
							"Longest idgen waits for synchronous standbys to confirm a new time floor or a segment grant.",
							"The caller then gets an error (SQLSTATE IG009) and nothing depending on it is handed out.",
							&idgen_sync_standby_timeout_ms,
							10000, 1, 3600000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);

	DefineCustomBoolVariable("idgen.require_clock_sync",
							 "Refuse Snowflake IDs while the kernel reports the clock unsynchronised or a leap second in progress.",
							 NULL,
							 &idgen_require_clock_sync,
							 false,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);

	require_layout_settings_applied();

	DefineCustomStringVariable("idgen.coordinator",
							   "libpq connection string of the PostgreSQL server holding the worker-id leases; empty means this server.",
							   "May hold a password, so only superusers can see it.",
							   &idgen_coordinator,
							   "",
							   PGC_POSTMASTER, GUC_SUPERUSER_ONLY, NULL, NULL, NULL);

	DefineCustomIntVariable("idgen.lease_ttl",
							"Length of a worker-id lease; it is renewed every third of this.",
							"A node that cannot renew keeps issuing until this long after its last renewal, minus a safety margin.",
							&idgen_lease_ttl_s,
							30, 3, 3600,
							PGC_POSTMASTER, GUC_UNIT_S, NULL, NULL, NULL);

	DefineCustomIntVariable("idgen.lease_max_per_role",
							"Most live worker-id leases one non-superuser role may hold on this coordinator.",
							"idgen.lease_acquire reads it (from pg_settings; 4 without idgen preloaded).",
							&idgen_lease_max_per_role,
							4, 1, 1073741824,
							PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomStringVariable("idgen.database",
							   "Database in which idgen's probe and lease workers run, and whose segment worker starts with the server.",
							   NULL,
							   &idgen_database,
							   "postgres",
							   PGC_POSTMASTER, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("idgen.segment_max_tags",
							"Most segment tags whose buffers shared memory holds at once.",
							NULL,
							&idgen_segment_max_tags,
							64, 1, 100000,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("idgen.segment_prefetch_at",
							"Percentage of a segment used before the next range is fetched in the background.",
							NULL,
							&idgen_segment_prefetch_at,
							10, 0, 100,
							PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("idgen.segment_duration",
							"Time one segment should last; the step doubles when ranges last less and halves when they last over twice as long.",
							NULL,
							&idgen_segment_duration_s,
							900, 1, 86400,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);

	DefineCustomIntVariable("idgen.segment_min_range",
							"Shortest time a segment range should last at the rate this server hands out the tag's numbers.",
							"A grant sizes the range for at least this long at the observed rate, up to idgen.segment_max_step, so that the next grant lands before the range runs out; a new tag, which has no rate yet, gets a first range of idgen.segment_max_step. 0 leaves the step to doubling alone, the first range included.",
							&idgen_segment_min_range_ms,
							100, 0, 60000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);

	DefineCustomIntVariable("idgen.segment_max_step",
							"Largest step that auto-tuning may reach.",
							NULL,
							&idgen_segment_max_step,
							1000000, 1, INT_MAX,
							PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("idgen.segment_wait_timeout",
							"Longest a segment_next() call waits when both buffers of its tag are empty.",
							NULL,
							&idgen_segment_wait_timeout_ms,
							10000, 1, 3600000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);

	DefineCustomIntVariable("idgen.segment_burn_steps",
							"Steps (at the step in use) a primary may grant beyond the fence its standbys have confirmed.",
							"The first grant on a newer timeline (failover, PITR) burns up to the fence, and at least this many steps.",
							&idgen_segment_burn_steps,
							10, 0, 1000000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("idgen.segment_burn_window",
							"Time whose numbers, at the observed rate, the fence's headroom and the failover burn also cover.",
							NULL,
							&idgen_segment_burn_window_s,
							60, 0, 86400,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);

	DefineCustomIntVariable("idgen.segment_interleave_count",
							"Number of independent primaries sharing the segment number space (1 = no interleaving).",
							"Each primary takes only blocks whose index is congruent to idgen.segment_interleave_index modulo this.",
							&idgen_segment_interleave_count,
							1, 1, 1024,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("idgen.segment_interleave_index",
							"This primary's residue class when segment grants are interleaved.",
							"It must be below idgen.segment_interleave_count: the server refuses to start otherwise.",
							&idgen_segment_interleave_index,
							0, 0, 1023,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);

	if (idgen_segment_interleave_index >= idgen_segment_interleave_count)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("idgen.segment_interleave_index %d is not below idgen.segment_interleave_count %d",
						idgen_segment_interleave_index, idgen_segment_interleave_count),
				 errdetail("Each primary takes the blocks whose index modulo the count equals its index."),
				 errhint("Give each of the N primaries a different index from 0 to N - 1.")));

	DefineCustomIntVariable("idgen.probe_interval",
							"How often the background worker runs the registered uniqueness probes; 0 turns the schedule off.",
							NULL,
							&idgen_probe_interval_s,
							300, 0, 86400 * 7,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);

	DefineCustomIntVariable("idgen.probe_timeout",
							"Longest a uniqueness probe's scan of one table may take before it is canceled; 0 means no bound.",
							"A scan that runs longer fails with its probe's error recorded; the other probes go on.",
							&idgen_probe_timeout_ms,
							60000, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
}
