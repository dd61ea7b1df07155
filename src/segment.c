/*-------------------------------------------------------------------------
 *
 * segment.c
 *	  idgen.segment_next(tag [, n]): short, dense, increasing numbers per
 *	  tag, one at a time or in blocks of n consecutive numbers, from ranges
 *	  granted by a background worker of the tag's database, with a double
 *	  buffer.
 *
 * Tags belong to a database: each database where the extension is created
 * has its own idgen.segment_alloc, and its ranges are granted by a worker
 * connected to it (worker.c; see SegmentDatabase in segment.h for when one
 * starts and exits).  Each tag in use has a slot in shared memory (at most
 * idgen.segment_max_tags over the server), found through a shared hash
 * table keyed by database OID and tag.  A slot holds
 * the current range, handed out lock-free by fetch-add (see SegmentSlot in
 * segment.h for the protocol), and the next range.  Once
 * idgen.segment_prefetch_at percent of the current range is used, the
 * caller that draws that exact value sets the slot's prefetch flag and wakes
 * the worker, which grants the next range in a transaction of its own
 * (segment_grant.c); the worker also looks at every slot once a second.  A
 * caller that finds the current range used up switches to the next one
 * under the slot's spinlock; if there is none, it asks the worker for a
 * grant and sleeps on the grant condition variable, for at most
 * idgen.segment_wait_timeout.
 *
 * Ranges come from the worker only after their grant has committed durably
 * and, when standbys are attached, after they have confirmed the grant's
 * fence (segment_grant.c), so a caller's rollback never returns numbers, a
 * crash loses at most the unused part of the buffered ranges (gaps, never
 * repeats), and a promoted standby burns past every range handed out.
 *
 * Buffered ranges are forgotten as soon as the table they were granted from
 * is gone, in every backend: a slot is taken only for a tag that exists, and
 * freed (its generation changed, which every caller checks after each draw)
 * when
 *	- its tag is dropped (segment_drop) or created again (segment_create);
 *	- the worker finds the tag missing from idgen.segment_alloc;
 *	- idgen.segment_alloc is dropped (DROP EXTENSION, DROP SCHEMA, ...) or
 *	  truncated, or its database is dropped: an object-access hook frees
 *	  every slot of that database in the dropping transaction, before it
 *	  commits and
 *	  while it holds the table's AccessExclusiveLock, so no grant from the
 *	  old table can come in after it (one already committed finds its slot
 *	  freed and is dropped) and no draw made after the commit uses an old
 *	  range;
 *	- the worker grants from a table other than the one the database's
 *	  buffered ranges came from (anything the hook did not see): every slot
 *	  of the database is freed before the new range is published.
 * A backend that still points at a freed slot (its cached slot, or a wait
 * in progress) sees the new generation and looks the tag up again, or fails
 * with "does not exist".
 *
 * Locks: the hash table, the slots' generations and the databases' slot
 * counts are protected by IDGEN_LWLOCK_SEGMENT_HASH (shared to look up,
 * exclusive to take or free a slot); a slot's non-atomic fields by its
 * spinlock, the databases' worker fields by SegmentShared.mutex; spinlocks
 * are never held across anything but a few assignments (no allocation, no
 * error).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xlog.h"
#include "catalog/objectaccess.h"
#include "catalog/pg_class.h"
#include "catalog/pg_database.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "replication/slot.h"
#include "replication/walsender_private.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "clock.h"
#include "guc.h"
#include "idgen.h"
#include "segment.h"
#include "shmem.h"
#include "stats.h"
#include "worker.h"

/*
 * A worker start requested this long ago that has not attached (it failed
 * to start, or to connect) is requested again by the next caller.
 */
#define IDGEN_SEGMENT_WORKER_START_TIMEOUT_MS	10000

/* A tag of a database: the hash key (no padding: hashed as bytes). */
typedef struct SegmentKey
{
	char		tag[NAMEDATALEN];	/* NUL-padded */
	Oid			dbid;
} SegmentKey;

/* Hash entry: a tag and the number of its slot. */
typedef struct SegmentTagEntry
{
	SegmentKey	key;
	int			slotno;
} SegmentTagEntry;

static SegmentShared *segment_shared = NULL;
static SegmentDatabase *segment_dbs = NULL; /* after the slots */
static int	segment_ndbs = 0;
static HTAB *segment_hash = NULL;
static object_access_hook_type prev_object_access_hook = NULL;

/* This backend's last slot, to skip the hash lookup on repeated calls. */
static SegmentSlot *cached_slot = NULL;
static uint64 cached_generation = 0;
static SegmentKey cached_key;

/* The worker's database entry (worker side only). */
static int	my_dbno = -1;

static Size
segment_struct_size(void)
{
	Size		size;

	size = add_size(offsetof(SegmentShared, slots),
					mul_size(idgen_segment_max_tags, sizeof(SegmentSlot)));
	size = MAXALIGN(size);
	return add_size(size, mul_size(idgen_segment_max_tags + max_worker_processes,
								   sizeof(SegmentDatabase)));
}

Size
segment_shmem_size(void)
{
	return add_size(MAXALIGN(segment_struct_size()),
					hash_estimate_size(idgen_segment_max_tags, sizeof(SegmentTagEntry)));
}

/* Called with AddinShmemInitLock held. */
void
segment_shmem_init(void)
{
	bool		found;
	HASHCTL		info;
	Size		size = segment_struct_size();

	segment_shared = ShmemInitStruct("idgen segments", size, &found);
	segment_dbs = (SegmentDatabase *)
		((char *) segment_shared +
		 MAXALIGN(offsetof(SegmentShared, slots) +
				  sizeof(SegmentSlot) * idgen_segment_max_tags));
	segment_ndbs = idgen_segment_max_tags + max_worker_processes;
	if (!found)
	{
		memset(segment_shared, 0, size);
		SpinLockInit(&segment_shared->mutex);
		pg_atomic_init_u64(&segment_shared->generation_counter, 0);
		ConditionVariableInit(&segment_shared->grant_cv);
		for (int i = 0; i < idgen_segment_max_tags; i++)
		{
			SegmentSlot *slot = &segment_shared->slots[i];

			SpinLockInit(&slot->mutex);
			pg_atomic_init_u64(&slot->generation, 0);
			pg_atomic_init_u64(&slot->cur_next, 0);
			pg_atomic_init_u64(&slot->cur_end, 0);
			pg_atomic_init_u64(&slot->prefetch_at, PG_UINT64_MAX);
			pg_atomic_init_u32(&slot->prefetch_wanted, 0);
			pg_atomic_init_u32(&slot->block_max, 0);
		}
	}

	info.keysize = sizeof(SegmentKey);
	info.entrysize = sizeof(SegmentTagEntry);
	segment_hash = ShmemInitHash("idgen segment tags",
								 idgen_segment_max_tags, idgen_segment_max_tags,
								 &info, HASH_ELEM | HASH_BLOBS);
}

