/*-------------------------------------------------------------------------
 *
 * stats.c
 *	  Monitoring counters and the idgen.stats() function behind the view.
 *
 * Counters live in shared memory as an array of 64-bit atomics, so any
 * backend can add to them without a lock and a reader sees each one whole.
 * Counting every issued ID with a shared atomic would bounce a cache line
 * between the CPUs on the hot path, so issued IDs are first counted in
 * backend-local memory and folded into the shared array every
 * IDGEN_STATS_FLUSH_EVERY IDs and at the end of every transaction (commit,
 * abort or prepare).  Rare events (waits, refusals, time-floor writes) go straight to
 * shared memory.
 *
 * Without shared_preload_libraries there is no shared memory: the counters
 * are then this backend's own, which the view says in its scope column.
 *
 * The rows are shaped for monitoring exporters: a metric name in
 * Prometheus style, its labels as jsonb, the value and a help text.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "funcapi.h"
#include "port/atomics.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "idgen.h"
#include "stats.h"

#define IDGEN_STATS_FLUSH_EVERY 512

typedef struct IdgenCounterInfo
{
	const char *metric;
	const char *labels;			/* a JSON object */
	const char *help;
} IdgenCounterInfo;

static const IdgenCounterInfo counter_info[IDGEN_NUM_COUNTERS] = {
	[IDGEN_C_UUIDV7_ISSUED] =
	{"idgen_ids_issued_total", "{\"generator\": \"uuidv7\"}",
	"IDs issued by idgen.uuidv7()."},
	[IDGEN_C_UUIDV7_CLOCK_STEP_BACK] =
	{"idgen_clock_step_back_total", "{\"generator\": \"uuidv7\"}",
	"Times a backend saw the wall clock go backwards while generating UUIDv7."},
	[IDGEN_C_SNOWFLAKE_ISSUED] =
	{"idgen_ids_issued_total", "{\"generator\": \"snowflake\"}",
	"IDs issued by idgen.snowflake_next()."},
	[IDGEN_C_SNOWFLAKE_CLOCK_STEP_BACK] =
	{"idgen_clock_step_back_total", "{\"generator\": \"snowflake\"}",
	"Times snowflake_next() found the wall clock behind the last issued tick."},
	[IDGEN_C_SNOWFLAKE_WAIT_SEQUENCE] =
	{"idgen_waits_total", "{\"generator\": \"snowflake\", \"reason\": \"sequence_exhausted\"}",
	"Calls that waited for the next tick because the tick's sequence was used up."},
	[IDGEN_C_SNOWFLAKE_WAIT_CLOCK] =
	{"idgen_waits_total", "{\"generator\": \"snowflake\", \"reason\": \"clock_step_back\"}",
	"Calls that waited out a step back of the clock within idgen.max_clock_wait."},
	[IDGEN_C_SNOWFLAKE_REFUSE_CLOCK] =
	{"idgen_refusals_total", "{\"generator\": \"snowflake\", \"reason\": \"clock_step_back\"}",
	"Calls refused because the clock was further behind than idgen.max_clock_wait."},
	[IDGEN_C_SNOWFLAKE_REFUSE_FLOOR] =
	{"idgen_refusals_total", "{\"generator\": \"snowflake\", \"reason\": \"time_floor\"}",
	"Calls refused because the clock was behind the durable time floor."},
	[IDGEN_C_SNOWFLAKE_REFUSE_UNSYNC] =
	{"idgen_refusals_total", "{\"generator\": \"snowflake\", \"reason\": \"clock_unsynchronised\"}",
	"Calls refused by idgen.require_clock_sync."},
	[IDGEN_C_SNOWFLAKE_REFUSE_EXHAUSTED] =
	{"idgen_refusals_total", "{\"generator\": \"snowflake\", \"reason\": \"timestamp_exhausted\"}",
	"Calls refused because the timestamp bits have run out."},
	[IDGEN_C_SNOWFLAKE_REFUSE_WORKER] =
	{"idgen_refusals_total", "{\"generator\": \"snowflake\", \"reason\": \"no_worker_id\"}",
	"Calls refused because no worker id is held."},
	[IDGEN_C_SNOWFLAKE_REFUSE_LAYOUT] =
	{"idgen_refusals_total", "{\"generator\": \"snowflake\", \"reason\": \"layout_changed\"}",
	"Calls refused because the bit layout differs from the one this database first used."},
	[IDGEN_C_FLOOR_WRITES] =
	{"idgen_time_floor_writes_total", "{\"generator\": \"snowflake\"}",
	"Durable writes (WAL flush and fsync) that raised the Snowflake time floor."},
	[IDGEN_C_SEGMENT_ISSUED] =
	{"idgen_ids_issued_total", "{\"generator\": \"segment\"}",
	"Numbers issued by idgen.segment_next()."},
	[IDGEN_C_SEGMENT_GRANTS] =
	{"idgen_segment_grants_total", "{}",
	"Ranges granted by the worker (each a durable transaction with its outbox event)."},
	[IDGEN_C_SEGMENT_PREFETCHES] =
	{"idgen_segment_prefetches_total", "{}",
	"Grants made ahead of need, while no caller was waiting."},
	[IDGEN_C_SEGMENT_CALLER_WAITS] =
	{"idgen_waits_total", "{\"generator\": \"segment\", \"reason\": \"buffers_empty\"}",
	"Calls that found both buffers of a tag empty and waited for a grant."},
	[IDGEN_C_SEGMENT_WAIT_TIMEOUTS] =
	{"idgen_refusals_total", "{\"generator\": \"segment\", \"reason\": \"wait_timeout\"}",
	"Calls that gave up after idgen.segment_wait_timeout."},
	[IDGEN_C_SEGMENT_BURNS] =
	{"idgen_segment_burns_total", "{}",
	"Failover burns: grants on a newer timeline that first skipped ahead."},
};

