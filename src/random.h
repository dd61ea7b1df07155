/*-------------------------------------------------------------------------
 *
 * random.h
 *	  Buffered, per-process cryptographically strong random bits.
 *
 *-------------------------------------------------------------------------
 */
#ifndef IDGEN_RANDOM_H
#define IDGEN_RANDOM_H

extern uint64 idgen_random_u64(void);

#endif							/* IDGEN_RANDOM_H */
