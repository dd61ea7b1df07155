/*-------------------------------------------------------------------------
 *
 * idgen.h
 *	  Definitions shared by every part of the idgen extension: the time
 *	  conversions between Unix time and timestamptz that every generator
 *	  uses.
 *
 *-------------------------------------------------------------------------
 */
#ifndef IDGEN_H
#define IDGEN_H

#include "datatype/timestamp.h"

/* Microseconds between the Unix epoch and PostgreSQL's 2000-01-01 epoch. */
#define IDGEN_UNIX_TO_PG_USECS \
	((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY)

/* Unix time in microseconds from a timestamptz (caller checks finiteness). */
static inline int64
idgen_timestamptz_to_unix_us(TimestampTz ts)
{
	return ts + IDGEN_UNIX_TO_PG_USECS;
}

/* timestamptz from Unix time in microseconds. */
static inline TimestampTz
idgen_unix_us_to_timestamptz(int64 unix_us)
{
	return unix_us - IDGEN_UNIX_TO_PG_USECS;
}

#endif							/* IDGEN_H */
