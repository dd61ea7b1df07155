/*-------------------------------------------------------------------------
 *
 * snowflake.c
 *	  idgen.snowflake_next(), snowflake_decode(), snowflake_min() and
 *	  bit_budget(): rewind-safe 64-bit Snowflake IDs.
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
 * Durable time floor: before an ID whose tick starts after floor_ms leaves
 * this file, floor_ms is raised to that time plus idgen.time_floor_reserve
 * and made durable (timefloor.c: WAL flush, synchronous standbys within
 * idgen.sync_standby_timeout, fsynced file).  The raise is started early,
 * once issued time is within half the reserve of the floor, by whichever
 * backend gets the lock without waiting, so callers rarely wait for it;
 * those that must wait sleep on a condition variable until it is done.
 * The early raise is optional: if the synchronous standbys do not confirm
 * it in time, the floor stays, the caller's ID (below it) goes out, and no
 * early raise is tried again until a needed one has succeeded.
 *
 * Permission and floor together: a raise re-checks, under the floor lock,
 * that the permission the caller read is still the published one, and the
 * call checks it again after its floor read or raise; an ID goes out only
 * with a tick starting at or below a floor read under its permission.  So
 * once the lease worker has withdrawn a permission and passed through the
 * floor lock (snowflake_fence_floor()), the floor bounds every ID that can
 * still leave under the withdrawn permission, which is what it reports to
 * the coordinator when it gives the id back.
 *
 * At start-up the state word is set to the floor's tick with its sequence
 * used up: after a clean or crash restart with the clock behind the floor,
 * calls refuse (IG002) until the clock has passed it.  Replayed floors
 * (crash recovery, standbys) raise the state word too, so a promoted
 * standby starts above its old primary's floor.
 *
 * Locking: last_issued, floor_ms and issued_since_start are atomics read
 * without locks; floor_ms is written only under IDGEN_LWLOCK_FLOOR after
 * the new value is durable, and floor_raised is broadcast whenever that
 * lock is released after a raise.  The permission is lease.h's.
 * recorded_layout and the unusable flag are set in the postmaster at
 * start-up, and afterwards only under IDGEN_LWLOCK_FLOOR by WAL replay (a
 * primary with another layout); unusable only ever goes from false to
 * true, so readers check it without the lock.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xlog.h"
#include "common/int.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/condition_variable.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "clock.h"
#include "errcodes.h"
#include "guc.h"
#include "idgen.h"
#include "lease.h"
#include "shmem.h"
#include "snowflake.h"
#include "stats.h"
#include "timefloor.h"

typedef struct SnowflakeShared
{
	union
	{
		pg_atomic_uint64 last_issued;	/* atomic, CAS: (tick << seq bits) | seq */
		char		pad[PG_CACHE_LINE_SIZE];
	};
	pg_atomic_uint64 floor_ms;	/* atomic; written under IDGEN_LWLOCK_FLOOR */
	ConditionVariable floor_raised; /* broadcast when a raise lets go of
									 * IDGEN_LWLOCK_FLOOR */
	pg_atomic_uint32 issued_since_start;	/* atomic flag: last_issued is an
											 * ID issued by this server, not a
											 * floor (start-up, WAL, handover) */
	pg_atomic_uint32 early_raise_failed;	/* atomic flag, written under
											 * IDGEN_LWLOCK_FLOOR: the last
											 * raise was an early one the
											 * standbys did not confirm */
	bool		unusable;		/* see locking note above */
	char		unusable_summary[128];
	char		unusable_reason[256];
	char		unusable_hint[256];
} SnowflakeShared;

static SnowflakeShared *snowflake_shared = NULL;

/* Layout constants derived from the settings at first use in a process. */
static int	sequence_shift = 0;	/* = sequence_bits */
static int	worker_shift = 0;	/* = sequence_bits + worker_bits */
static uint64 sequence_mask = 0;
static uint64 max_tick = 0;

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

