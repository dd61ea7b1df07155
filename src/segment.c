/*-------------------------------------------------------------------------
 *
 * segment.c
 *	  The segment allocator's shared state: the tags' slots, the hash table
 *	  that finds a tag's slot, the per-database entries, and the hook that
 *	  forgets a database's buffered ranges when their table goes.
 *
 * idgen.segment_next(tag [, n]) hands out short, dense, increasing numbers
 * per tag from ranges granted by a background worker of the tag's database,
 * with a double buffer.  Four files:
 *	segment.c			this shared state;
 *	segment_next.c		the SQL entry points: callers draw numbers from
 *						their tag's slot and wait for ranges;
 *	segment_worker.c	the grant worker of each database in use;
 *	segment_grant.c		one grant transaction on idgen.segment_alloc.
 *
 * Tags belong to a database: each database where the extension is created
 * has its own idgen.segment_alloc, and its ranges are granted by a worker
 * connected to it.  Each tag in use has a slot in shared memory (at most
 * idgen.segment_max_tags over the server), found through a shared hash
 * table keyed by database OID and tag.  A slot holds the current range,
 * handed out lock-free by fetch-add (see SegmentSlot in segment.h for the
 * protocol), and the next range.
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
 * Locking protocol:
 *	- IDGEN_LWLOCK_SEGMENT_HASH, "the hash lock": the hash table, each slot's
 *	  generation, tag and database, each database entry's dbid, nslots and
 *	  alloc_relid.  Shared to look a tag up or scan the slots; exclusive to
 *	  take or free a slot, attach or detach a worker, or change alloc_relid.
 *	- A slot's mutex (spinlock): its non-atomic fields, and every write of
 *	  its atomics except the callers' fetch-add of cur_next and their
 *	  setting of prefetch_wanted.  Numbers are handed out without any lock.
 *	- SegmentShared.mutex (spinlock): the database entries' worker fields
 *	  (worker_pid, worker_latch, launched_at, exit_requested); dbid is
 *	  written under it and the exclusive hash lock together.
 *	- Order: the hash lock, then one spinlock.  A spinlock is held across a
 *	  few assignments only (no allocation, no error, no other lock).
 *	- generation_counter is an atomic; grant_cv a condition variable that
 *	  every grant, failure and free broadcasts.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/objectaccess.h"
#include "catalog/pg_class.h"
#include "catalog/pg_database.h"
#include "miscadmin.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"

#include "guc.h"
#include "segment.h"
#include "shmem.h"

/* Hash entry: a tag and the number of its slot. */
typedef struct SegmentTagEntry
{
	SegmentKey	key;
	int			slotno;
} SegmentTagEntry;

SegmentShared *idgen_segment_shared = NULL;
SegmentDatabase *idgen_segment_dbs = NULL;
static int	segment_ndbs = 0;
static HTAB *segment_hash = NULL;
static object_access_hook_type prev_object_access_hook = NULL;

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
idgen_segment_shmem_size(void)
{
	return add_size(MAXALIGN(segment_struct_size()),
					hash_estimate_size(idgen_segment_max_tags, sizeof(SegmentTagEntry)));
}