static void
segment_require_shared(void)
{
	if (segment_shared == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("idgen segments need idgen to be loaded via shared_preload_libraries"),
				 errdetail("Segment ranges are buffered in shared memory and granted by idgen's background worker."),
				 errhint("Add idgen to shared_preload_libraries in postgresql.conf and restart the server.")));
}

/* Validate a tag argument; key it, NUL-padded, in this database. */
static void
segment_tag_key(text *tag, SegmentKey *key)
{
	int			len = VARSIZE_ANY_EXHDR(tag);

	if (len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("segment tag must not be empty")));
	if (len > SEGMENT_TAG_MAXLEN)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("segment tag is too long"),
				 errdetail("A tag has at most %d bytes; this one has %d.",
						   SEGMENT_TAG_MAXLEN, len)));
	memset(key, 0, sizeof(SegmentKey));
	memcpy(key->tag, VARDATA_ANY(tag), len);
	key->dbid = MyDatabaseId;
}

/*
 * The entry of a database, or -1; with create, take a free entry for it if
 * it has none (-1 if none is free).  Caller holds the hash lock, exclusively
 * to create.
 */
static int
segment_db_for(Oid dbid, bool create)
{
	int			free_dbno = -1;

	for (int i = 0; i < segment_ndbs; i++)
	{
		if (segment_dbs[i].dbid == dbid)
			return i;
		if (free_dbno < 0 && segment_dbs[i].dbid == InvalidOid)
			free_dbno = i;
	}
	if (!create || free_dbno < 0)
		return -1;
	SpinLockAcquire(&segment_shared->mutex);
	memset(&segment_dbs[free_dbno], 0, sizeof(SegmentDatabase));
	segment_dbs[free_dbno].dbid = dbid;
	SpinLockRelease(&segment_shared->mutex);
	return free_dbno;
}

/*
 * Free a database's entry if it has neither slots nor a worker.  Caller
 * holds the hash lock exclusively.
 */
static void
segment_db_release_if_unused(SegmentDatabase *db)
{
	if (db->nslots > 0)
		return;
	SpinLockAcquire(&segment_shared->mutex);
	if (db->worker_pid == 0)
		memset(db, 0, sizeof(SegmentDatabase));
	SpinLockRelease(&segment_shared->mutex);
}

/* Is this idgen.database, whose worker starts with the server? */
static bool
segment_in_home_database(void)
{
	static Oid	home = InvalidOid;
	static bool looked_up = false;

	if (!looked_up)
	{
		home = get_database_oid(idgen_database, true);
		looked_up = true;
	}
	return MyDatabaseId == home;
}

/*
 * Wake the worker of a slot's database.  With launch, start one if there is
 * none and none is starting (outside idgen.database, whose worker the
 * postmaster starts and restarts); fail with a hint if none can be started.
 */
static void
segment_wake_worker(SegmentSlot *slot, bool launch)
{
	SegmentDatabase *db = &segment_dbs[slot->dbno];
	Oid			dbid = slot->dbid;
	Latch	   *latch = NULL;
	bool		start = false;
	TimestampTz now = 0;

	if (launch)
	{
		launch = !segment_in_home_database();
		now = GetCurrentTimestamp();
	}
	SpinLockAcquire(&segment_shared->mutex);
	if (db->dbid == dbid)
	{
		latch = db->worker_latch;
		if (latch == NULL && launch &&
			(db->launched_at == 0 ||
			 TimestampDifferenceExceeds(db->launched_at, now,
										IDGEN_SEGMENT_WORKER_START_TIMEOUT_MS)))
		{
			db->launched_at = now;
			start = true;
		}
	}
	SpinLockRelease(&segment_shared->mutex);
	if (latch)
		SetLatch(latch);
	if (start && !idgen_launch_segment_worker(dbid))
	{
		SpinLockAcquire(&segment_shared->mutex);
		if (db->dbid == dbid && db->launched_at == now)
			db->launched_at = 0;
		SpinLockRelease(&segment_shared->mutex);
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("could not start idgen's segment worker for database \"%s\"",
						get_database_name(dbid)),
				 errdetail("Each database whose segment tags are in use needs a background worker of its own, and all max_worker_processes (%d) are taken.",
						   max_worker_processes),
				 errhint("Raise max_worker_processes and restart the server, or use segment numbers in fewer databases.")));
	}
}

/*
 * Empty a slot's buffers and bookkeeping.  Caller holds slot->mutex and has
 * already written the slot's new generation (see SegmentSlot).
 */
static void
segment_slot_reset(SegmentSlot *slot)
{
	pg_atomic_write_u64(&slot->cur_end, 0);
	pg_atomic_write_u64(&slot->cur_next, 0);
	pg_atomic_write_u64(&slot->prefetch_at, PG_UINT64_MAX);
	pg_atomic_write_u32(&slot->prefetch_wanted, 0);
	pg_atomic_write_u32(&slot->block_max, 0);
	slot->cur_start = 0;
	slot->cur_since_ns = 0;
	slot->has_next = false;
	slot->next_start = slot->next_end = 0;
	slot->has_pending = false;
	slot->pending_start = slot->pending_end = 0;
	slot->pending_step = 0;
	slot->pending_lsn = InvalidXLogRecPtr;
	slot->fence = -1;
	slot->fence_lsn = InvalidXLogRecPtr;
	slot->fence_confirmed = -1;
	slot->grant_requested = false;
	slot->waiters = 0;
	slot->error_seq = 0;
	slot->error_code = 0;
	slot->error_message[0] = '\0';
	slot->step_in_use = 0;
	slot->last_grant_at = 0;
	slot->grants = 0;
}

/*
 * Free a slot: its generation goes to 0 before its range is reset, so a
 * caller drawing from it meanwhile discards what it drew.  Caller holds the
 * hash lock exclusively; waiters are woken by the caller.
 */
