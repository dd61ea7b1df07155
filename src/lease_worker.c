/*-------------------------------------------------------------------------
 *
 * lease_worker.c
 *	  The lease worker: holds this node's worker-id lease on the coordinator.
 *
 * Started when recovery has finished (a standby leases nothing), only in
 * leased mode (idgen.worker_id = -1, or a static id with idgen.coordinator
 * set).  It talks to the coordinator through its lease functions
 * (idgen.lease_acquire / lease_renew / lease_release, see idgen--1.1.sql)
 * over the session coordinator.c keeps, every call bounded by a timeout.
 *
 * The session holds a session-level lock on the leased id (in a lock space
 * only idgen's lease functions reach, see lease_locks.c) for as long as it
 * lives.  Renewal runs every third of idgen.lease_ttl; each
 * success moves the node's deadline (monotonic clock) and its time horizon
 * forward.  A failed renewal makes the node fail-static: it keeps issuing
 * until its deadline (lease.c), while the worker retries with capped
 * exponential backoff and jitter.  At the deadline the node stops issuing
 * (expired) and tries to renew, or failing that to acquire a lease again.
 * On acquisition the id's previous holders' recorded time floor is counted
 * as issued (floor.c) before the id is published, so Snowflake IDs under
 * it start above everything they issued.
 *
 * The file reads in the order of the worker's life: what it holds, the
 * lease calls (renew; acquire, which ends with a first renewal; release at
 * exit), and the main loop.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <unistd.h>

#include "access/xact.h"
#include "access/xlog.h"
#include "miscadmin.h"
#include "postmaster/postmaster.h"
#include "storage/ipc.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "bgw.h"
#include "clock.h"
#include "coordinator.h"
#include "errcodes.h"
#include "floor.h"
#include "guc.h"
#include "idgen.h"
#include "lease.h"
#include "random.h"

static char holder_identity[256];	/* system id/host:port */

/* What this node holds */
static int32 held_worker_id = -1;
static int64 held_generation = 0;
static int64 held_horizon_ms = 0;
static int64 held_previous_floor_ms = 0;	/* the id's floor when we took it */
static int32 held_in_use = -1;	/* ids in use, as counted at acquisition */

static int
lease_margin_s(void)
{
	return Max(1, idgen_lease_ttl_s / 10);
}

/* ---------- the lease protocol ---------- */

static TimestampTz
parse_timestamptz(const char *text)
{
	return DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in, CStringGetDatum(text),
												   ObjectIdGetDatum(InvalidOid),
												   Int32GetDatum(-1)));
}

/*
 * Renew: extend the lease and record the new horizon (now + TTL) on the
 * coordinator; publish the new deadline and horizon only after it
 * committed.  Returns true on success.
 */
static bool
lease_renew(CoordinatorCall *call)
{
	int64		started_ns = idgen_monotonic_ns();
	int64		horizon_ms = idgen_realtime_ns() / IDGEN_NS_PER_MS + (int64) idgen_lease_ttl_s * 1000;
	char	   *params[5];

	params[0] = psprintf("%d", held_worker_id);
	params[1] = psprintf("%lld", (long long) held_generation);
	params[2] = holder_identity;
	params[3] = psprintf("%d", idgen_lease_ttl_s);
	params[4] = psprintf("%lld", (long long) Max(horizon_ms, held_horizon_ms));
	idgen_coordinator_call("SELECT expires_at, in_use FROM idgen.lease_renew($1::int, $2::bigint, $3, $4::int, $5::bigint)",
						   5, (const char *const *) params, call);
	if (!call->ok)
		return false;

	held_horizon_ms = Max(horizon_ms, held_horizon_ms);
	idgen_lease_publish_held(held_worker_id, held_generation,
							 call->nfields > 0 && call->fields[0] ? parse_timestamptz(call->fields[0]) : 0,
							 started_ns + ((int64) idgen_lease_ttl_s - lease_margin_s()) * IDGEN_NS_PER_S,
							 held_horizon_ms,
							 call->nfields > 1 && call->fields[1] ? pg_strtoint32(call->fields[1]) : held_in_use,
							 -1);
	return true;
}

