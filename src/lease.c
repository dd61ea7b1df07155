/*-------------------------------------------------------------------------
 *
 * lease.c
 *	  Shared lease state: what the lease worker (lease_worker.c) has
 *	  obtained from the coordinator, and the check snowflake_next() makes
 *	  before every ID in leased mode.
 *
 * snowflake_next() never waits for the worker.  It checks two atomics:
 *
 *	- deadline_ns, on the monotonic clock: the node's own end of the lease,
 *	  the start of the last successful renewal plus idgen.lease_ttl minus a
 *	  safety margin.  The coordinator's expiry is measured from a later
 *	  moment (its commit), so the node stops issuing at least the margin
 *	  before the coordinator lets anyone else take the id, even when the
 *	  worker is stuck in a call to an unreachable coordinator (fail-static)
 *	  and whatever the wall clock does meanwhile.
 *	- horizon_ms: the highest wall-clock time IDs may carry under the lease,
 *	  as recorded on the coordinator by the last renewal.  A node that takes
 *	  the id over later starts above it, so a handover is safe even between
 *	  hosts whose clocks disagree.
 *
 * Locking: deadline_ns and horizon_ms are atomics, written only by the
 * lease worker; the descriptive fields are protected by mutex.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "port/atomics.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/timestamp.h"

#include "clock.h"
#include "guc.h"
#include "lease.h"
#include "snowflake.h"
#include "stats.h"

typedef struct LeaseShared
{
	pg_atomic_uint64 deadline_ns;	/* atomic; 0 = no lease */
	pg_atomic_uint64 horizon_ms;	/* atomic */
	bool		lease_mode;		/* set at start-up, read-only */

	slock_t		mutex;			/* protects the fields below */
	LeaseState	state;
	int32		worker_id;
	int64		generation;
	TimestampTz expires_at;
	int32		in_use;
	int32		capacity;
	char		last_error[256];
} LeaseShared;

static LeaseShared *lease_shared = NULL;

bool
idgen_lease_mode(void)
{
	return lease_shared != NULL && lease_shared->lease_mode;
}

Size
lease_shmem_size(void)
{
	return sizeof(LeaseShared);
}

/* Called with AddinShmemInitLock held. */
void
lease_shmem_init(void)
{
	bool		found;

	lease_shared = ShmemInitStruct("idgen lease", sizeof(LeaseShared), &found);
	if (found)
		return;
	memset(lease_shared, 0, sizeof(LeaseShared));
	pg_atomic_init_u64(&lease_shared->deadline_ns, 0);
	pg_atomic_init_u64(&lease_shared->horizon_ms, 0);
	SpinLockInit(&lease_shared->mutex);
	lease_shared->lease_mode = idgen_leasing_configured();
	lease_shared->state = lease_shared->lease_mode ? LEASE_ACQUIRING : LEASE_STATIC;
	lease_shared->worker_id = idgen_worker_id;
	lease_shared->capacity = 1 << idgen_worker_bits;
}

const char *
lease_state_name(LeaseState state)
{
	switch (state)
	{
		case LEASE_STATIC:
			return "static";
		case LEASE_ACQUIRING:
			return "acquiring";
		case LEASE_HELD:
			return "held";
		case LEASE_FAIL_STATIC:
			return "fail-static";
		case LEASE_EXPIRED:
			return "expired";
		case LEASE_CONFLICT:
			return "conflict";
	}
	return "unknown";
}

void
lease_check_issuable(int64 start_ms)
{
	uint64		deadline = pg_atomic_read_u64(&lease_shared->deadline_ns);
	LeaseSnapshot snap;

	pg_read_barrier();			/* pairs with lease_publish_held's write barrier */
	if (likely(deadline != 0 && (int64) deadline > idgen_monotonic_ns() &&
			   start_ms <= (int64) pg_atomic_read_u64(&lease_shared->horizon_ms)))
		return;

	lease_snapshot_effective(&snap);
	idgen_count_event(IDGEN_C_SNOWFLAKE_REFUSE_WORKER);
	if (deadline == 0 && snap.state != LEASE_EXPIRED)
		ereport(ERROR,
				(errcode(IDGEN_ERRCODE_NO_WORKER_ID),
				 errmsg("refusing to generate Snowflake IDs: no worker id lease is held"),
				 errdetail("The lease state is \"%s\"%s%s.", lease_state_name(snap.state),
						   snap.last_error[0] ? "; last error: " : "", snap.last_error),
				 errhint("Check idgen.status and that the coordinator (idgen.coordinator) is reachable. idgen.uuidv7() does not need a lease.")));
	if (deadline == 0 || (int64) deadline <= idgen_monotonic_ns())
		ereport(ERROR,
				(errcode(IDGEN_ERRCODE_NO_WORKER_ID),
				 errmsg("refusing to generate Snowflake IDs: the worker id lease has expired"),
				 errdetail("The lease of worker id %d could not be renewed before this node's deadline; the coordinator may hand the id to another node.%s%s",
						   snap.worker_id, snap.last_error[0] ? " Last error: " : "", snap.last_error),
				 errhint("Check that the coordinator (idgen.coordinator) is reachable; IDs resume once the lease is renewed or a new one is held.")));
	ereport(ERROR,
			(errcode(IDGEN_ERRCODE_NO_WORKER_ID),
			 errmsg("refusing to generate Snowflake IDs: the clock is past the lease's time horizon"),
			 errdetail("IDs under this lease may carry times up to the horizon recorded on the coordinator at the last renewal."),
			 errhint("This resolves at the next renewal; if it persists, check the coordinator and this server's clock.")));
}