static void
segment_free_slot(SegmentTagEntry *entry)
{
	SegmentSlot *slot = &segment_shared->slots[entry->slotno];
	SegmentDatabase *db = &segment_dbs[slot->dbno];

	SpinLockAcquire(&slot->mutex);
	pg_atomic_write_u64(&slot->generation, 0);
	pg_write_barrier();
	segment_slot_reset(slot);
	SpinLockRelease(&slot->mutex);
	hash_search(segment_hash, &entry->key, HASH_REMOVE, NULL);
	db->nslots--;
	segment_db_release_if_unused(db);
}

/*
 * Free the slot of a tag; with generation > 0 only if it is still that use
 * of the slot (a newer one for the same tag is left alone).
 */
static void
segment_free_tag(const SegmentKey *key, uint64 generation)
{
	LWLock	   *lock = idgen_lwlock(IDGEN_LWLOCK_SEGMENT_HASH);
	SegmentTagEntry *entry;

	LWLockAcquire(lock, LW_EXCLUSIVE);
	entry = hash_search(segment_hash, key, HASH_FIND, NULL);
	if (entry && (generation == 0 ||
				  pg_atomic_read_u64(&segment_shared->slots[entry->slotno].generation) == generation))
		segment_free_slot(entry);
	LWLockRelease(lock);
	ConditionVariableBroadcast(&segment_shared->grant_cv);
}

/*
 * Free every slot of a database and forget the table they were granted
 * from.  Caller holds the hash lock exclusively.
 */
static void
segment_free_database_locked(Oid dbid)
{
	HASH_SEQ_STATUS status;
	SegmentTagEntry *entry;
	int			dbno;

	hash_seq_init(&status, segment_hash);
	while ((entry = hash_seq_search(&status)) != NULL)
		if (entry->key.dbid == dbid)
			segment_free_slot(entry);
	dbno = segment_db_for(dbid, false);
	if (dbno >= 0)
		segment_dbs[dbno].alloc_relid = InvalidOid;
}

/*
 * Free every slot of a database; with stop_worker (the database is being
 * dropped), also ask its worker to exit, so that it does not keep the drop
 * waiting.
 */
static void
segment_free_database(Oid dbid, bool stop_worker)
{
	LWLock	   *lock = idgen_lwlock(IDGEN_LWLOCK_SEGMENT_HASH);
	int			dbno;
	Latch	   *latch = NULL;

	LWLockAcquire(lock, LW_EXCLUSIVE);
	segment_free_database_locked(dbid);
	dbno = segment_db_for(dbid, false);
	if (dbno >= 0 && stop_worker)
	{
		SpinLockAcquire(&segment_shared->mutex);
		segment_dbs[dbno].exit_requested = true;
		latch = segment_dbs[dbno].worker_latch;
		SpinLockRelease(&segment_shared->mutex);
	}
	LWLockRelease(lock);
	if (latch)
		SetLatch(latch);
	ConditionVariableBroadcast(&segment_shared->grant_cv);
}

/* Has this database slots or a worker (ranges buffered or on their way)? */
static bool
segment_database_in_use(Oid dbid)
{
	LWLock	   *lock = idgen_lwlock(IDGEN_LWLOCK_SEGMENT_HASH);
	bool		in_use;

	LWLockAcquire(lock, LW_SHARED);
	in_use = segment_db_for(dbid, false) >= 0;
	LWLockRelease(lock);
	return in_use;
}

/* Is this relation idgen.segment_alloc of a database in use? */
static bool
segment_is_alloc_table(Oid relid)
{
	char	   *relname;
	char	   *nspname;

	if (!segment_database_in_use(MyDatabaseId))
		return false;
	relname = get_rel_name(relid);
	if (relname == NULL || strcmp(relname, "segment_alloc") != 0)
		return false;
	nspname = get_namespace_name(get_rel_namespace(relid));
	return nspname != NULL && strcmp(nspname, "idgen") == 0;
}

/*
 * Object-access hook: the drop or truncation of idgen.segment_alloc, or the
 * drop of its database, frees every slot of that database in the dropping
 * transaction (see the file header).  A drop that rolls back has cost a gap
 * only.
 */
static void
segment_object_access(ObjectAccessType access, Oid classId, Oid objectId,
					  int subId, void *arg)
{
	if (prev_object_access_hook)
		prev_object_access_hook(access, classId, objectId, subId, arg);
	if (segment_shared == NULL || (access != OAT_DROP && access != OAT_TRUNCATE))
		return;
	if (access == OAT_DROP && classId == DatabaseRelationId &&
		segment_database_in_use(objectId))
		segment_free_database(objectId, true);
	else if (classId == RelationRelationId && subId == 0 &&
			 segment_is_alloc_table(objectId))
		segment_free_database(MyDatabaseId, false);
}

void
segment_install_hooks(void)
{
	prev_object_access_hook = object_access_hook;
	object_access_hook = segment_object_access;
}

/*
 * Only a tag that exists gets a slot: ask the table (through a SECURITY
 * DEFINER function, as callers need not be able to read it).
 */
static void
segment_require_known_tag(const char *key)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	bool		isnull;
	bool		exists;

	values[0] = CStringGetTextDatum(key);
	SPI_connect();
	if (SPI_execute_with_args("SELECT idgen._segment_exists($1)", 1, types, values,
							  NULL, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "idgen: could not look up segment tag");
	exists = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	if (!exists)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("segment tag \"%s\" does not exist", key),
				 errhint("Create the tag with idgen.segment_create().")));
}

/* Take a free slot for a tag.  Caller holds the hash lock exclusively. */
static SegmentTagEntry *
segment_take_slot(const SegmentKey *key)
{
	SegmentTagEntry *entry;
	SegmentSlot *slot = NULL;
	int			slotno;
	int			dbno;
	bool		found;

	/* shared hash tables grow into spare shared memory: enforce the limit */
	if (hash_get_num_entries(segment_hash) >= idgen_segment_max_tags)
		return NULL;
	for (slotno = 0; slotno < idgen_segment_max_tags; slotno++)
	{
		slot = &segment_shared->slots[slotno];
		if (pg_atomic_read_u64(&slot->generation) == 0)
			break;
	}
	if (slotno == idgen_segment_max_tags)
		return NULL;
	/* there is an entry for every database that can have a slot */
	dbno = segment_db_for(key->dbid, true);
	if (dbno < 0)
		return NULL;
	entry = hash_search(segment_hash, key, HASH_ENTER_NULL, &found);
	if (entry == NULL)
	{
		segment_db_release_if_unused(&segment_dbs[dbno]);
		return NULL;
	}
	Assert(!found);
	entry->slotno = slotno;
	segment_dbs[dbno].nslots++;

	SpinLockAcquire(&slot->mutex);
	segment_slot_reset(slot);
	memcpy(slot->tag, key->tag, NAMEDATALEN);
	slot->dbid = key->dbid;
	slot->dbno = dbno;
	pg_write_barrier();
	pg_atomic_write_u64(&slot->generation,
						pg_atomic_add_fetch_u64(&segment_shared->generation_counter, 1));
	SpinLockRelease(&slot->mutex);
	return entry;
}

