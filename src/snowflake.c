/*-------------------------------------------------------------------------
 *
 * snowflake.c
 *	  idgen.snowflake_next(): rewind-safe 64-bit Snowflake IDs.  The layout
 *	  math and the issuing loop; decoding is in snowflake_decode.c, the
 *	  durable time floor in floor.c.
 *
 * Layout (default 41/10/12; the sign bit is always 0):
 *
 *	 63  62                          22 21          12 11           0
 *	+---+------------------------------+--------------+--------------+
 *	| 0 | ticks since idgen.epoch (41) | worker id (10)| sequence (12)|
 *	+---+------------------------------+--------------+--------------+
 *
 * All backends of a server share one 64-bit state word, last_issued =
 * (tick << sequence_bits) | sequence, updated by compare-and-swap, and
 * issue under one permission (lease.h): the worker id, and in leased mode
 * the lease's deadline and time horizon, read once per ID without a lock.
 * A call reads the permission and the state word, then the clock (in that
 * order: a tick published by another backend was read from the clock before
 * our read of the state, so a clock reading below it means the clock really
 * went back), and then:
 *
 *	- clock tick > last tick: issue (clock tick, sequence 0);
 *	- same tick, sequence left: issue last + 1;
 *	- same tick, sequence used up: wait (spinning) for the next tick; we
 *	  never borrow future ticks, so the embedded time never runs ahead;
 *	- clock tick < last tick: the clock stepped back.  Wait if it is at most
 *	  idgen.max_clock_wait behind, otherwise refuse with SQLSTATE IG001.
 *	  The state word is never reset, so once the clock passes the last
 *	  issued tick, IDs continue above everything issued before.
 *
 * Durable time floor (floor.c): an ID whose tick starts after the floor
 * goes out only once the floor has been raised past it and made durable;
 * the raise starts early, within half of idgen.time_floor_reserve, so
 * that callers rarely wait.  The call checks after its floor read or raise
 * that the permission it read is still the published one, so a withdrawn
 * permission's IDs stay under the floor the lease worker fences.
 *
 * Times that count as issued before this server issues anything (the floor
 * at start-up, replayed floors, a leased id's previous holders: floor.c's
 * issued_to_ms) are caught up with before each ID: the state word is
 * raised to that time's tick with its sequence used up.  So after a clean
 * or crash restart with the clock behind the floor, calls refuse (IG002)
 * until the clock has passed it, and a promoted standby starts above its
 * old primary's floor.
 *
 * Locking: last_issued and issued_since_start are atomics read and written
 * without locks; last_issued changes only by compare-and-swap and only
 * grows.  The permission is lease.h's, the floor floor.c's.
 *
 * Just over 500 lines: the issuing loop with its refusals, and the layout
 * math and start-up checks of the settings it relies on.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xlog.h"
#include "common/int.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "utils/timestamp.h"

#include "clock.h"
#include "errcodes.h"
#include "floor.h"
#include "guc.h"
#include "idgen.h"
#include "lease.h"
#include "snowflake.h"
#include "stats.h"

typedef struct SnowflakeShared
{
	union
	{
		pg_atomic_uint64 last_issued;	/* atomic, CAS, only grows: (tick <<
										 * seq bits) | seq */
		char		pad[PG_CACHE_LINE_SIZE];
	};
	pg_atomic_uint32 issued_since_start;	/* atomic flag: last_issued is an
											 * ID issued by this server, not a
											 * floor (start-up, WAL, handover) */
} SnowflakeShared;

static SnowflakeShared *snowflake_shared = NULL;

/* Layout constants derived from the settings at first use in a process. */
static int	sequence_shift = 0; /* = sequence_bits */
static int	worker_shift = 0;	/* = sequence_bits + worker_bits */
static uint64 sequence_mask = 0;
static uint64 max_tick = 0;

/* The floor's issued_to_ms this backend last caught up with (-1: none yet). */
static int64 issued_to_seen = -1;

static void snowflake_require_shared(void);

/* Per-backend cache of the kernel's clock health, refreshed every second. */
static IdgenClockHealth cached_health;
static int64 cached_health_at_ns = 0;

