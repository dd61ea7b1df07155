/*-------------------------------------------------------------------------
 *
 * shmem.c
 *	  The one place that sizes and initialises idgen's shared memory.
 *
 * Each module owns a struct of its own (uuidv7.c, snowflake.c, stats.c, ...)
 * and exposes a size function and an init function; this file adds the
 * sizes up in shmem_request_hook and calls the init functions from
 * shmem_startup_hook, under AddinShmemInitLock, chaining to any hooks that
 * were installed before ours.
 *
 * Locking protocol (each module's struct repeats what applies to it):
 *	- Hot-path state (the UUIDv7 and Snowflake state words, the counters) is
 *	  held in 64-bit atomics and updated by compare-and-swap or fetch-add;
 *	  no lock is ever taken to issue an ID.
 *	- Segment tags live in a shared hash table: IDGEN_LWLOCK_SEGMENT_HASH
 *	  shared to look a tag up, exclusive to add or remove one; each tag's
 *	  buffers have a spinlock of their own for range switches, and numbers
 *	  are handed out by fetch-add without any lock (segment.h).
 *	- The durable Snowflake time floor is raised only by a process holding
 *	  the "idgen" LWLock tranche's IDGEN_LWLOCK_FLOOR in exclusive mode; the
 *	  value itself is an atomic that readers load without the lock, and it is
 *	  published only after it is durable.
 *	- Structures are initialised once, in the postmaster (or a standalone
 *	  backend), under AddinShmemInitLock; nothing is taken after that.
 *	- No lock is held while waiting for the clock.  The floor LWLock is held
 *	  across the floor's WAL flush, fsync and wait for synchronous standbys
 *	  (at most idgen.sync_standby_timeout); other backends sleep on a
 *	  condition variable that the holder broadcasts when it lets go, never
 *	  in an uninterruptible LWLock wait.  Only the lease worker waits for
 *	  the lock itself, once, when it withdraws the permission to issue
 *	  (snowflake_fence_floor()).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"

#include "shmem.h"
#include "lease.h"
#include "segment.h"
#include "snowflake.h"
#include "stats.h"
#include "uuidv7.h"

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static Size
idgen_shmem_size(void)
{
	Size		size = 0;

	size = add_size(size, idgen_stats_shmem_size());
	size = add_size(size, uuidv7_shmem_size());
	size = add_size(size, snowflake_shmem_size());
	size = add_size(size, idgen_segment_shmem_size());
	size = add_size(size, lease_shmem_size());
	return size;
}

static void
idgen_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();

	RequestAddinShmemSpace(idgen_shmem_size());
	RequestNamedLWLockTranche(IDGEN_LWLOCK_TRANCHE, IDGEN_NUM_LWLOCKS);
}

static void
idgen_shmem_startup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	idgen_stats_shmem_init();
	uuidv7_shmem_init();
	snowflake_shmem_init();
	idgen_segment_shmem_init();
	lease_shmem_init();
	LWLockRelease(AddinShmemInitLock);
}

void
idgen_shmem_install_hooks(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = idgen_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = idgen_shmem_startup;
}

/* One of idgen's LWLocks; valid only in processes attached to shared memory. */
LWLock *
idgen_lwlock(int which)
{
	return &GetNamedLWLockTranche(IDGEN_LWLOCK_TRANCHE)[which].lock;
}