/* Find or take the slot of a tag; return it and its generation. */
static SegmentSlot *
segment_lookup(const SegmentKey *key, uint64 *generation)
{
	LWLock	   *lock = idgen_lwlock(IDGEN_LWLOCK_SEGMENT_HASH);
	SegmentTagEntry *entry;
	SegmentSlot *slot;

	if (cached_slot && memcmp(&cached_key, key, sizeof(SegmentKey)) == 0 &&
		pg_atomic_read_u64(&cached_slot->generation) == cached_generation)
	{
		*generation = cached_generation;
		return cached_slot;
	}
	cached_slot = NULL;

	LWLockAcquire(lock, LW_SHARED);
	entry = hash_search(segment_hash, key, HASH_FIND, NULL);
	if (entry)
	{
		slot = &segment_shared->slots[entry->slotno];
		cached_generation = pg_atomic_read_u64(&slot->generation);
	}
	LWLockRelease(lock);

	if (entry == NULL)
	{
		segment_require_known_tag(key->tag);

		LWLockAcquire(lock, LW_EXCLUSIVE);
		entry = hash_search(segment_hash, key, HASH_FIND, NULL);
		if (entry == NULL)
			entry = segment_take_slot(key);
		if (entry == NULL)
		{
			LWLockRelease(lock);
			ereport(ERROR,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("too many segment tags in use"),
					 errdetail("Shared memory holds buffers for at most %d tags (idgen.segment_max_tags), and all are taken.",
							   idgen_segment_max_tags),
					 errhint("Raise idgen.segment_max_tags and restart the server, or drop tags that are no longer used.")));
		}
		slot = &segment_shared->slots[entry->slotno];
		cached_generation = pg_atomic_read_u64(&slot->generation);
		LWLockRelease(lock);
	}

	cached_key = *key;
	cached_slot = slot;
	*generation = cached_generation;
	return slot;
}

/*
 * Make the buffered next range current at now_ns (monotonic, read before
 * the spinlock was taken).  Caller holds slot->mutex.
 */
static void
segment_switch(SegmentSlot *slot, int64 now_ns)
{
	uint64		size = slot->next_end - slot->next_start;
	uint64		used_for_prefetch = size * idgen_segment_prefetch_at / 100;

	slot->cur_start = slot->next_start;
	slot->cur_since_ns = now_ns;
	pg_atomic_write_u64(&slot->prefetch_at, slot->next_start + used_for_prefetch);
	pg_atomic_write_u64(&slot->cur_next, slot->next_start);
	pg_write_barrier();
	pg_atomic_write_u64(&slot->cur_end, slot->next_end);
	slot->has_next = false;
	if (used_for_prefetch == 0)
		pg_atomic_write_u32(&slot->prefetch_wanted, 1);
}

/*
 * Sleep until the worker has granted a range for this slot (return true),
 * the slot is freed (return false), the worker reports a failure, or
 * idgen.segment_wait_timeout passes.  Not inlined into segment_refill's
 * PG_TRY block, where its locals could be clobbered by longjmp.
 */
static pg_noinline bool
segment_wait_for_range(SegmentSlot *slot, uint64 generation, const char *key,
					   uint64 observed_end, uint32 error_seq)
{
	int64		deadline_ns = idgen_monotonic_ns() +
		(int64) idgen_segment_wait_timeout_ms * 1000000;

	ConditionVariablePrepareToSleep(&segment_shared->grant_cv);
	for (;;)
	{
		bool		done = false;
		bool		gone = false;
		bool		held_back = false;
		int			code = 0;
		char		message[sizeof(slot->error_message)];
		int64		remaining_ns;

		SpinLockAcquire(&slot->mutex);
		if (pg_atomic_read_u64(&slot->generation) != generation)
			gone = true;
		else if (slot->error_seq != error_seq)
		{
			code = slot->error_code;
			strlcpy(message, slot->error_message, sizeof(message));
		}
		else if (pg_atomic_read_u64(&slot->cur_end) != observed_end || slot->has_next)
			done = true;
		else
			held_back = slot->has_pending;
		SpinLockRelease(&slot->mutex);

		if (done || gone)
			return done;
		if (code)
			ereport(ERROR,
					(errcode(code),
					 errmsg("could not get a range for segment tag \"%s\"", key),
					 errdetail("idgen's background worker failed to grant one: %s", message)));

		remaining_ns = deadline_ns - idgen_monotonic_ns();
		if (remaining_ns <= 0)
		{
			idgen_count_event(IDGEN_C_SEGMENT_WAIT_TIMEOUTS);
			if (held_back)
				ereport(ERROR,
						(errcode(IDGEN_ERRCODE_SEGMENT_UNAVAILABLE),
						 errmsg("timed out waiting for a range for segment tag \"%s\"", key),
						 errdetail("A range was granted but is held back until the standbys confirm its fence, and they did not within idgen.segment_wait_timeout (%d ms).",
								   idgen_segment_wait_timeout_ms),
						 errhint("Check the standbys in pg_stat_replication and the physical replication slots in pg_replication_slots; drop the slot of a standby that is gone for good.")));
			ereport(ERROR,
					(errcode(IDGEN_ERRCODE_SEGMENT_UNAVAILABLE),
					 errmsg("timed out waiting for a range for segment tag \"%s\"", key),
					 errdetail("Both buffers of the tag were empty and no range was granted within idgen.segment_wait_timeout (%d ms).",
							   idgen_segment_wait_timeout_ms),
					 errhint("Check that the idgen worker of this database is running (pg_stat_activity, backend_type 'idgen worker'), what it waits for (a lock on the tag's row in idgen.segment_alloc, synchronous standbys), and the server log.")));
		}
		(void) ConditionVariableTimedSleep(&segment_shared->grant_cv,
										   Min(remaining_ns / 1000000 + 1, 1000),
										   PG_WAIT_EXTENSION);
		segment_wake_worker(slot, true);
	}
}