static bool
lease_acquire(CoordinatorCall *call)
{
	IdgenLayout layout;
	char	   *params[12];
	CoordinatorCall renew;
	int32		in_use;
	int32		capacity;
	int64		previous_floor_ms;

	idgen_layout_current(&layout);
	params[0] = holder_identity;
	params[1] = psprintf("%d", MyProcPid);
	params[2] = psprintf("%d", layout.timestamp_bits);
	params[3] = psprintf("%d", layout.worker_bits);
	params[4] = psprintf("%d", layout.sequence_bits);
	params[5] = psprintf("%d", layout.tick_ms);
	params[6] = psprintf("%lld", (long long) layout.epoch_ms);
	params[7] = psprintf("%d", idgen_lease_ttl_s);
	params[8] = psprintf("%d", lease_margin_s());
	params[9] = psprintf("%d", idgen_worker_id);
	params[10] = psprintf("%d", held_worker_id);

	/*
	 * what this data directory can have issued (replayed after a crash; no
	 * permission is published now, so the fenced floor covers every ID)
	 */
	params[11] = psprintf("%lld", (long long) idgen_floor_fence());

	idgen_coordinator_call("SELECT worker_id, generation, expires_at, previous_floor_ms, in_use, capacity"
						   " FROM idgen.lease_acquire($1, $2::int, $3::int, $4::int, $5::int, $6::int,"
						   " $7::bigint, $8::int, $9::int, $10::int, $11::int, $12::bigint)",
						   12, (const char *const *) params, call);
	if (!call->ok && call->sqlerrcode == ERRCODE_UNDEFINED_FUNCTION)
	{
		/*
		 * The coordinator's idgen catalog is still 1.0: its lease functions
		 * use advisory locks any role can take, and know no local floor.
		 * Lease through them all the same (the first-1.0 way: let go of the
		 * session's advisory locks first) and say how to fix it.
		 */
		ereport(WARNING,
				(errmsg("idgen: the coordinator's idgen extension is version 1.0"),
				 errdetail("Its lease functions let any role that can connect block leasing, and a restarted node waits for its old lease's horizon."),
				 errhint("Run ALTER EXTENSION idgen UPDATE in the coordinator's database (idgen.database when this server is its own coordinator).")));
		idgen_coordinator_call("SELECT pg_advisory_unlock_all()", 0, NULL, call);
		if (!call->ok)
			return false;
		idgen_coordinator_call("SELECT worker_id, generation, expires_at, previous_floor_ms, in_use, capacity"
							   " FROM idgen.lease_acquire($1, $2::int, $3::int, $4::int, $5::int, $6::int,"
							   " $7::bigint, $8::int, $9::int, $10::int, $11::int)",
							   11, (const char *const *) params, call);
	}
	if (!call->ok || call->nfields < 6)
		return false;

	held_worker_id = pg_strtoint32(call->fields[0]);
	held_generation = pg_strtoint64(call->fields[1]);
	previous_floor_ms = pg_strtoint64(call->fields[3]);
	in_use = pg_strtoint32(call->fields[4]);
	capacity = pg_strtoint32(call->fields[5]);
	held_in_use = in_use;		/* renewals no longer count (1.1) */
	held_horizon_ms = 0;
	held_previous_floor_ms = previous_floor_ms;

	if ((int64) in_use * 5 >= (int64) capacity * 4)
		ereport(WARNING,
				(errmsg("idgen: %d of %d worker ids are leased", in_use, capacity),
				 errhint("When all are taken, new nodes cannot issue Snowflake IDs; consider more worker bits.")));
	ereport(LOG,
			(errmsg("idgen lease worker: holding worker id %d (generation %lld, %d of %d ids in use)",
					held_worker_id, (long long) held_generation, in_use, capacity)));

	/*
	 * Count everything the id's previous holders may have issued as issued
	 * (the floor's issued_to_ms, which Snowflake catches up to); then the
	 * first renewal records the horizon on the coordinator and only after
	 * that publishes the permission.  So no ID ever carries this id before a
	 * horizon covering it is durable on the coordinator.
	 */
	idgen_floor_raise_for_holding(previous_floor_ms);
	if (!lease_renew(&renew))
	{
		*call = renew;
		return false;
	}
	return true;
}

