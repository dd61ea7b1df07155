/*-------------------------------------------------------------------------
 *
 * random.c
 *	  Buffered CSPRNG output for the random bits of UUIDv7.
 *
 * Asking the kernel or OpenSSL for eight bytes per ID costs about a
 * microsecond here, more than the rest of the generator together.  We draw
 * 16 kB at a time from pg_strong_random() (OpenSSL's DRBG in Debian's
 * build, itself seeded from the kernel) and hand them out eight bytes at a
 * time (idgen_random_u64, inline in random.h).
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

uint64		idgen_random_buffer[IDGEN_RANDOM_WORDS];
int			idgen_random_next = IDGEN_RANDOM_WORDS; /* empty */
int			idgen_random_filled_by_pid = 0;

/* Refill the whole buffer (idgen_random_u64, random.h, is the reader). */
void
idgen_random_refill(void)
{
	if (!pg_strong_random(idgen_random_buffer, sizeof(idgen_random_buffer)))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate random values"),
				 errdetail("The operating system's strong random number source failed.")));
	idgen_random_next = 0;
	idgen_random_filled_by_pid = MyProcPid;
}
