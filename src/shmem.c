/*-------------------------------------------------------------------------
 *
 * shmem.c
 *	  The one place that sizes and initialises idgen's shared memory.
 *
 * Each module owns a struct of its own (uuidv7.c, floor.c, snowflake.c,
 * lease.c, segment.c, stats.c) and exposes a size function and an init
 * function; this file adds the sizes up in shmem_request_hook and calls the
 * init functions from shmem_startup_hook, under AddinShmemInitLock,
 * chaining to any hooks that were installed before ours.  The floor is
 * initialised before Snowflake, whose state word starts at the floor.
 *
 * Locking protocol, in short (each module's file has its own in full, and
 * each struct field says what protects it):
 *	- Structures are initialised once, in the postmaster (or a standalone
 *	  backend), under AddinShmemInitLock; nothing is taken after that.
 *	- Hot-path state (the UUIDv7 and Snowflake state words, the counters,
 *	  the permission to issue Snowflake IDs) is held in 64-bit atomics,
 *	  updated by compare-and-swap or fetch-add, or (the permission, lease.h)
 *	  published as two copies and a version; no lock is taken to issue an ID.
 *	- The durable Snowflake time floor (floor.c) is raised only by the
 *	  holder of the "idgen" tranche's IDGEN_LWLOCK_FLOOR, held across the
 *	  floor's WAL flush, fsync and wait for synchronous standbys (at most
 *	  idgen.sync_standby_timeout); the value is an atomic that readers load
 *	  without the lock, published only once durable.  Other backends sleep
 *	  on a condition variable, never in an uninterruptible LWLock wait; only
 *	  the lease worker waits for the lock itself (idgen_floor_fence()).
 *	- The lease state shown in idgen.status is under lease.c's spinlock.
 *	- Segment tags live in a shared hash table: IDGEN_LWLOCK_SEGMENT_HASH
 *	  shared to look a tag up, exclusive to add or remove one; each tag's
 *	  buffers have a spinlock of their own for range switches, and numbers
 *	  are handed out by fetch-add without any lock (segment.c's protocol).
 *	- No lock is held while waiting for the clock.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"

#include "shmem.h"
#include "floor.h"
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
	size = add_size(size, idgen_uuidv7_shmem_size());
	size = add_size(size, idgen_floor_shmem_size());
	size = add_size(size, idgen_snowflake_shmem_size());
	size = add_size(size, idgen_segment_shmem_size());
	size = add_size(size, idgen_lease_shmem_size());
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
	idgen_uuidv7_shmem_init();
	idgen_floor_shmem_init();	/* before Snowflake, which starts at its floor */
	idgen_snowflake_shmem_init();
	idgen_segment_shmem_init();
	idgen_lease_shmem_init();
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