/*
 * Clean shutdown: withdraw the permission, then give the id back with the
 * time floor actually reached instead of the lease's horizon, so that the
 * next holder (often this node after a restart) need not wait for the
 * horizon.  Calls that read the permission before the withdrawal may still
 * be on their way, one of them perhaps in the middle of raising the floor
 * to the current time: idgen_floor_fence() waits for such a raise and
 * returns a floor that no ID under the withdrawn permission can exceed.
 */
static void
lease_release_at_exit(int code, Datum arg)
{
	CoordinatorCall call;
	char	   *params[4];
	int64		floor_ms;

	if (held_worker_id < 0 || held_generation == 0)
		return;
	if (idgen_coordinator_local())
		AbortOutOfAnyTransaction();
	idgen_lease_withdraw(LEASE_ACQUIRING, "released at shutdown");
	floor_ms = Max(idgen_floor_fence(), held_previous_floor_ms);
	floor_ms = Min(floor_ms, Max(held_horizon_ms, held_previous_floor_ms));
	params[0] = psprintf("%d", held_worker_id);
	params[1] = psprintf("%lld", (long long) held_generation);
	params[2] = holder_identity;
	params[3] = psprintf("%lld", (long long) floor_ms);
	idgen_coordinator_call("SELECT idgen.lease_release($1::int, $2::bigint, $3, $4::bigint)",
						   4, (const char *const *) params, &call);
	idgen_coordinator_close();
}

/* Capped exponential backoff with jitter, in milliseconds. */
static long
lease_backoff_ms(int failures)
{
	int64		cap = Max(500, (int64) idgen_lease_ttl_s * 1000 / 6);
	int64		base = 250;
	int64		delay = base << Min(failures, 16);
	double		jitter = 0.5 + (double) (idgen_random_u64() % 1000) / 1000.0;

	delay = Min(delay, cap);
	return (long) Max(50, delay * jitter);
}