void
snowflake_current_layout(IdgenLayout *layout)
{
	memset(layout, 0, sizeof(*layout));
	layout->timestamp_bits = idgen_timestamp_bits;
	layout->worker_bits = idgen_worker_bits;
	layout->sequence_bits = idgen_sequence_bits;
	layout->tick_ms = idgen_tick_ms;
	layout->epoch_ms = idgen_epoch_ms;
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

/*
 * Start-up checks of the layout, run in the postmaster from _PG_init: an
 * inconsistent layout stops the server from starting, because a wrong one
 * could hand out colliding IDs.
 */
void
snowflake_check_layout(void)
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

static void
snowflake_mark_unusable(const char *summary, const char *reason, const char *hint)
{
	/* the texts first: readers that see the flag print them at once */
	strlcpy(snowflake_shared->unusable_summary, summary,
			sizeof(snowflake_shared->unusable_summary));
	strlcpy(snowflake_shared->unusable_reason, reason,
			sizeof(snowflake_shared->unusable_reason));
	strlcpy(snowflake_shared->unusable_hint, hint,
			sizeof(snowflake_shared->unusable_hint));
	pg_write_barrier();
	snowflake_shared->unusable = true;
}

/*
 * At clean shutdown of the postmaster, lower the persisted floor to the
 * last tick actually issued, so that a prompt restart need not wait out the
 * reserve.  Nothing above that tick was issued, so this is safe; a standby
 * keeps the higher replayed floor.
 */
static void
snowflake_shmem_exit(int code, Datum arg)
{
	IdgenFloorRecord rec;
	IdgenPermission perm;
	uint64		last;
	int64		last_ms;

	if (code != 0 || snowflake_shared == NULL || snowflake_shared->unusable ||
		!pg_atomic_read_u32(&snowflake_shared->issued_since_start))
		return;

	last = pg_atomic_read_u64(&snowflake_shared->last_issued);
	last_ms = tick_start_ms(last >> sequence_shift);
	if (last_ms >= (int64) pg_atomic_read_u64(&snowflake_shared->floor_ms))
		return;

	memset(&rec, 0, sizeof(rec));
	snowflake_current_layout(&rec.layout);
	rec.floor_ms = last_ms;
	idgen_permission_read(&perm);
	rec.worker_id = perm.worker_id;
	idgen_floor_write_file(&rec);
}

Size
snowflake_shmem_size(void)
{
	return sizeof(SnowflakeShared);
}

/*
 * Called with AddinShmemInitLock held, in the postmaster (and again after a
 * crash restart): load the persisted floor and layout.
 */
void
snowflake_shmem_init(void)
{
	bool		found;
	IdgenFloorRecord rec;
	IdgenLayout current;
	int64		floor_ms = 0;

	snowflake_shared = ShmemInitStruct("idgen snowflake", sizeof(SnowflakeShared),
									   &found);
	if (found)
		return;

	memset(snowflake_shared, 0, sizeof(SnowflakeShared));
	snowflake_derive_layout();
	snowflake_current_layout(&current);

	switch (idgen_floor_read_file(&rec))
	{
		case IDGEN_FLOOR_ABSENT:
			break;
		case IDGEN_FLOOR_OK:
			floor_ms = rec.floor_ms;
			if (!idgen_layout_equal(&rec.layout, &current))
			{
				snowflake_mark_unusable("the layout differs from the one this database first used",
										psprintf("This data directory first issued Snowflake IDs with the layout %s; the settings now give %s.",
												 idgen_layout_describe(&rec.layout),
												 idgen_layout_describe(&current)),
										"IDs of two layouts can collide. Restore the original idgen.epoch, idgen.tick and bit settings, or, if no IDs of the old layout remain in use, remove the file " IDGEN_FLOOR_FILE " from the data directory and restart.");
				ereport(WARNING,
						(errmsg("idgen: Snowflake layout changed; snowflake_next() will refuse"),
						 errdetail_internal("%s", snowflake_shared->unusable_reason)));
			}
			break;
		case IDGEN_FLOOR_CORRUPT:
			snowflake_mark_unusable("the Snowflake state file is damaged",
									"The file " IDGEN_FLOOR_FILE " in the data directory is damaged, so the time floor and layout are unknown.",
									"Restore the file from a backup, or, once the clock is certainly past every ID issued, remove it and restart.");
			ereport(WARNING,
					(errmsg("idgen: Snowflake state file \"%s\" is damaged; snowflake_next() will refuse",
							IDGEN_FLOOR_FILE)));
			break;
	}

	pg_atomic_init_u64(&snowflake_shared->floor_ms, (uint64) Max(floor_ms, 0));
	pg_atomic_init_u64(&snowflake_shared->last_issued, state_for_floor(floor_ms));
	ConditionVariableInit(&snowflake_shared->floor_raised);
	pg_atomic_init_u32(&snowflake_shared->issued_since_start, 0);
	pg_atomic_init_u32(&snowflake_shared->early_raise_failed, 0);

	if (!IsUnderPostmaster)
		on_shmem_exit(snowflake_shmem_exit, (Datum) 0);
}

/*
 * Raise the state word so that everything up to floor_ms counts as issued
 * (a replayed floor, or a leased id's previous holders).  If it moved, the
 * last "issued" tick is now a floor, which refusals report as such.
 */
static void
snowflake_raise_to_floor(int64 floor_ms)
{
	uint64		target = state_for_floor(floor_ms);
	uint64		last = pg_atomic_read_u64(&snowflake_shared->last_issued);

	while (last < target &&
		   !pg_atomic_compare_exchange_u64(&snowflake_shared->last_issued, &last, target))
		;
	if (last < target)
		pg_atomic_write_u32(&snowflake_shared->issued_since_start, 0);
}

/*
 * WAL replay of a floor record (crash recovery, or a standby following its
 * primary): persist it, raise the floor and the state word.
 */
void
snowflake_replay_floor(const IdgenFloorRecord *rec)
{
	IdgenLayout current;

	if (snowflake_shared == NULL)
		return;

	snowflake_derive_layout();
	snowflake_current_layout(&current);

	LWLockAcquire(idgen_lwlock(IDGEN_LWLOCK_FLOOR), LW_EXCLUSIVE);
	if (!idgen_layout_equal(&rec->layout, &current) && !snowflake_shared->unusable)
		snowflake_mark_unusable("the layout differs from the primary's",
								psprintf("The primary issued Snowflake IDs with the layout %s; this server's settings give %s.",
										 idgen_layout_describe(&rec->layout),
										 idgen_layout_describe(&current)),
								"Give every server that shares WAL the same idgen.epoch, idgen.tick and bit settings.");

	if (rec->floor_ms > (int64) pg_atomic_read_u64(&snowflake_shared->floor_ms))
	{
		IdgenFloorRecord copy = *rec;

		idgen_floor_write_file(&copy);
		pg_atomic_write_u64(&snowflake_shared->floor_ms, (uint64) rec->floor_ms);
	}

	snowflake_raise_to_floor(rec->floor_ms);
	LWLockRelease(idgen_lwlock(IDGEN_LWLOCK_FLOOR));
}

/*
 * Lease worker: a worker id has been leased.  Raise the state word above the
 * time floor its previous holders recorded, before the permission to issue
 * with it is published.
 */
void
snowflake_raise_for_holding(int64 previous_floor_ms)
{
	snowflake_derive_layout();
	snowflake_raise_to_floor(previous_floor_ms);
	pg_write_barrier();
}

/*
 * Lease worker, after withdrawing a permission: wait for a floor raise in
 * progress (bounded by idgen.sync_standby_timeout) and return the floor,
 * Unix ms.  Later raises see the withdrawal under the lock and do not
 * happen, so no ID under the withdrawn permission carries a later time.
 */
int64
snowflake_fence_floor(void)
{
	LWLock	   *lock = idgen_lwlock(IDGEN_LWLOCK_FLOOR);
	int64		floor_ms;

	LWLockAcquire(lock, LW_EXCLUSIVE);
	floor_ms = (int64) pg_atomic_read_u64(&snowflake_shared->floor_ms);
	LWLockRelease(lock);
	return floor_ms;
}

/*
 * Raise the durable floor so that a tick starting at needed_ms may be
 * issued under perm.  With must_wait false, give up at once if another
 * process is already raising it (the caller is still below the floor).
 * Nothing is raised for a permission that is no longer the published one.
 */
static void
snowflake_raise_floor(int64 needed_ms, bool must_wait,
					  const IdgenPermission *perm)
{
	LWLock	   *lock = idgen_lwlock(IDGEN_LWLOCK_FLOOR);
	ConditionVariable *cv = &snowflake_shared->floor_raised;
	int64		reserve = idgen_time_floor_reserve_ms;

	/*
	 * The holder may be waiting for synchronous standbys: sleep on the
	 * condition variable it broadcasts when it lets go, interruptibly (an
	 * LWLock wait is not), and stop as soon as someone else's raise has
	 * covered what we need.  The wait has the standby wait's bound, so that
	 * callers queued behind one another do not add their waits up.
	 */
	/*
	 * After an early raise the synchronous standbys did not confirm, further
	 * early ones would each hold a caller for idgen.sync_standby_timeout:
	 * leave the next raise to the caller that needs it.
	 */
	if (!must_wait && pg_atomic_read_u32(&snowflake_shared->early_raise_failed))
		return;

	if (!LWLockConditionalAcquire(lock, LW_EXCLUSIVE))
	{
		int64		deadline_ns;

		if (!must_wait)
			return;
		deadline_ns = idgen_monotonic_ns() +
			(int64) idgen_sync_standby_timeout_ms * IDGEN_NS_PER_MS;
		ConditionVariablePrepareToSleep(cv);
		while (!LWLockConditionalAcquire(lock, LW_EXCLUSIVE))
		{
			int64		remaining_ms;

			if (needed_ms <= (int64) pg_atomic_read_u64(&snowflake_shared->floor_ms))
			{
				ConditionVariableCancelSleep();
				return;
			}
			remaining_ms = (deadline_ns - idgen_monotonic_ns()) / IDGEN_NS_PER_MS;
			if (remaining_ms <= 0)
			{
				ConditionVariableCancelSleep();
				ereport(ERROR,
						(errcode(ERRCODE_IDGEN_STANDBY_TIMEOUT),
						 errmsg("the Snowflake time floor was not raised within %d ms",
								idgen_sync_standby_timeout_ms),
						 errdetail("Another call was raising it and waiting for the synchronous standbys to confirm when idgen.sync_standby_timeout ran out."),
						 errhint("No ID was handed out. Check the synchronous standbys (pg_stat_replication); calls succeed again once they confirm.")));
			}
			(void) ConditionVariableTimedSleep(cv, (long) remaining_ms, PG_WAIT_EXTENSION);
		}
		ConditionVariableCancelSleep();
	}

	PG_TRY();
	{
		int64		floor_ms = (int64) pg_atomic_read_u64(&snowflake_shared->floor_ms);

		/*
		 * A raise the caller does not need yet (its tick is below the
		 * floor) gives up quietly when the synchronous standbys do not
		 * confirm in time: the floor stays where they confirmed it, and the
		 * caller's ID, covered by it, still goes out.
		 */
		if (idgen_permission_current(perm) && needed_ms > floor_ms - reserve / 2)
		{
			IdgenFloorRecord rec;

			memset(&rec, 0, sizeof(rec));
			snowflake_current_layout(&rec.layout);
			rec.floor_ms = needed_ms + reserve;
			rec.worker_id = perm->worker_id;

			if (idgen_floor_log_and_flush(&rec, needed_ms > floor_ms))
			{
				idgen_floor_write_file(&rec);
				pg_atomic_write_u64(&snowflake_shared->floor_ms, (uint64) rec.floor_ms);
				pg_atomic_write_u32(&snowflake_shared->early_raise_failed, 0);
				idgen_count_event(IDGEN_C_FLOOR_WRITES);
			}
			else
				pg_atomic_write_u32(&snowflake_shared->early_raise_failed, 1);
		}
	}
	PG_FINALLY();
	{
		LWLockRelease(lock);
		ConditionVariableBroadcast(cv);
	}
	PG_END_TRY();
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

	if (unlikely(sf->unusable))
	{
		pg_read_barrier();		/* pairs with snowflake_mark_unusable() */
		idgen_count_event(IDGEN_C_SNOWFLAKE_REFUSE_LAYOUT);
		ereport(ERROR,
				(errcode(ERRCODE_IDGEN_LAYOUT_CHANGED),
				 errmsg("refusing to generate Snowflake IDs: %s", sf->unusable_summary),
				 errdetail_internal("%s", sf->unusable_reason),
				 errhint("%s", sf->unusable_hint)));
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

		idgen_permission_read(&perm);
		if (unlikely(perm.worker_id == IDGEN_NO_WORKER))
			idgen_permission_refuse(&perm);
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
			now_tick = max_tick + 1;	/* refused below, before any shift can wrap */

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
		floor_ms = (int64) pg_atomic_read_u64(&sf->floor_ms);
		if (unlikely(start_ms > floor_ms - idgen_time_floor_reserve_ms / 2))
		{
			snowflake_raise_floor(start_ms, start_ms > floor_ms, &perm);
			if (start_ms > floor_ms)
				continue;		/* floor read again next time round */
		}

		/*
		 * Renewed or withdrawn since we read it: start over under the
		 * published permission.  A withdrawal after this point is covered
		 * by the floor we read (see snowflake_fence_floor()).
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

	snowflake_require_shared();
	if (id < 0)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("Snowflake ID %lld is negative", (long long) id),
				 errdetail("Snowflake IDs keep the sign bit 0, so a negative value was not made by idgen.snowflake_next().")));

	InitMaterializedSRF(fcinfo, 0);
	snowflake_derive_layout();
	tick = (uint64) id >> worker_shift;
	values[0] = TimestampTzGetDatum(tick_to_timestamptz(tick));
	values[1] = Int32GetDatum((int32) (((uint64) id >> sequence_shift) &
									   ((UINT64CONST(1) << idgen_worker_bits) - 1)));
	values[2] = Int32GetDatum((int32) ((uint64) id & sequence_mask));
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

	snowflake_require_shared();
	snowflake_derive_layout();
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
	if (tick > max_tick)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp %s is beyond the range of the Snowflake layout",
						timestamptz_to_str(ts)),
				 errdetail("%d timestamp bits of %d ms from the epoch end at %s.",
						   idgen_timestamp_bits, idgen_tick_ms,
						   timestamptz_to_str(tick_to_timestamptz(max_tick + 1)))));

	PG_RETURN_INT64((int64) (tick << worker_shift));
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

	snowflake_require_shared();
	snowflake_derive_layout();
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	tick->time = (int64) idgen_tick_ms * 1000;
	end_ms = (double) idgen_epoch_ms + ((double) max_tick + 1.0) * idgen_tick_ms;

	values[0] = Int32GetDatum(idgen_timestamp_bits);
	values[1] = Int32GetDatum(idgen_worker_bits);
	values[2] = Int32GetDatum(idgen_sequence_bits);
	values[3] = TimestampTzGetDatum(idgen_unix_us_to_timestamptz(idgen_epoch_ms * 1000));
	values[4] = IntervalPGetDatum(tick);
	values[5] = TimestampTzGetDatum(tick_to_timestamptz(max_tick + 1));
	values[6] = Float8GetDatum((end_ms - (double) now_ms) / IDGEN_MS_PER_YEAR);
	values[7] = Int64GetDatum((int64) ((sequence_mask + 1) * 1000 / idgen_tick_ms));
	values[8] = Int64GetDatum(INT64CONST(1) << idgen_worker_bits);
	if (idgen_lease_mode())
	{
		LeaseSnapshot lease;

		lease_snapshot_effective(&lease);
		values[9] = Int32GetDatum(lease.in_use);
	}
	else
		values[9] = Int32GetDatum(1);	/* the static id */

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/*
 * Snapshot for idgen.status: worker id (or -1), time of the last issued
 * tick and the floor (Unix ms; 0 when none), and whether IDs are refused
 * for a layout problem.
 */
void
snowflake_status(int32 *worker_id, int64 *last_issued_ms, int64 *floor_ms,
				 bool *issued, const char **problem)
{
	IdgenPermission perm;

	snowflake_require_shared();
	snowflake_derive_layout();
	idgen_permission_read(&perm);
	*worker_id = perm.worker_id;
	*last_issued_ms = tick_start_ms(pg_atomic_read_u64(&snowflake_shared->last_issued) >> sequence_shift);
	*floor_ms = (int64) pg_atomic_read_u64(&snowflake_shared->floor_ms);
	*issued = pg_atomic_read_u32(&snowflake_shared->issued_since_start) != 0;
	*problem = NULL;
	if (snowflake_shared->unusable)
	{
		pg_read_barrier();		/* pairs with snowflake_mark_unusable() */
		*problem = snowflake_shared->unusable_reason;
	}
}
