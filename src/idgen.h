/*-------------------------------------------------------------------------
 *
 * idgen.h
 *	  Definitions shared by every part of the idgen extension: time
 *	  constants, the conversions between Unix time and timestamptz that
 *	  every generator uses, and the one "needs shared_preload_libraries"
 *	  error (util.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef IDGEN_H
#define IDGEN_H

#include "datatype/timestamp.h"

/*
 * Nanoseconds per unit, for the monotonic and realtime clocks (clock.h).
 * Prefixed: PostgreSQL 16 and later define NS_PER_S and friends in
 * portability/instr_time.h.
 */
#define IDGEN_NS_PER_US			INT64CONST(1000)
#define IDGEN_NS_PER_MS			INT64CONST(1000000)
#define IDGEN_NS_PER_S			INT64CONST(1000000000)

/* Milliseconds in an average Gregorian year, for "years left" estimates. */
#define IDGEN_MS_PER_YEAR		(365.2425 * 86400.0 * 1000.0)

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

/*
 * Refuse, with ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, a call that needs
 * idgen's shared memory when the library was not preloaded: what needs it
 * ("Snowflake IDs"), why (an errdetail sentence), and an optional sentence
 * appended to the hint (or NULL).  Callers test their own shared pointer.
 */
#if PG_VERSION_NUM >= 180000
pg_noreturn extern void idgen_require_preload(const char *what, const char *detail,
											  const char *hint_extra);
#else
extern void idgen_require_preload(const char *what, const char *detail,
								  const char *hint_extra) pg_attribute_noreturn();
#endif

#endif							/* IDGEN_H */
