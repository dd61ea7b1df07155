/*-------------------------------------------------------------------------
 *
 * uuidv7.c
 *	  RFC 9562 UUIDv7: idgen.uuidv7(), idgen.uuidv7(timestamptz),
 *	  idgen.uuidv7_min(timestamptz) and idgen.uuidv7_time(uuid).
 *
 * Layout (big-endian, 128 bits):
 *
 *	 0                   1                   2                   3
 *	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *	|                     unix_ts_ms (32 high bits)                 |
 *	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *	|   unix_ts_ms (16 low bits)    |  ver  | sub-ms fraction (12)  |
 *	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *	|var|   counter (10)    |          random (20)                  |
 *	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *	|                          random (32)                          |
 *	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * rand_a holds the sub-millisecond fraction (RFC 9562 section 6.2, Method 3:
 * 4,096 steps of about 244 ns).  When two IDs fall in the same fraction
 * step, the top 10 bits of rand_b count (Method 1); the remaining 52 bits
 * are random from a buffered CSPRNG (random.c).
 *
 * Ordering: the 60 bits of time and the 10-bit counter form one 64-bit
 * "position" ((ms << 12 | fraction) << 10 | counter, ms < 2^42, i.e. until
 * the year 2109).  Each call computes the position of the current clock
 * reading with counter 0, and issues max(that, last + 1).  Because the
 * counter is the low part of the position, a counter that overflows carries
 * into the fraction: time moves forward by one 244 ns step only after 1,024
 * IDs in one step, a rate no PostgreSQL backend reaches, so the embedded
 * time never runs ahead of the clock in normal operation (PostgreSQL 18
 * instead advances its timestamp on every call).  When the clock steps
 * back, issuing continues from the last position, counting, so IDs stay
 * strictly increasing and unique; the step is counted for monitoring.
 *
 * With shared_preload_libraries the last position is a 64-bit atomic in
 * shared memory updated by compare-and-swap, so IDs are strictly increasing
 * across every backend of the server.  A clean shutdown saves it to
 * IDGEN_UUIDV7_FILE and the next start continues from it, so the order also
 * survives a restart with the clock set back; after a crash the order
 * restarts from the clock (uniqueness rests on the random bits, as always;
 * we do not fsync on the UUIDv7 path).  Without it (CREATE EXTENSION on a
 * managed server), the position is per backend: IDs are strictly increasing
 * within each backend, and unique across backends through the 52 random
 * bits.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <time.h>
#include <unistd.h>

#include "fmgr.h"
#include "port/pg_bswap.h"
#include "port/atomics.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "idgen.h"
#include "random.h"
#include "statefile.h"
#include "stats.h"
#include "uuidv7.h"

#define UUIDV7_FRACTION_BITS	12
#define UUIDV7_COUNTER_BITS		10
#define UUIDV7_RANDOM_BITS		52	/* rand_b bits below the counter */
#define UUIDV7_POSITION_MS_LIMIT (INT64CONST(1) << (64 - UUIDV7_FRACTION_BITS - UUIDV7_COUNTER_BITS))
#define UUIDV7_MS_LIMIT			(INT64CONST(1) << 48)

/*
 * Shared state.  Alone on its cache line so that the compare-and-swap does
 * not contend with unrelated writes.
 */
typedef struct Uuidv7SharedState
{
	union
	{
		pg_atomic_uint64 last_position; /* atomic; CAS only */
		char		pad[PG_CACHE_LINE_SIZE];
	};
} Uuidv7SharedState;

static Uuidv7SharedState *uuidv7_shared = NULL;

/*
 * Where a clean shutdown leaves the last position (in the data directory),
 * as a state record (statefile.h).  Libraries before 1.1 wrote the bare
 * 8-byte position; that is still read, once, after an upgrade.
 */
#define IDGEN_UUIDV7_FILE		"idgen_uuidv7.state"
#define IDGEN_UUIDV7_MAGIC		0x49444755	/* "IDGU" */
#define IDGEN_UUIDV7_VERSION	1