static void
snowflake_derive_layout(void)
{
	sequence_shift = idgen_sequence_bits;
	worker_shift = idgen_sequence_bits + idgen_worker_bits;
	sequence_mask = (UINT64CONST(1) << idgen_sequence_bits) - 1;
	max_tick = (idgen_timestamp_bits >= 63) ? PG_INT64_MAX :
		(UINT64CONST(1) << idgen_timestamp_bits) - 1;
}

/* Unix milliseconds at which a tick starts (saturating). */
static int64
tick_start_ms(uint64 tick)
{
	int64		offset;

	if (tick > (uint64) PG_INT64_MAX ||
		pg_mul_s64_overflow((int64) tick, idgen_tick_ms, &offset) ||
		pg_add_s64_overflow(offset, idgen_epoch_ms, &offset))
		return PG_INT64_MAX;
	return offset;
}

/* The state word that marks everything up to floor_ms as issued. */
static uint64
state_for_floor(int64 floor_ms)
{
	uint64		tick;

	if (floor_ms < idgen_epoch_ms)
		return 0;
	tick = (uint64) (floor_ms - idgen_epoch_ms) / idgen_tick_ms;
	if (tick > max_tick)
		tick = max_tick;
	return (tick << sequence_shift) | sequence_mask;
}

/* Time of a tick as a timestamptz, or +infinity past PostgreSQL's range. */
static TimestampTz
tick_to_timestamptz(uint64 tick)
{
	int64		ms = tick_start_ms(tick);
	int64		us;

	if (ms == PG_INT64_MAX || pg_mul_s64_overflow(ms, 1000, &us) ||
		!IS_VALID_TIMESTAMP(idgen_unix_us_to_timestamptz(us)))
		return DT_NOEND;
	return idgen_unix_us_to_timestamptz(us);
}

TimestampTz
idgen_snowflake_tick_timestamptz(uint64 tick)
{
	return tick_to_timestamptz(tick);
}

/* The layout's derived constants, for snowflake_decode.c; needs preload. */
void
idgen_snowflake_geometry(SnowflakeGeometry *geometry)
{
	snowflake_require_shared();
	snowflake_derive_layout();
	geometry->sequence_shift = sequence_shift;
	geometry->worker_shift = worker_shift;
	geometry->sequence_mask = sequence_mask;
	geometry->max_tick = max_tick;
}

/*
 * Start-up checks of the layout, run in the postmaster from _PG_init: an
 * inconsistent layout stops the server from starting, because a wrong one
 * could hand out colliding IDs.
 */
void
idgen_snowflake_check_layout(void)
{
	int			sum = idgen_timestamp_bits + idgen_worker_bits + idgen_sequence_bits;
	int64		now_ms = idgen_realtime_ns() / IDGEN_NS_PER_MS;
	double		years_left;

	if (sum != 63)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid Snowflake layout: idgen.timestamp_bits + idgen.worker_bits + idgen.sequence_bits is %d, not 63",
						sum),
				 errdetail("The layout in force is %d/%d/%d bits.",
						   idgen_timestamp_bits, idgen_worker_bits, idgen_sequence_bits),
				 errhint("Choose the three settings so that they add up to 63; the sign bit stays 0.")));

	if (idgen_worker_id >= 0 && (int64) idgen_worker_id >= (INT64CONST(1) << idgen_worker_bits))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("idgen.worker_id %d does not fit in %d worker bits",
						idgen_worker_id, idgen_worker_bits),
				 errdetail("With idgen.worker_bits = %d, worker ids run from 0 to %lld.",
						   idgen_worker_bits, (long long) ((INT64CONST(1) << idgen_worker_bits) - 1)),
				 errhint("Lower idgen.worker_id, raise idgen.worker_bits, or set idgen.worker_id = -1 to lease one.")));

	if (idgen_epoch_ms > now_ms)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("idgen.epoch \"%s\" is in the future", idgen_epoch_string),
				 errdetail("Snowflake time counts up from the epoch, so the epoch must not be later than the current time."),
				 errhint("Choose an epoch in the past, such as the date the system first went live.")));

	snowflake_derive_layout();
	years_left = ((double) tick_start_ms(max_tick) + idgen_tick_ms - now_ms) / IDGEN_MS_PER_YEAR;
	if (years_left < idgen_timestamp_warn_years)
		ereport(WARNING,
				(errmsg("Snowflake timestamp bits run out in %.1f years", Max(years_left, 0.0)),
				 errdetail("%d timestamp bits of %d ms from the epoch %s last until %s.",
						   idgen_timestamp_bits, idgen_tick_ms, idgen_epoch_string,
						   timestamptz_to_str(tick_to_timestamptz(max_tick + 1))),
				 errhint("Plan a move to a layout with more timestamp bits or a later epoch; idgen.bit_budget() shows the budget.")));
}