/* Called with AddinShmemInitLock held. */
void
idgen_segment_shmem_init(void)
{
	bool		found;
	HASHCTL		info;
	Size		size = segment_struct_size();

	idgen_segment_shared = ShmemInitStruct("idgen segments", size, &found);
	idgen_segment_dbs = (SegmentDatabase *)
		((char *) idgen_segment_shared +
		 MAXALIGN(offsetof(SegmentShared, slots) +
				  sizeof(SegmentSlot) * idgen_segment_max_tags));
	segment_ndbs = idgen_segment_max_tags + max_worker_processes;
	if (!found)
	{
		memset(idgen_segment_shared, 0, size);
		SpinLockInit(&idgen_segment_shared->mutex);
		pg_atomic_init_u64(&idgen_segment_shared->generation_counter, 0);
		ConditionVariableInit(&idgen_segment_shared->grant_cv);
		for (int i = 0; i < idgen_segment_max_tags; i++)
		{
			SegmentSlot *slot = &idgen_segment_shared->slots[i];

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

/*
 * The entry of a database, or -1; with create, take a free entry for it if
 * it has none (-1 if none is free).  Caller holds the hash lock, exclusively
 * to create.
 */
int
idgen_segment_db_for(Oid dbid, bool create)
{
	int			free_dbno = -1;

	for (int i = 0; i < segment_ndbs; i++)
	{
		if (idgen_segment_dbs[i].dbid == dbid)
			return i;
		if (free_dbno < 0 && idgen_segment_dbs[i].dbid == InvalidOid)
			free_dbno = i;
	}
	if (!create || free_dbno < 0)
		return -1;
	SpinLockAcquire(&idgen_segment_shared->mutex);
	memset(&idgen_segment_dbs[free_dbno], 0, sizeof(SegmentDatabase));
	idgen_segment_dbs[free_dbno].dbid = dbid;
	SpinLockRelease(&idgen_segment_shared->mutex);
	return free_dbno;
}

/*
 * Free a database's entry if it has neither slots nor a worker.  Caller
 * holds the hash lock exclusively.
 */
void
idgen_segment_db_release_if_unused(SegmentDatabase *db)
{
	if (db->nslots > 0)
		return;
	SpinLockAcquire(&idgen_segment_shared->mutex);
	if (db->worker_pid == 0)
		memset(db, 0, sizeof(SegmentDatabase));
	SpinLockRelease(&idgen_segment_shared->mutex);
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
		slot = &idgen_segment_shared->slots[slotno];
		if (pg_atomic_read_u64(&slot->generation) == 0)
			break;
	}
	if (slotno == idgen_segment_max_tags)
		return NULL;
	/* there is an entry for every database that can have a slot */
	dbno = idgen_segment_db_for(key->dbid, true);
	if (dbno < 0)
		return NULL;
	entry = hash_search(segment_hash, key, HASH_ENTER_NULL, &found);
	if (entry == NULL)
	{
		idgen_segment_db_release_if_unused(&idgen_segment_dbs[dbno]);
		return NULL;
	}
	Assert(!found);
	entry->slotno = slotno;
	idgen_segment_dbs[dbno].nslots++;

	SpinLockAcquire(&slot->mutex);
	segment_slot_reset(slot);
	memcpy(slot->tag, key->tag, NAMEDATALEN);
	slot->dbid = key->dbid;
	slot->dbno = dbno;
	pg_write_barrier();
	pg_atomic_write_u64(&slot->generation,
						pg_atomic_add_fetch_u64(&idgen_segment_shared->generation_counter, 1));
	SpinLockRelease(&slot->mutex);
	return entry;
}

/* The slot of a tag and its generation; NULL if the tag has none. */
SegmentSlot *
idgen_segment_find(const SegmentKey *key, uint64 *generation)
{
	LWLock	   *lock = idgen_lwlock(IDGEN_LWLOCK_SEGMENT_HASH);
	SegmentTagEntry *entry;
	SegmentSlot *slot = NULL;

	LWLockAcquire(lock, LW_SHARED);
	entry = hash_search(segment_hash, key, HASH_FIND, NULL);
	if (entry)
	{
		slot = &idgen_segment_shared->slots[entry->slotno];
		*generation = pg_atomic_read_u64(&slot->generation);
	}
	LWLockRelease(lock);
	return slot;
}

/*
 * The slot of a tag and its generation, taking a free slot if the tag has
 * none (the caller has made sure the tag exists); fails if none is free.
 */
SegmentSlot *
idgen_segment_find_or_take(const SegmentKey *key, uint64 *generation)
{
	LWLock	   *lock = idgen_lwlock(IDGEN_LWLOCK_SEGMENT_HASH);
	SegmentTagEntry *entry;
	SegmentSlot *slot;

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
	slot = &idgen_segment_shared->slots[entry->slotno];
	*generation = pg_atomic_read_u64(&slot->generation);
	LWLockRelease(lock);
	return slot;
}

/*
 * Free a slot: its generation goes to 0 before its range is reset, so a
 * caller drawing from it meanwhile discards what it drew.  Caller holds the
 * hash lock exclusively; waiters are woken by the caller.
 */
static void
segment_free_slot(SegmentTagEntry *entry)
{
	SegmentSlot *slot = &idgen_segment_shared->slots[entry->slotno];
	SegmentDatabase *db = &idgen_segment_dbs[slot->dbno];

	SpinLockAcquire(&slot->mutex);
	pg_atomic_write_u64(&slot->generation, 0);
	pg_write_barrier();
	segment_slot_reset(slot);
	SpinLockRelease(&slot->mutex);
	hash_search(segment_hash, &entry->key, HASH_REMOVE, NULL);
	db->nslots--;
	idgen_segment_db_release_if_unused(db);
}

/*
 * Free the slot of a tag; with generation > 0 only if it is still that use
 * of the slot (a newer one for the same tag is left alone).
 */
void
idgen_segment_free_tag(const SegmentKey *key, uint64 generation)
{
	LWLock	   *lock = idgen_lwlock(IDGEN_LWLOCK_SEGMENT_HASH);
	SegmentTagEntry *entry;

	LWLockAcquire(lock, LW_EXCLUSIVE);
	entry = hash_search(segment_hash, key, HASH_FIND, NULL);
	if (entry && (generation == 0 ||
				  pg_atomic_read_u64(&idgen_segment_shared->slots[entry->slotno].generation) == generation))
		segment_free_slot(entry);
	LWLockRelease(lock);
	ConditionVariableBroadcast(&idgen_segment_shared->grant_cv);
}

/*
 * Free every slot of a database and forget the table they were granted
 * from.  Caller holds the hash lock exclusively.
 */
void
idgen_segment_free_database_locked(Oid dbid)
{
	HASH_SEQ_STATUS status;
	SegmentTagEntry *entry;
	int			dbno;

	hash_seq_init(&status, segment_hash);
	while ((entry = hash_seq_search(&status)) != NULL)
		if (entry->key.dbid == dbid)
			segment_free_slot(entry);
	dbno = idgen_segment_db_for(dbid, false);
	if (dbno >= 0)
		idgen_segment_dbs[dbno].alloc_relid = InvalidOid;
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
	idgen_segment_free_database_locked(dbid);
	dbno = idgen_segment_db_for(dbid, false);
	if (dbno >= 0 && stop_worker)
	{
		SpinLockAcquire(&idgen_segment_shared->mutex);
		idgen_segment_dbs[dbno].exit_requested = true;
		latch = idgen_segment_dbs[dbno].worker_latch;
		SpinLockRelease(&idgen_segment_shared->mutex);
	}
	LWLockRelease(lock);
	if (latch)
		SetLatch(latch);
	ConditionVariableBroadcast(&idgen_segment_shared->grant_cv);
}

/* Has this database slots or a worker (ranges buffered or on their way)? */
static bool
segment_database_in_use(Oid dbid)
{
	LWLock	   *lock = idgen_lwlock(IDGEN_LWLOCK_SEGMENT_HASH);
	bool		in_use;

	LWLockAcquire(lock, LW_SHARED);
	in_use = idgen_segment_db_for(dbid, false) >= 0;
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
	if (idgen_segment_shared == NULL || (access != OAT_DROP && access != OAT_TRUNCATE))
		return;
	if (access == OAT_DROP && classId == DatabaseRelationId &&
		segment_database_in_use(objectId))
		segment_free_database(objectId, true);
	else if (classId == RelationRelationId && subId == 0 &&
			 segment_is_alloc_table(objectId))
		segment_free_database(MyDatabaseId, false);
}

void
idgen_segment_install_hooks(void)
{
	prev_object_access_hook = object_access_hook;
	object_access_hook = segment_object_access;
}