typedef struct Uuidv7StateRecord
{
	uint32		magic;
	uint32		version;
	uint64		position;
	uint32		reserved;		/* zero; keeps crc the last field */
	uint32		crc;
} Uuidv7StateRecord;

StaticAssertDecl(offsetof(Uuidv7StateRecord, crc) + sizeof(uint32) == sizeof(Uuidv7StateRecord),
				 "the UUIDv7 state record's CRC must be its last field");

/* Per-backend position, used when the library is not preloaded. */
static uint64 backend_last_position = 0;

/* This backend's previous clock reading, to notice the clock stepping back. */
static uint64 backend_last_clock_position = 0;

Size
idgen_uuidv7_shmem_size(void)
{
	return sizeof(Uuidv7SharedState);
}

/*
 * At clean postmaster shutdown, save the last position for the next start.
 * Best effort, at LOG: this runs in the postmaster's shmem-exit callbacks,
 * where an ERROR cannot be handled, and a position that is not saved only
 * means the next start continues from the clock, as after a crash.
 */
static void
uuidv7_shmem_exit(int code, Datum arg)
{
	Uuidv7StateRecord rec;

	if (code != 0 || uuidv7_shared == NULL)
		return;
	memset(&rec, 0, sizeof(rec));
	rec.position = pg_atomic_read_u64(&uuidv7_shared->last_position);
	(void) idgen_statefile_write(IDGEN_UUIDV7_FILE, &rec, sizeof(rec),
								 IDGEN_UUIDV7_MAGIC, IDGEN_UUIDV7_VERSION, LOG);
}

/*
 * The position a clean shutdown saved, or 0.  The file is removed once
 * read: after a crash, the order restarts from the clock.
 */
static uint64
uuidv7_read_saved_position(void)
{
	Uuidv7StateRecord rec;
	uint64		position = 0;
	size_t		got;

	switch (idgen_statefile_read(IDGEN_UUIDV7_FILE, &rec, sizeof(rec),
								 IDGEN_UUIDV7_MAGIC, IDGEN_UUIDV7_VERSION, LOG, &got))
	{
		case IDGEN_STATE_ABSENT:
			return 0;
		case IDGEN_STATE_OK:
			position = rec.position;
			break;
		case IDGEN_STATE_CORRUPT:
			if (got == sizeof(uint64))
				memcpy(&position, &rec, sizeof(uint64));	/* before 1.1 */
			else
				ereport(LOG,
						(errmsg("idgen: ignoring damaged file \"%s\"", IDGEN_UUIDV7_FILE),
						 errdetail("UUIDv7 order continues from the clock.")));
			break;
	}
	unlink(IDGEN_UUIDV7_FILE);
	return position;
}

/* Called with AddinShmemInitLock held. */
void
idgen_uuidv7_shmem_init(void)
{
	bool		found;

	uuidv7_shared = ShmemInitStruct("idgen uuidv7", sizeof(Uuidv7SharedState),
									&found);
	if (found)
		return;

	/* continue from a clean shutdown's position, then forget it */
	pg_atomic_init_u64(&uuidv7_shared->last_position, uuidv7_read_saved_position());
	if (!IsUnderPostmaster)
		on_shmem_exit(uuidv7_shmem_exit, (Datum) 0);
}

/*
 * Position of the current clock reading, counter 0.  The time part is
 * counted in fraction steps (ms << 12 | fraction, 4,096,000 per second):
 * sec * 4096000 + floor(nsec * 4096 / 10^6) equals it exactly, with one
 * multiplication by a reciprocal instead of two divisions.
 */
static inline uint64
uuidv7_clock_position(void)
{
	struct timespec ts;
	uint64		steps;

	clock_gettime(CLOCK_REALTIME, &ts);

	/* whole seconds below 2^42 ms: unsigned, so a negative tv_sec fails too */
	if (unlikely((uint64) ts.tv_sec >= (uint64) UUIDV7_POSITION_MS_LIMIT / 1000))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("system clock is outside the range idgen.uuidv7() supports"),
				 errdetail("The clock reads %lld s since 1970-01-01; supported are times from 1970 up to 2^42 ms (the year 2109).",
						   (long long) ts.tv_sec),
				 errhint("Check the system clock.")));

	steps = (uint64) ts.tv_sec * (1000 << UUIDV7_FRACTION_BITS) +
		((uint64) ts.tv_nsec << UUIDV7_FRACTION_BITS) / 1000000;
	return steps << UUIDV7_COUNTER_BITS;
}