/*
 * At clean shutdown of the postmaster: the floor may be lowered to the
 * last tick this server actually issued (idgen_floor_lower_at_shutdown()).
 */
static void
snowflake_shmem_exit(int code, Datum arg)
{
	uint64		last;

	if (code != 0 || snowflake_shared == NULL ||
		!pg_atomic_read_u32(&snowflake_shared->issued_since_start))
		return;

	last = pg_atomic_read_u64(&snowflake_shared->last_issued);
	idgen_floor_lower_at_shutdown(tick_start_ms(last >> sequence_shift));
}

Size
idgen_snowflake_shmem_size(void)
{
	return sizeof(SnowflakeShared);
}

/*
 * Called with AddinShmemInitLock held, in the postmaster (and again after a
 * crash restart), after idgen_floor_shmem_init() (shmem.c): start at the
 * floor found there.
 */
void
idgen_snowflake_shmem_init(void)
{
	bool		found;

	snowflake_shared = ShmemInitStruct("idgen snowflake", sizeof(SnowflakeShared),
									   &found);
	if (found)
		return;

	snowflake_derive_layout();
	pg_atomic_init_u64(&snowflake_shared->last_issued,
					   state_for_floor(idgen_floor_issued_to_ms()));
	pg_atomic_init_u32(&snowflake_shared->issued_since_start, 0);

	if (!IsUnderPostmaster)
		on_shmem_exit(snowflake_shmem_exit, (Datum) 0);
}

/*
 * Raise the state word so that everything up to the floor's issued_to_ms
 * counts as issued (a replayed floor, or a leased id's previous holders).
 * If it moved, the last "issued" tick is now a floor, which refusals
 * report as such.
 */
static void
snowflake_catch_up(int64 issued_to_ms)
{
	uint64		target = state_for_floor(issued_to_ms);
	uint64		last = pg_atomic_read_u64(&snowflake_shared->last_issued);

	while (last < target &&
		   !pg_atomic_compare_exchange_u64(&snowflake_shared->last_issued, &last, target))
		;
	if (last < target)
		pg_atomic_write_u32(&snowflake_shared->issued_since_start, 0);
	issued_to_seen = issued_to_ms;
}

static void
snowflake_require_shared(void)
{
	if (snowflake_shared == NULL)
		idgen_require_preload("Snowflake IDs",
							  "Snowflake state lives in shared memory, which only a preloaded library can allocate.",
							  "idgen.uuidv7() works without it.");
}

static void
snowflake_check_clock_sync(void)
{
	int64		now = idgen_monotonic_ns();

	if (cached_health_at_ns == 0 || now - cached_health_at_ns > IDGEN_NS_PER_S)
	{
		idgen_clock_health(&cached_health);
		cached_health_at_ns = now;
	}
	if (!cached_health.synchronised || cached_health.leap_in_progress)
	{
		idgen_count_event(IDGEN_C_SNOWFLAKE_REFUSE_UNSYNC);
		ereport(ERROR,
				(errcode(ERRCODE_IDGEN_CLOCK_UNSYNCHRONISED),
				 errmsg("refusing to generate Snowflake IDs: the system clock is %s",
						cached_health.leap_in_progress ? "inserting a leap second" : "not synchronised"),
				 errdetail("The kernel reports clock state \"%s\" with an estimated error of %lld us, and idgen.require_clock_sync is on.",
						   idgen_clock_state_name(cached_health.kernel_state),
						   (long long) cached_health.est_error_us),
				 errhint("Check the time synchronisation service (chrony, ntpd or systemd-timesyncd), or turn idgen.require_clock_sync off.")));
	}
}

/*
 * The clock reads behind the last issued tick.  Wait if the gap is within
 * idgen.max_clock_wait; otherwise refuse.  Returns after waiting; the
 * caller then reads the state again.
 */
