/*-------------------------------------------------------------------------
 *
 * random.h
 *	  Buffered, per-process cryptographically strong random bits.
 *
 * The fast path is inline: it sits on idgen.uuidv7()'s per-ID path, where
 * a function call costs more than the read itself.
 *
 *-------------------------------------------------------------------------
 */
#ifndef IDGEN_RANDOM_H
#define IDGEN_RANDOM_H

#include "miscadmin.h"

/* 16 kB: a refill costs a fixed overhead plus a few instructions per byte */
#define IDGEN_RANDOM_WORDS	(16384 / sizeof(uint64))

/* Process-local buffer state; only random.c and the inline reader touch it. */
extern uint64 idgen_random_buffer[IDGEN_RANDOM_WORDS];
extern int	idgen_random_next;	/* next unused word; IDGEN_RANDOM_WORDS: empty */
extern int	idgen_random_filled_by_pid; /* PID that filled the buffer */

extern void idgen_random_refill(void);

/* Eight strong random bytes, never handed out to two processes. */
static inline uint64
idgen_random_u64(void)
{
	uint64		value;

	if (unlikely(idgen_random_next >= IDGEN_RANDOM_WORDS ||
				 idgen_random_filled_by_pid != MyProcPid))
		idgen_random_refill();

	value = idgen_random_buffer[idgen_random_next];
	idgen_random_buffer[idgen_random_next++] = 0;
	return value;
}

#endif							/* IDGEN_RANDOM_H */