/* Shared counters; each element is an atomic and needs no lock. */
static pg_atomic_uint64 *shared_counters = NULL;

/* Backend-local counts not yet added to shared_counters. */
static uint64 pending_counts[IDGEN_NUM_COUNTERS];
static int	pending_total = 0;

/* Without preload: this backend's own totals. */
static uint64 local_counts[IDGEN_NUM_COUNTERS];

static void
stats_flush_pending(void)
{
	int			i;

	if (pending_total == 0)
		return;
	for (i = 0; i < IDGEN_NUM_COUNTERS; i++)
	{
		if (pending_counts[i] == 0)
			continue;
		if (shared_counters)
			pg_atomic_fetch_add_u64(&shared_counters[i], pending_counts[i]);
		else
			local_counts[i] += pending_counts[i];
		pending_counts[i] = 0;
	}
	pending_total = 0;
}

static void
stats_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PREPARE ||
		event == XACT_EVENT_PARALLEL_COMMIT ||
		event == XACT_EVENT_PARALLEL_ABORT)
		stats_flush_pending();
}

void
idgen_count_issued(IdgenCounter counter)
{
	pending_counts[counter]++;
	if (unlikely(++pending_total >= IDGEN_STATS_FLUSH_EVERY))
		stats_flush_pending();
}

/* n numbers issued at once (a block): one pending update */
void
idgen_count_issued_n(IdgenCounter counter, uint64 n)
{
	pending_counts[counter] += n;
	if (unlikely(++pending_total >= IDGEN_STATS_FLUSH_EVERY))
		stats_flush_pending();
}

void
idgen_count_event(IdgenCounter counter)
{
	if (shared_counters)
		pg_atomic_fetch_add_u64(&shared_counters[counter], 1);
	else
		local_counts[counter]++;
}

Size
idgen_stats_shmem_size(void)
{
	return mul_size(IDGEN_NUM_COUNTERS, sizeof(pg_atomic_uint64));
}

/* Called with AddinShmemInitLock held. */
void
idgen_stats_shmem_init(void)
{
	bool		found;
	int			i;

	shared_counters = ShmemInitStruct("idgen counters",
									  idgen_stats_shmem_size(), &found);
	if (!found)
		for (i = 0; i < IDGEN_NUM_COUNTERS; i++)
			pg_atomic_init_u64(&shared_counters[i], 0);
}

/* Called from _PG_init in every process that loads the library. */
void
idgen_stats_init_backend(void)
{
	RegisterXactCallback(stats_xact_callback, NULL);
}

PG_FUNCTION_INFO_V1(idgen_stats);

/*
 * idgen.stats() RETURNS TABLE(metric text, labels jsonb, value bigint,
 *                             scope text, help text)
 */
Datum
idgen_stats(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			i;

	InitMaterializedSRF(fcinfo, 0);
	stats_flush_pending();

	for (i = 0; i < IDGEN_NUM_COUNTERS; i++)
	{
		Datum		values[5];
		bool		nulls[5] = {false};
		uint64		value;

		value = shared_counters ? pg_atomic_read_u64(&shared_counters[i])
			: local_counts[i];
		values[0] = CStringGetTextDatum(counter_info[i].metric);
		values[1] = DirectFunctionCall1(jsonb_in,
										CStringGetDatum(counter_info[i].labels));
		values[2] = Int64GetDatum((int64) value);
		values[3] = CStringGetTextDatum(shared_counters ? "server" : "backend");
		values[4] = CStringGetTextDatum(counter_info[i].help);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