static void
snowflake_clock_behind(uint64 last_tick, int64 now_ms)
{
	int64		resume_ms = tick_start_ms(last_tick);
	int64		behind_ms = resume_ms - now_ms;
	bool		from_floor = !pg_atomic_read_u32(&snowflake_shared->issued_since_start);

	if (!from_floor)
		idgen_count_event(IDGEN_C_SNOWFLAKE_CLOCK_STEP_BACK);
	if (behind_ms <= idgen_max_clock_wait_ms &&
		idgen_wait_for_realtime(resume_ms * IDGEN_NS_PER_MS,
								(int64) idgen_max_clock_wait_ms * IDGEN_NS_PER_MS))
	{
		idgen_count_event(IDGEN_C_SNOWFLAKE_WAIT_CLOCK);
		return;
	}

	if (from_floor)
	{
		idgen_count_event(IDGEN_C_SNOWFLAKE_REFUSE_FLOOR);
		ereport(ERROR,
				(errcode(ERRCODE_IDGEN_TIME_FLOOR),
				 errmsg("refusing to generate Snowflake IDs: the clock is behind the durable time floor"),
				 errdetail("The clock is %lld ms behind %s, the highest time that may already have been issued with this worker id (by this server before it restarted, or by the id's previous lease holder).",
						   (long long) behind_ms,
						   timestamptz_to_str(tick_to_timestamptz(last_tick))),
				 errhint("Check the system clock. IDs resume by themselves once the clock passes the floor.")));
	}

	idgen_count_event(IDGEN_C_SNOWFLAKE_REFUSE_CLOCK);
	ereport(ERROR,
			(errcode(ERRCODE_IDGEN_CLOCK_BEHIND),
			 errmsg("refusing to generate Snowflake IDs: the clock moved backwards"),
			 errdetail("The clock is %lld ms behind the last issued ID's time %s, more than idgen.max_clock_wait (%d ms).",
					   (long long) behind_ms,
					   timestamptz_to_str(tick_to_timestamptz(last_tick)),
					   idgen_max_clock_wait_ms),
			 errhint("Check the time synchronisation of this server. IDs resume by themselves once the clock passes the last issued time.")));
}

PG_FUNCTION_INFO_V1(idgen_snowflake_next);