void
lease_snapshot(LeaseSnapshot *snap)
{
	uint64		deadline;

	memset(snap, 0, sizeof(*snap));
	if (lease_shared == NULL)
	{
		snap->state = LEASE_STATIC;
		snap->worker_id = -1;
		return;
	}
	SpinLockAcquire(&lease_shared->mutex);
	snap->state = lease_shared->state;
	snap->worker_id = lease_shared->worker_id;
	snap->generation = lease_shared->generation;
	snap->expires_at = lease_shared->expires_at;
	snap->in_use = lease_shared->in_use;
	snap->capacity = lease_shared->capacity;
	strlcpy(snap->last_error, lease_shared->last_error, sizeof(snap->last_error));
	SpinLockRelease(&lease_shared->mutex);

	deadline = pg_atomic_read_u64(&lease_shared->deadline_ns);
	snap->deadline_in_ms = deadline == 0 ? -1 :
		((int64) deadline - idgen_monotonic_ns()) / 1000000;
}

/*
 * The snapshot as monitoring should see it.  The worker may be stuck in a call to a
 * hung coordinator (up to the call timeout) and not have updated the state
 * yet: show what snowflake_next() actually does.  A renewal is overdue once
 * the deadline is closer than a renewal period plus a second would leave.
 */
void
lease_snapshot_effective(LeaseSnapshot *snap)
{
	lease_snapshot(snap);
	if (snap->state == LEASE_HELD || snap->state == LEASE_FAIL_STATIC)
	{
		int64		fresh_ms = ((int64) idgen_lease_ttl_s - Max(1, idgen_lease_ttl_s / 10)) * 1000;

		if (snap->deadline_in_ms <= 0)
			snap->state = LEASE_EXPIRED;
		else if (snap->state == LEASE_HELD &&
				 snap->deadline_in_ms < fresh_ms - (int64) idgen_lease_ttl_s * 1000 / 3 - 1000)
			snap->state = LEASE_FAIL_STATIC;
	}
}

void
lease_publish_held(int32 worker_id, int64 generation, TimestampTz expires_at,
				   int64 deadline_ns, int64 horizon_ms, int32 in_use, int32 capacity)
{
	SpinLockAcquire(&lease_shared->mutex);
	lease_shared->state = LEASE_HELD;
	lease_shared->worker_id = worker_id;
	lease_shared->generation = generation;
	lease_shared->expires_at = expires_at;
	if (in_use >= 0)
		lease_shared->in_use = in_use;
	if (capacity > 0)
		lease_shared->capacity = capacity;
	lease_shared->last_error[0] = '\0';
	SpinLockRelease(&lease_shared->mutex);

	pg_atomic_write_u64(&lease_shared->horizon_ms, (uint64) horizon_ms);
	pg_write_barrier();
	pg_atomic_write_u64(&lease_shared->deadline_ns, (uint64) deadline_ns);
}

void
lease_set_state(LeaseState state, const char *error)
{
	SpinLockAcquire(&lease_shared->mutex);
	lease_shared->state = state;
	if (error)
		strlcpy(lease_shared->last_error, error, sizeof(lease_shared->last_error));
	SpinLockRelease(&lease_shared->mutex);
}

/* Stop issuing under the lease at once (lost, released or expired). */
void
lease_withdraw(LeaseState state, const char *error)
{
	pg_atomic_write_u64(&lease_shared->deadline_ns, 0);
	snowflake_withdraw_worker();
	lease_set_state(state, error);
}
