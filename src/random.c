/*-------------------------------------------------------------------------
 *
 * random.c
 *	  Buffered CSPRNG output for the random bits of UUIDv7.
 *
 * Asking the kernel or OpenSSL for eight bytes per ID costs about a
 * microsecond here, more than the rest of the generator together.  We draw
 * a few kilobytes at a time from pg_strong_random() (OpenSSL's DRBG in
 * Debian's build, itself seeded from the kernel) and hand them out eight
 * bytes at a time.
 *
 * RFC 9562 section 6.9: random state must never be shared between
 * processes.  The buffer is process-local and remembers the PID that filled
 * it; a process that finds a buffer filled by another PID (it was forked
 * after the fill) discards it before use.  The postmaster never draws from
 * it, so every backend and background worker starts empty anyway; the PID
 * check makes that a guarantee rather than an accident.  Consumed bytes are
 * overwritten so that a core dump does not reveal the tails already issued.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"

#include "random.h"

#define IDGEN_RANDOM_BUFFER_BYTES 4096

static uint64 random_buffer[IDGEN_RANDOM_BUFFER_BYTES / sizeof(uint64)];
static int	random_next = lengthof(random_buffer);	/* empty */
static int	random_filled_by_pid = 0;

static void
random_refill(void)
{
	if (!pg_strong_random(random_buffer, sizeof(random_buffer)))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate random values"),
				 errdetail("The operating system's strong random number source failed.")));
	random_next = 0;
	random_filled_by_pid = MyProcPid;
}

uint64
idgen_random_u64(void)
{
	uint64		value;

	if (unlikely(random_next >= lengthof(random_buffer) ||
				 random_filled_by_pid != MyProcPid))
		random_refill();

	value = random_buffer[random_next];
	random_buffer[random_next++] = 0;
	return value;
}