/* idgen.snowflake_next() RETURNS bigint */
Datum
idgen_snowflake_next(PG_FUNCTION_ARGS)
{
	SnowflakeShared *sf = snowflake_shared;
	IdgenPermission perm;
	uint64		next;
	uint64		next_tick;

	snowflake_require_shared();

	if (unlikely(idgen_floor_unusable()))
	{
		idgen_count_event(IDGEN_C_SNOWFLAKE_REFUSE_LAYOUT);
		ereport(ERROR,
				(errcode(ERRCODE_IDGEN_LAYOUT_CHANGED),
				 errmsg("refusing to generate Snowflake IDs: %s", idgen_floor->unusable_summary),
				 errdetail_internal("%s", idgen_floor->unusable_reason),
				 errhint("%s", idgen_floor->unusable_hint)));
	}

	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot generate Snowflake IDs during recovery"),
				 errdetail("A standby issues no Snowflake IDs until it is promoted."),
				 errhint("Call idgen.snowflake_next() on the primary.")));

	if (unlikely(idgen_require_clock_sync))
		snowflake_check_clock_sync();

	if (unlikely(sequence_shift != idgen_sequence_bits || max_tick == 0))
		snowflake_derive_layout();

	for (;;)
	{
		uint64		last;
		int64		now_ms;
		uint64		last_tick;
		uint64		now_tick;
		int64		floor_ms;
		int64		start_ms;
		int64		issued_to_ms;

		idgen_permission_read(&perm);
		if (unlikely(perm.worker_id == IDGEN_NO_WORKER))
			idgen_permission_refuse(&perm);
		/* a floor counted as issued before perm was published is seen here */
		pg_read_barrier();
		issued_to_ms = idgen_floor_issued_to_ms();
		if (unlikely(issued_to_ms != issued_to_seen))
			snowflake_catch_up(issued_to_ms);
		last = pg_atomic_read_u64(&sf->last_issued);
		now_ms = idgen_realtime_ns() / IDGEN_NS_PER_MS;
		last_tick = last >> sequence_shift;

		if (unlikely(now_ms < idgen_epoch_ms))
		{
			snowflake_clock_behind(last_tick, now_ms);
			continue;
		}
		now_tick = (uint64) (now_ms - idgen_epoch_ms) / idgen_tick_ms;
		if (unlikely(now_tick > max_tick))
			now_tick = max_tick + 1;	/* refused below, before any shift can
										 * wrap */

		if (likely(now_tick > last_tick))
			next = now_tick << sequence_shift;
		else if (now_tick == last_tick)
		{
			if ((last & sequence_mask) == sequence_mask)
			{
				idgen_count_event(IDGEN_C_SNOWFLAKE_WAIT_SEQUENCE);
				(void) idgen_wait_for_realtime(tick_start_ms(last_tick + 1) * IDGEN_NS_PER_MS,
											   (int64) (idgen_tick_ms + idgen_max_clock_wait_ms) * IDGEN_NS_PER_MS);
				continue;
			}
			next = last + 1;
		}
		else
		{
			snowflake_clock_behind(last_tick, now_ms);
			continue;
		}

		next_tick = (now_tick > last_tick) ? now_tick : last_tick;
		if (unlikely(next_tick > max_tick || (next >> sequence_shift) != next_tick))
		{
			idgen_count_event(IDGEN_C_SNOWFLAKE_REFUSE_EXHAUSTED);
			ereport(ERROR,
					(errcode(ERRCODE_IDGEN_TIMESTAMP_EXHAUSTED),
					 errmsg("refusing to generate Snowflake IDs: the timestamp bits are exhausted"),
					 errdetail("%d timestamp bits of %d ms from the epoch %s ran out at %s.",
							   idgen_timestamp_bits, idgen_tick_ms, idgen_epoch_string,
							   timestamptz_to_str(tick_to_timestamptz(max_tick + 1))),
					 errhint("Move to a layout with more timestamp bits or a later epoch, for new IDs that cannot collide with the old ones (a new column or table).")));
		}

		start_ms = tick_start_ms(next_tick);
		if (unlikely(!idgen_permission_allows(&perm, start_ms)))
			idgen_permission_refuse(&perm);
		floor_ms = idgen_floor_ms();
		if (unlikely(start_ms > floor_ms - idgen_time_floor_reserve_ms / 2))
		{
			idgen_floor_raise(start_ms, start_ms > floor_ms, &perm);
			if (start_ms > floor_ms)
				continue;		/* floor read again next time round */
		}

		/*
		 * Renewed or withdrawn since we read it: start over under the
		 * published permission.  A withdrawal after this point is covered by
		 * the floor we read (see idgen_floor_fence()).
		 */
		if (unlikely(!idgen_permission_current(&perm)))
			continue;

		if (pg_atomic_compare_exchange_u64(&sf->last_issued, &last, next))
			break;
	}

	if (unlikely(!pg_atomic_read_u32(&sf->issued_since_start)))
		pg_atomic_write_u32(&sf->issued_since_start, 1);
	idgen_count_issued(IDGEN_C_SNOWFLAKE_ISSUED);

	PG_RETURN_INT64((int64) ((next_tick << worker_shift) |
							 ((uint64) perm.worker_id << sequence_shift) |
							 (next & sequence_mask)));
}

/*
 * Snapshot for idgen.status: worker id (or -1), time of the last issued
 * tick and the floor (Unix ms; 0 when none), and whether IDs are refused
 * for a layout problem.
 */
void
idgen_snowflake_status(int32 *worker_id, int64 *last_issued_ms, int64 *floor_ms,
					   bool *issued, const char **problem)
{
	IdgenPermission perm;

	snowflake_require_shared();
	snowflake_derive_layout();
	if (idgen_floor_issued_to_ms() != issued_to_seen)
		snowflake_catch_up(idgen_floor_issued_to_ms());
	idgen_permission_read(&perm);
	*worker_id = perm.worker_id;
	*last_issued_ms = tick_start_ms(pg_atomic_read_u64(&snowflake_shared->last_issued) >> sequence_shift);
	*floor_ms = idgen_floor_ms();
	*issued = pg_atomic_read_u32(&snowflake_shared->issued_since_start) != 0;
	*problem = idgen_floor_unusable() ? idgen_floor->unusable_reason : NULL;
}