/*
 * The next position to issue: max(clock, last + 1).
 *
 * The shared word is read, then compare-and-swapped.  Starting the CAS
 * from this backend's own last position instead saves the read when no
 * other backend issues, but with two backends issuing at once nearly every
 * such CAS fails and the cache line moves more often (bench/contention:
 * 0.7-0.8 failures per ID against 0.01, and up to 1.4 x the time per ID).
 */
static inline uint64
uuidv7_next_position(void)
{
	uint64		clock_position = uuidv7_clock_position();
	uint64		next;

	if (unlikely(clock_position < backend_last_clock_position))
		idgen_count_event(IDGEN_C_UUIDV7_CLOCK_STEP_BACK);
	backend_last_clock_position = clock_position;

	if (uuidv7_shared)
	{
		uint64		last = pg_atomic_read_u64(&uuidv7_shared->last_position);

		do
		{
			next = clock_position > last ? clock_position : last + 1;
		} while (!pg_atomic_compare_exchange_u64(&uuidv7_shared->last_position,
												 &last, next));
	}
	else
	{
		next = clock_position > backend_last_position ? clock_position
			: backend_last_position + 1;
		backend_last_position = next;
	}
	return next;
}

/*
 * Fill a UUID from 48-bit milliseconds, a 12-bit fraction and the 62 bits of
 * rand_b: two big-endian 64-bit stores.
 */
static inline void
uuidv7_pack(pg_uuid_t *uuid, uint64 ms, uint32 fraction, uint64 rand_b)
{
	uint64		hi = (ms << 16) | UINT64CONST(0x7000) | (fraction & 0x0FFF);
	uint64		lo = UINT64CONST(0x8000000000000000) |
	(rand_b & UINT64CONST(0x3FFFFFFFFFFFFFFF));

	hi = pg_hton64(hi);
	lo = pg_hton64(lo);
	memcpy(uuid->data, &hi, sizeof(hi));
	memcpy(uuid->data + 8, &lo, sizeof(lo));
}

PG_FUNCTION_INFO_V1(idgen_uuidv7);

/*
 * idgen.uuidv7() RETURNS uuid
 *
 * The per-ID path: one clock read, one CAS, an inline read of the random
 * buffer, the result's palloc and a backend-local counter.
 */
Datum
idgen_uuidv7(PG_FUNCTION_ARGS)
{
	uint64		random = idgen_random_u64();	/* may refill: before the
												 * clock */
	uint64		position = uuidv7_next_position();
	uint64		steps = position >> UUIDV7_COUNTER_BITS;
	uint64		counter = position & ((1 << UUIDV7_COUNTER_BITS) - 1);
	uint64		rand_b = (counter << UUIDV7_RANDOM_BITS) |
	(random & ((UINT64CONST(1) << UUIDV7_RANDOM_BITS) - 1));
	pg_uuid_t  *uuid = palloc(sizeof(pg_uuid_t));

	uuidv7_pack(uuid, steps >> UUIDV7_FRACTION_BITS,
				(uint32) steps & ((1 << UUIDV7_FRACTION_BITS) - 1), rand_b);
	idgen_count_issued(IDGEN_C_UUIDV7_ISSUED);
	PG_RETURN_UUID_P(uuid);
}

/* Unix microseconds of a timestamptz that a UUIDv7 can hold, or an error. */
static int64
uuidv7_checked_unix_us(TimestampTz ts)
{
	int64		unix_us;

	if (TIMESTAMP_NOT_FINITE(ts))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("cannot make a UUIDv7 for an infinite timestamp"),
				 errdetail("A UUIDv7 holds a finite time in milliseconds since 1970-01-01.")));

	unix_us = idgen_timestamptz_to_unix_us(ts);
	if (unix_us < 0 || unix_us / 1000 >= UUIDV7_MS_LIMIT)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range for UUIDv7: \"%s\"",
						timestamptz_to_str(ts)),
				 errdetail("A UUIDv7 holds 48 bits of milliseconds since 1970-01-01 00:00:00 UTC, which covers times up to the year 10889.")));
	return unix_us;
}