/*
 * Slow path: the range whose end we read is used up.  Switch to the next
 * range, or ask the worker for one and wait.  Returns once a caller may try
 * the fast path again (which also notices a freed slot); false if the slot
 * was freed while this call waited.
 */
static bool
segment_refill(SegmentSlot *slot, uint64 generation, const char *key,
			   uint64 observed_end)
{
	uint32		error_seq;
	volatile bool granted = false;
	int64		now_ns = idgen_monotonic_ns();

	SpinLockAcquire(&slot->mutex);
	if (pg_atomic_read_u64(&slot->generation) != generation ||
		pg_atomic_read_u64(&slot->cur_end) != observed_end)
	{
		SpinLockRelease(&slot->mutex);
		return true;			/* freed, or someone else switched already */
	}
	if (slot->has_next)
	{
		segment_switch(slot, now_ns);
		SpinLockRelease(&slot->mutex);
		return true;
	}
	slot->grant_requested = true;
	slot->waiters++;
	error_seq = slot->error_seq;
	SpinLockRelease(&slot->mutex);

	idgen_count_event(IDGEN_C_SEGMENT_CALLER_WAITS);

	/* waiters must come down however the wait ends (cancel included) */
	PG_TRY();
	{
		segment_wake_worker(slot, true);
		granted = segment_wait_for_range(slot, generation, key, observed_end, error_seq);
	}
	PG_FINALLY();
	{
		ConditionVariableCancelSleep();
		SpinLockAcquire(&slot->mutex);
		/* a freed slot's count was reset, maybe for another tag */
		if (pg_atomic_read_u64(&slot->generation) == generation)
			slot->waiters--;
		SpinLockRelease(&slot->mutex);
	}
	PG_END_TRY();
	return granted;
}

/*
 * Checks shared by both forms of segment_next(): the tag argument (keyed
 * in this database), preload, recovery.
 */
static inline void
segment_check_call(FunctionCallInfo fcinfo, SegmentKey *key)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("segment tag must not be null")));
	segment_require_shared();
	segment_tag_key(PG_GETARG_TEXT_PP(0), key);

	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot hand out segment numbers during recovery"),
				 errdetail("Segment ranges are granted only by a primary."),
				 errhint("Call idgen.segment_next() on the primary.")));
}

/*
 * The slot was freed while a call waited: the tag was dropped, or the
 * buffers forgotten with their table.  The call looks the tag up once more
 * (it may exist in the new table); a second time it is gone (a snapshot
 * older than the drop still shows the tag).
 */
static void
segment_freed_while_waiting(const char *key, bool *freed_once)
{
	if (*freed_once)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("segment tag \"%s\" does not exist", key),
				 errdetail("The tag, or the table idgen.segment_alloc, was dropped while this call waited for a range."),
				 errhint("Create the tag with idgen.segment_create().")));
	*freed_once = true;
}

PG_FUNCTION_INFO_V1(idgen_segment_next);

/* idgen.segment_next(tag text) RETURNS bigint */
Datum
idgen_segment_next(PG_FUNCTION_ARGS)
{
	SegmentKey	key;
	SegmentSlot *slot;
	uint64		generation;
	bool		freed_once = false;

	segment_check_call(fcinfo, &key);

	slot = segment_lookup(&key, &generation);
	for (;;)
	{
		uint64		end = pg_atomic_read_u64(&slot->cur_end);
		uint64		value;

		pg_read_barrier();
		value = pg_atomic_fetch_add_u64(&slot->cur_next, 1);
		if (unlikely(pg_atomic_read_u64(&slot->generation) != generation))
		{
			/* the slot was freed (and maybe reused) meanwhile */
			slot = segment_lookup(&key, &generation);
			continue;
		}
		if (likely(value < end))
		{
			if (unlikely(value == pg_atomic_read_u64(&slot->prefetch_at)))
			{
				pg_atomic_write_u32(&slot->prefetch_wanted, 1);
				segment_wake_worker(slot, false);
			}
			idgen_count_issued(IDGEN_C_SEGMENT_ISSUED);
			PG_RETURN_INT64((int64) value);
		}
		if (!segment_refill(slot, generation, key.tag, end))
		{
			segment_freed_while_waiting(key.tag, &freed_once);
			slot = segment_lookup(&key, &generation);
		}
	}
}

PG_FUNCTION_INFO_V1(idgen_segment_next_block);

/*
 * idgen.segment_next(tag text, n integer) RETURNS bigint: the first of n
 * consecutive numbers, all the caller's.
 *
 * One fetch-add of n draws the block, so no other caller can get any of its
 * numbers (the same protocol as a single draw: see SegmentSlot).  A block
 * lies within one range: one that would cross the end of the current range
 * leaves the rest of that range unused (a gap, as a rollback leaves) and is
 * drawn again from the next range.  n is at most the tag's own step, which
 * every range holds (segment_grant.c never grants less), so a block always
 * fits in a fresh range; the slot learns that step with its first grant, so
 * a call that finds none yet waits for it before checking n.
 */
Datum
idgen_segment_next_block(PG_FUNCTION_ARGS)
{
	SegmentKey	key;
	SegmentSlot *slot;
	uint64		generation;
	bool		freed_once = false;
	int32		n;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("segment block size must not be null")));
	n = PG_GETARG_INT32(1);
	if (n < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("segment block size must be at least 1"),
				 errdetail("The block size given was %d.", n),
				 errhint("Ask for between 1 and the tag's step numbers per call.")));
	segment_check_call(fcinfo, &key);

	slot = segment_lookup(&key, &generation);
	for (;;)
	{
		uint32		block_max = pg_atomic_read_u32(&slot->block_max);
		uint64		end = pg_atomic_read_u64(&slot->cur_end);
		uint64		value;

		if (block_max != 0)
		{
			if ((uint32) n > block_max &&
				pg_atomic_read_u64(&slot->generation) == generation)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("segment block size %d exceeds the step of segment tag \"%s\"",
								n, key.tag),
						 errdetail("A block comes from one range, and every range of this tag holds at least its step, %u numbers.",
								   block_max),
						 errhint("Ask for at most %u numbers per call, or create the tag with a step of at least %d.",
								 block_max, n)));
			pg_read_barrier();
			value = pg_atomic_fetch_add_u64(&slot->cur_next, (uint64) n);
			if (unlikely(pg_atomic_read_u64(&slot->generation) != generation))
			{
				slot = segment_lookup(&key, &generation);
				continue;
			}
			if (value + n <= end && (uint32) n <= block_max)
			{
				uint64		prefetch_at = pg_atomic_read_u64(&slot->prefetch_at);

				if (prefetch_at >= value && prefetch_at < value + n)
				{
					pg_atomic_write_u32(&slot->prefetch_wanted, 1);
					segment_wake_worker(slot, false);
				}
				idgen_count_issued_n(IDGEN_C_SEGMENT_ISSUED, (uint64) n);
				PG_RETURN_INT64((int64) value);
			}
		}
		if (!segment_refill(slot, generation, key.tag, end))
		{
			segment_freed_while_waiting(key.tag, &freed_once);
			slot = segment_lookup(&key, &generation);
		}
	}
}