void
idgen_lease_worker_main(Datum main_arg)
{
	int			failures = 0;
	int64		next_renew_ns = 0;
	char		host[128];
	MemoryContext loop_cxt;

	/*
	 * pg_cancel_backend() on the worker is logged and otherwise ignored: a
	 * cancel must not cost the node its worker id (PostgreSQL's handler would
	 * end the worker, which gives its lease back), and every coordinator call
	 * has a timeout of its own.
	 */
	idgen_bgw_setup_signals(true);

	idgen_coordinator_open("idgen lease worker");

	if (gethostname(host, sizeof(host)) != 0)
		strlcpy(host, "unknown", sizeof(host));
	snprintf(holder_identity, sizeof(holder_identity), "%llu/%s:%d",
			 (unsigned long long) GetSystemIdentifier(), host, PostPortNumber);

	before_shmem_exit(lease_release_at_exit, (Datum) 0);
	idgen_lease_set_state(LEASE_ACQUIRING, NULL);

	/*
	 * what one round allocates (call parameters and results) is freed after
	 * it
	 */
	loop_cxt = AllocSetContextCreate(TopMemoryContext, "idgen lease worker",
									 ALLOCSET_DEFAULT_SIZES);

	for (;;)
	{
		CoordinatorCall call;
		LeaseSnapshot snap;
		long		sleep_ms;
		int64		now = idgen_monotonic_ns();

		MemoryContextReset(loop_cxt);
		MemoryContextSwitchTo(loop_cxt);
		if (idgen_bgw_cancel_requested())
			ereport(LOG,
					(errmsg("idgen lease worker: ignoring a cancel request; the worker keeps its lease"),
					 errhint("To make the worker give its lease back, terminate it (pg_terminate_backend) or stop the server.")));

		idgen_lease_snapshot(&snap);
		if (snap.state == LEASE_HELD || snap.state == LEASE_FAIL_STATIC ||
			snap.state == LEASE_EXPIRED)
		{
			if (snap.state != LEASE_EXPIRED && snap.deadline_in_ms <= 0)
			{
				ereport(WARNING,
						(errmsg("idgen: worker id lease %d expired on this node; Snowflake IDs are refused until it is renewed",
								held_worker_id)));
				idgen_lease_withdraw(LEASE_EXPIRED, NULL);
				snap.state = LEASE_EXPIRED;
			}
			if (now >= next_renew_ns || snap.state != LEASE_HELD)
			{
				if (lease_renew(&call))
				{
					if (snap.state != LEASE_HELD)
						ereport(LOG, (errmsg("idgen lease worker: lease of worker id %d renewed", held_worker_id)));
					failures = 0;
					next_renew_ns = idgen_monotonic_ns() + (int64) idgen_lease_ttl_s * IDGEN_NS_PER_S / 3;
				}
				else if (call.sqlerrcode == ERRCODE_IDGEN_LEASE_CONFLICT)
				{
					ereport(WARNING,
							(errmsg("idgen: lost the lease of worker id %d: %s", held_worker_id, call.message)));
					idgen_lease_withdraw(idgen_worker_id >= 0 ? LEASE_CONFLICT : LEASE_ACQUIRING, call.message);
					held_generation = 0;
					failures++;
				}
				else
				{
					if (snap.state == LEASE_HELD)
						ereport(WARNING,
								(errmsg("idgen: could not renew the worker id lease; issuing fail-static for at most %lld ms: %s",
										(long long) snap.deadline_in_ms, call.message)));
					if (snap.state != LEASE_EXPIRED)
						idgen_lease_set_state(LEASE_FAIL_STATIC, call.message);
					else
						idgen_lease_set_state(LEASE_EXPIRED, call.message);
					failures++;
				}
			}
		}
		else
		{
			if (lease_acquire(&call))
			{
				failures = 0;
				next_renew_ns = idgen_monotonic_ns() + (int64) idgen_lease_ttl_s * IDGEN_NS_PER_S / 3;
			}
			else
			{
				LeaseState	st = LEASE_ACQUIRING;

				if (call.sqlerrcode == ERRCODE_IDGEN_LEASE_CONFLICT ||
					call.sqlerrcode == ERRCODE_IDGEN_LAYOUT_CHANGED)
					st = LEASE_CONFLICT;
				if (held_generation != 0)
					idgen_lease_withdraw(st, call.message);
				else
					idgen_lease_set_state(st, call.message);
				held_generation = 0;
				if (failures == 0 || st != snap.state)
					ereport(st == LEASE_CONFLICT ? WARNING : LOG,
							(errmsg("idgen lease worker: could not acquire a worker id lease: %s",
									call.message)));
				failures++;
			}
		}

		idgen_lease_snapshot(&snap);
		if (failures > 0)
			sleep_ms = lease_backoff_ms(failures);
		else
			sleep_ms = (long) Max(10, (next_renew_ns - idgen_monotonic_ns()) / IDGEN_NS_PER_MS);
		if ((snap.state == LEASE_FAIL_STATIC || snap.state == LEASE_HELD) &&
			snap.deadline_in_ms >= 0)
			sleep_ms = Min(sleep_ms, (long) snap.deadline_in_ms + 1);

		idgen_bgw_nap(sleep_ms);
	}
}