PG_FUNCTION_INFO_V1(idgen_uuidv7_at);

/*
 * idgen.uuidv7(ts timestamptz) RETURNS uuid
 *
 * A version 7 UUID for the given time, for backfills.  The fraction is
 * rounded up so that uuidv7_time() gives back the same microsecond; all 62
 * bits of rand_b are random.
 */
Datum
idgen_uuidv7_at(PG_FUNCTION_ARGS)
{
	int64		unix_us = uuidv7_checked_unix_us(PG_GETARG_TIMESTAMPTZ(0));
	pg_uuid_t  *uuid = palloc(sizeof(pg_uuid_t));
	uint32		fraction;

	fraction = (uint32) (((unix_us % 1000) << UUIDV7_FRACTION_BITS) + 999) / 1000;
	uuidv7_pack(uuid, (uint64) (unix_us / 1000), fraction, idgen_random_u64());
	PG_RETURN_UUID_P(uuid);
}

PG_FUNCTION_INFO_V1(idgen_uuidv7_min);

/*
 * idgen.uuidv7_min(ts timestamptz) RETURNS uuid
 *
 * The smallest UUIDv7 that idgen.uuidv7() can issue at or after ts: the
 * fraction rounded down and every bit after it zero.  For range scans:
 * WHERE id >= idgen.uuidv7_min(now() - interval '1 hour').
 */
Datum
idgen_uuidv7_min(PG_FUNCTION_ARGS)
{
	int64		unix_us = uuidv7_checked_unix_us(PG_GETARG_TIMESTAMPTZ(0));
	pg_uuid_t  *uuid = palloc(sizeof(pg_uuid_t));
	uint32		fraction;

	fraction = (uint32) (((unix_us % 1000) << UUIDV7_FRACTION_BITS) / 1000);
	uuidv7_pack(uuid, (uint64) (unix_us / 1000), fraction, 0);
	PG_RETURN_UUID_P(uuid);
}

PG_FUNCTION_INFO_V1(idgen_uuidv7_time);

/*
 * idgen.uuidv7_time(u uuid) RETURNS timestamptz
 *
 * The embedded time with the sub-millisecond fraction, rounded down to the
 * microsecond; NULL for a UUID that is not an RFC 9562 version 7 UUID.
 */
Datum
idgen_uuidv7_time(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *uuid = PG_GETARG_UUID_P(0);
	const unsigned char *b = uuid->data;
	uint64		ms;
	uint32		fraction;
	int64		unix_us;

	if ((b[6] >> 4) != 7 || (b[8] & 0xC0) != 0x80)
		PG_RETURN_NULL();

	ms = ((uint64) b[0] << 40) | ((uint64) b[1] << 32) | ((uint64) b[2] << 24) |
		((uint64) b[3] << 16) | ((uint64) b[4] << 8) | (uint64) b[5];
	fraction = ((uint32) (b[6] & 0x0F) << 8) | b[7];
	unix_us = (int64) ms * 1000 + (((int64) fraction * 1000) >> UUIDV7_FRACTION_BITS);

	PG_RETURN_TIMESTAMPTZ(idgen_unix_us_to_timestamptz(unix_us));
}

/*
 * Generate one UUIDv7 into *uuid exactly as idgen.uuidv7() does, for
 * generators that build on it (idgen.typeid()).  Goes through the SQL entry
 * point so that there is one generator.
 */
void
idgen_uuidv7_generate(pg_uuid_t *uuid)
{
	LOCAL_FCINFO(fcinfo, 0);
	pg_uuid_t  *issued;

	InitFunctionCallInfoData(*fcinfo, NULL, 0, InvalidOid, NULL, NULL);
	issued = DatumGetUUIDP(idgen_uuidv7(fcinfo));
	memcpy(uuid, issued, sizeof(pg_uuid_t));
	pfree(issued);
}