PG_FUNCTION_INFO_V1(idgen_current_timeline);

/* idgen._current_timeline(): the timeline WAL is written on (segment_create) */
Datum
idgen_current_timeline(PG_FUNCTION_ARGS)
{
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot create segment tags during recovery")));
	PG_RETURN_INT32((int32) GetWALInsertionTimeLine());
}

PG_FUNCTION_INFO_V1(idgen_segment_forget);

/*
 * idgen._segment_forget(tag text): drop a tag's buffers (segment_drop,
 * segment_create).
 */
Datum
idgen_segment_forget(PG_FUNCTION_ARGS)
{
	SegmentKey	key;

	if (segment_shared == NULL)
		PG_RETURN_VOID();
	segment_tag_key(PG_GETARG_TEXT_PP(0), &key);
	segment_free_tag(&key, 0);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(idgen_segment_buffers);

/*
 * idgen.segment_buffers() RETURNS TABLE(tag text, ranges_buffered int,
 *   current_start bigint, current_end bigint, next_value bigint,
 *   next_start bigint, next_end bigint, step_in_use bigint,
 *   grants bigint, waiters int)
 */
Datum
idgen_segment_buffers(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	LWLock	   *lock;

	InitMaterializedSRF(fcinfo, 0);
	if (segment_shared == NULL)
		return (Datum) 0;

	lock = idgen_lwlock(IDGEN_LWLOCK_SEGMENT_HASH);
	LWLockAcquire(lock, LW_SHARED);
	for (int i = 0; i < idgen_segment_max_tags; i++)
	{
		SegmentSlot *slot = &segment_shared->slots[i];
		Datum		values[10];
		bool		nulls[10] = {false};
		uint64		cur_next;
		uint64		cur_end;
		uint64		cur_start;
		bool		has_next;
		uint64		next_start;
		uint64		next_end;
		int64		step_in_use;
		uint64		grants;
		int			waiters;

		/* generations change only under the exclusive lock; tags of this database */
		if (pg_atomic_read_u64(&slot->generation) == 0 || slot->dbid != MyDatabaseId)
			continue;

		/* copy under the spinlock; build datums (which may allocate) after */
		SpinLockAcquire(&slot->mutex);
		cur_next = pg_atomic_read_u64(&slot->cur_next);
		cur_end = pg_atomic_read_u64(&slot->cur_end);
		cur_start = slot->cur_start;
		has_next = slot->has_next;
		next_start = slot->next_start;
		next_end = slot->next_end;
		step_in_use = slot->step_in_use;
		grants = slot->grants;
		waiters = slot->waiters;
		SpinLockRelease(&slot->mutex);

		values[0] = CStringGetTextDatum(slot->tag);
		values[1] = Int32GetDatum((cur_next < cur_end ? 1 : 0) + (has_next ? 1 : 0));
		values[2] = Int64GetDatum((int64) cur_start);
		values[3] = Int64GetDatum((int64) cur_end);
		values[4] = Int64GetDatum((int64) Min(cur_next, cur_end));
		values[5] = Int64GetDatum((int64) next_start);
		values[6] = Int64GetDatum((int64) next_end);
		nulls[5] = nulls[6] = !has_next;
		nulls[2] = nulls[3] = nulls[4] = (cur_end == 0);
		values[7] = Int64GetDatum(step_in_use);
		values[8] = Int64GetDatum((int64) grants);
		values[9] = Int32GetDatum(waiters);

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	LWLockRelease(lock);
	return (Datum) 0;
}

/*
 * Worker side.  A worker serves the slots of the database it is connected
 * to and publishes its latch in that database's entry, so that callers can
 * wake it.  It detaches under the exclusive hash lock, so a caller that
 * takes a slot either finds it attached or starts another.
 */
static void
segment_worker_detach_locked(void)
{
	SegmentDatabase *db = &segment_dbs[my_dbno];

	SpinLockAcquire(&segment_shared->mutex);
	if (db->worker_pid == MyProcPid)
	{
		db->worker_latch = NULL;
		db->worker_pid = 0;
	}
	SpinLockRelease(&segment_shared->mutex);
	segment_db_release_if_unused(db);
	my_dbno = -1;
}

static void
segment_worker_exit(int code, Datum arg)
{
	LWLock	   *lock = idgen_lwlock(IDGEN_LWLOCK_SEGMENT_HASH);

	if (my_dbno < 0)
		return;
	/* exiting on an error may hold it: nothing else is done after this */
	LWLockReleaseAll();
	LWLockAcquire(lock, LW_EXCLUSIVE);
	segment_worker_detach_locked();
	LWLockRelease(lock);
}

/*
 * Serve the database this worker is connected to.  False if another worker
 * serves it already (or, which cannot happen, no entry is free).
 */
bool
segment_worker_attach(void)
{
	LWLock	   *lock = idgen_lwlock(IDGEN_LWLOCK_SEGMENT_HASH);
	bool		attached = false;
	int			dbno;

	LWLockAcquire(lock, LW_EXCLUSIVE);
	dbno = segment_db_for(MyDatabaseId, true);
	if (dbno >= 0)
	{
		SegmentDatabase *db = &segment_dbs[dbno];

		SpinLockAcquire(&segment_shared->mutex);
		if (db->worker_pid == 0)
		{
			db->worker_pid = MyProcPid;
			db->worker_latch = MyLatch;
			db->launched_at = 0;
			db->exit_requested = false;
			attached = true;
		}
		SpinLockRelease(&segment_shared->mutex);
	}
	if (attached)
		my_dbno = dbno;
	LWLockRelease(lock);
	if (attached)
		before_shmem_exit(segment_worker_exit, (Datum) 0);
	return attached;
}

/*
 * Whether this worker is to exit now, detached: its database is being
 * dropped, or (unless permanent) it has had no slot for
 * IDGEN_SEGMENT_WORKER_IDLE_MS.
 */
bool
segment_worker_idle_exit(bool permanent)
{
	static int64 idle_since_ns = 0;
	LWLock	   *lock = idgen_lwlock(IDGEN_LWLOCK_SEGMENT_HASH);
	SegmentDatabase *db = &segment_dbs[my_dbno];
	bool		exit_requested;
	int64		now_ns = idgen_monotonic_ns();

	LWLockAcquire(lock, LW_SHARED);
	if (db->nslots > 0)
		idle_since_ns = 0;
	else if (idle_since_ns == 0)
		idle_since_ns = now_ns;
	SpinLockAcquire(&segment_shared->mutex);
	exit_requested = db->exit_requested;
	SpinLockRelease(&segment_shared->mutex);
	LWLockRelease(lock);
	if (idle_since_ns == 0 ||
		!(exit_requested ||
		  (!permanent && now_ns - idle_since_ns >= (int64) IDGEN_SEGMENT_WORKER_IDLE_MS * 1000000)))
		return false;

	/* a caller may have taken a slot meanwhile: look again, exclusively */
	LWLockAcquire(lock, LW_EXCLUSIVE);
	if (db->nslots > 0)
	{
		LWLockRelease(lock);
		idle_since_ns = 0;
		return false;
	}
	segment_worker_detach_locked();
	LWLockRelease(lock);
	return true;
}

/*
 * How far every standby that could be promoted has flushed WAL: the least
 * flush position of the connected physical walsenders and the restart_lsn
 * of the physical replication slots (a slot stays while its standby is
 * disconnected, so a standby that is down still counts).  With none of
 * them, there is nothing to wait for: PG_UINT64_MAX.
 *
 * Not counted: logical walsenders (their subscribers are not standbys),
 * base backups, temporary slots, walsenders that have not reported a flush
 * position yet, and standbys the primary does not know of (archive-only,
 * cascaded, or disconnected without a slot).
 */
XLogRecPtr
segment_standbys_flushed(void)
{
	XLogRecPtr	result = PG_UINT64_MAX;

	for (int i = 0; WalSndCtl != NULL && i < max_wal_senders; i++)
	{
		WalSnd	   *walsnd = &WalSndCtl->walsnds[i];
		pid_t		pid;
		WalSndState state;
		XLogRecPtr	flush;
		PGPROC	   *proc;

		SpinLockAcquire(&walsnd->mutex);
		pid = walsnd->pid;
		state = walsnd->state;
		flush = walsnd->flush;
		SpinLockRelease(&walsnd->mutex);

		if (pid == 0 || state == WALSNDSTATE_BACKUP || XLogRecPtrIsInvalid(flush))
			continue;
		/* a logical walsender is connected to a database */
		proc = BackendPidGetProc(pid);
		if (proc == NULL || proc->databaseId != InvalidOid)
			continue;
		result = Min(result, flush);
	}

	if (ReplicationSlotCtl != NULL)
	{
		LWLockAcquire(ReplicationSlotControlLock, LW_SHARED);
		for (int i = 0; i < max_replication_slots; i++)
		{
			ReplicationSlot *s = &ReplicationSlotCtl->replication_slots[i];
			XLogRecPtr	restart_lsn;

			if (!s->in_use || !SlotIsPhysical(s) ||
				s->data.persistency != RS_PERSISTENT)
				continue;
			SpinLockAcquire(&s->mutex);
			restart_lsn = s->data.restart_lsn;
			SpinLockRelease(&s->mutex);
			if (!XLogRecPtrIsInvalid(restart_lsn))
				result = Min(result, restart_lsn);
		}
		LWLockRelease(ReplicationSlotControlLock);
	}
	return result;
}

/* Does this slot need a range now?  Caller holds slot->mutex. */
static bool
segment_slot_needs_grant(SegmentSlot *slot)
{
	uint64		cur_next;
	uint64		cur_end;

	if (slot->has_next || slot->has_pending)
		return false;
	if (slot->grant_requested || pg_atomic_read_u32(&slot->prefetch_wanted))
		return true;
	/* the periodic scan: prefetch once the threshold is passed */
	cur_next = pg_atomic_read_u64(&slot->cur_next);
	cur_end = pg_atomic_read_u64(&slot->cur_end);
	return cur_end > 0 && cur_next >= pg_atomic_read_u64(&slot->prefetch_at);
}

/*
 * The rate at which callers drew the current range: the numbers drawn since
 * it became current over the time since, or 0 if unknown.  Measured when
 * the next range is wanted (the prefetch point, or a caller waiting), so
 * over at least idgen.segment_prefetch_at percent of the range; an
 * underestimate if callers have waited meanwhile.  Caller holds
 * slot->mutex.
 */
static double
segment_slot_rate(SegmentSlot *slot, int64 now_ns)
{
	uint64		cur_end = pg_atomic_read_u64(&slot->cur_end);
	uint64		drawn = Min(pg_atomic_read_u64(&slot->cur_next), cur_end);

	if (slot->cur_since_ns == 0 || cur_end == 0 || drawn <= slot->cur_start ||
		now_ns <= slot->cur_since_ns)
		return 0;
	return (double) (drawn - slot->cur_start) * 1e9 / (double) (now_ns - slot->cur_since_ns);
}

/* Run one grant; on failure return the error instead of raising it. */
static ErrorData *
segment_try_grant(const char *tag, int64 known_fence, XLogRecPtr known_fence_lsn,
				  int64 confirmed_fence, double local_rate, SegmentGrant *grant)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ErrorData  *volatile edata = NULL;

	PG_TRY();
	{
		segment_grant_range(tag, known_fence, known_fence_lsn, confirmed_fence,
							local_rate, grant);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		pgstat_report_activity(STATE_IDLE, NULL);
	}
	PG_END_TRY();
	return edata;
}

/* Put a granted range in the slot's second buffer.  Caller holds mutex. */
static void
segment_publish(SegmentSlot *slot, uint64 start, uint64 end, int64 step,
				TimestampTz now)
{
	slot->has_next = true;
	slot->next_start = start;
	slot->next_end = end;
	slot->step_in_use = step;
	slot->last_grant_at = now;
	slot->grants++;
}

/*
 * Grant a range to every slot that needs one, and publish the held-back
 * ranges the standbys have confirmed meanwhile.  Each grant is its own
 * transaction; a failure is recorded in the slot for its waiters and does
 * not stop the others.  Returns whether a range is still held back (the
 * worker then looks again soon).
 */
bool
segment_worker_serve(void)
{
	LWLock	   *lock = idgen_lwlock(IDGEN_LWLOCK_SEGMENT_HASH);
	typedef struct SegmentTodo
	{
		int			slotno;
		uint64		generation;
		char		tag[NAMEDATALEN];
		int64		fence;
		XLogRecPtr	fence_lsn;
		int64		fence_confirmed;
		double		rate;		/* numbers per second drawn from the
								 * current range, or 0 */
	}			SegmentTodo;
	SegmentTodo *todo;
	int			ntodo = 0;
	bool		held_back = false;
	bool		released = false;
	XLogRecPtr	flushed = segment_standbys_flushed();
	TimestampTz now = GetCurrentTimestamp();
	int64		now_ns = idgen_monotonic_ns();

	todo = palloc(sizeof(SegmentTodo) * idgen_segment_max_tags);
	LWLockAcquire(lock, LW_SHARED);
	for (int i = 0; i < idgen_segment_max_tags; i++)
	{
		SegmentSlot *slot = &segment_shared->slots[i];
		uint64		generation = pg_atomic_read_u64(&slot->generation);
		bool		needed;

		/* dbid is stable while the generation is, under the hash lock */
		if (generation == 0 || slot->dbid != MyDatabaseId)
			continue;
		SpinLockAcquire(&slot->mutex);
		if (!XLogRecPtrIsInvalid(slot->fence_lsn) && slot->fence_lsn <= flushed)
			slot->fence_confirmed = Max(slot->fence_confirmed, slot->fence);
		if (slot->has_pending && slot->pending_lsn <= flushed)
		{
			slot->has_pending = false;
			segment_publish(slot, slot->pending_start, slot->pending_end,
							slot->pending_step, now);
			released = true;
		}
		held_back |= slot->has_pending;
		needed = segment_slot_needs_grant(slot);
		if (needed)
		{
			todo[ntodo].slotno = i;
			todo[ntodo].generation = generation;
			memcpy(todo[ntodo].tag, slot->tag, NAMEDATALEN);
			todo[ntodo].fence = slot->fence;
			todo[ntodo].fence_lsn = slot->fence_lsn;
			todo[ntodo].fence_confirmed = slot->fence_confirmed;
			todo[ntodo].rate = segment_slot_rate(slot, now_ns);
			ntodo++;
		}
		SpinLockRelease(&slot->mutex);
	}
	LWLockRelease(lock);
	if (released)
		ConditionVariableBroadcast(&segment_shared->grant_cv);

	for (int i = 0; i < ntodo; i++)
	{
		SegmentSlot *slot = &segment_shared->slots[todo[i].slotno];
		SegmentGrant grant;
		ErrorData  *edata;
		bool		waited = false;
		bool		confirmed = true;
		bool		published = false;

		CHECK_FOR_INTERRUPTS();
		edata = segment_try_grant(todo[i].tag, todo[i].fence, todo[i].fence_lsn,
								  todo[i].fence_confirmed, todo[i].rate, &grant);

		if (edata)
		{
			ereport(LOG,
					(errmsg("idgen worker: could not grant a range for segment tag \"%s\": %s",
							todo[i].tag, edata->message)));
			if (edata->sqlerrcode == ERRCODE_UNDEFINED_OBJECT)
			{
				/* not in the table: free the slot, its waiters fail */
				SegmentKey	key;

				memset(&key, 0, sizeof(key));
				memcpy(key.tag, todo[i].tag, NAMEDATALEN);
				key.dbid = MyDatabaseId;
				segment_free_tag(&key, todo[i].generation);
				FreeErrorData(edata);
				continue;
			}
		}
		else if (!XLogRecPtrIsInvalid(grant.need_lsn))
			confirmed = grant.need_lsn <= segment_standbys_flushed();
		now = GetCurrentTimestamp();

		LWLockAcquire(lock, LW_EXCLUSIVE);

		/*
		 * Ranges of another table (the extension or its database dropped and
		 * created again, unseen by the hook) must not stay next to this one.
		 */
		if (!edata && segment_dbs[my_dbno].alloc_relid != InvalidOid &&
			segment_dbs[my_dbno].alloc_relid != grant.relid)
		{
			ereport(LOG,
					(errmsg("idgen worker: idgen.segment_alloc is not the table the buffered ranges were granted from; forgetting them")));
			segment_free_database_locked(MyDatabaseId);
		}
		if (!edata)
			segment_dbs[my_dbno].alloc_relid = grant.relid;

		/* a tag freed (and maybe taken again) meanwhile gets nothing */
		if (pg_atomic_read_u64(&slot->generation) == todo[i].generation)
		{
			SpinLockAcquire(&slot->mutex);
			waited = slot->grant_requested;
			slot->grant_requested = false;
			pg_atomic_write_u32(&slot->prefetch_wanted, 0);
			if (edata && edata->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE)
			{
				/* the tag's row is locked by someone: try again later */
				slot->grant_requested = waited;
			}
			else if (edata)
			{
				slot->error_seq++;
				slot->error_code = edata->sqlerrcode;
				strlcpy(slot->error_message, edata->message, sizeof(slot->error_message));
				/* no periodic retries for this range; a caller's request retries */
				pg_atomic_write_u64(&slot->prefetch_at, PG_UINT64_MAX);
			}
			else
			{
				pg_atomic_write_u32(&slot->block_max, (uint32) grant.tag_step);
				if (grant.fence >= 0)
				{
					slot->fence = grant.fence;
					slot->fence_lsn = grant.commit_lsn;
				}
				if (confirmed)
					segment_publish(slot, (uint64) grant.start, (uint64) grant.end,
									grant.step, now);
				else
				{
					slot->has_pending = true;
					slot->pending_start = (uint64) grant.start;
					slot->pending_end = (uint64) grant.end;
					slot->pending_step = grant.step;
					slot->pending_lsn = grant.need_lsn;
					held_back = true;
				}
				published = true;
			}
			SpinLockRelease(&slot->mutex);
		}
		LWLockRelease(lock);
		ConditionVariableBroadcast(&segment_shared->grant_cv);

		if (published)
		{
			idgen_count_event(IDGEN_C_SEGMENT_GRANTS);
			if (!waited)
				idgen_count_event(IDGEN_C_SEGMENT_PREFETCHES);
			if (grant.burned > 0)
				idgen_count_event(IDGEN_C_SEGMENT_BURNS);
		}
		if (edata)
			FreeErrorData(edata);
	}
	pfree(todo);
	return held_back;
}
