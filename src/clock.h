/*-------------------------------------------------------------------------
 *
 * clock.h
 *	  Reading the wall clock and the monotonic clock, waiting for the wall
 *	  clock to reach a point in time, and the kernel's clock discipline
 *	  state (adjtimex) for monitoring and the optional synchronisation gate.
 *
 *-------------------------------------------------------------------------
 */
#ifndef IDGEN_CLOCK_H
#define IDGEN_CLOCK_H

#include <time.h>

#include "idgen.h"

/* Wall-clock time: nanoseconds since the Unix epoch (CLOCK_REALTIME). */
static inline int64
idgen_realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64) ts.tv_sec * IDGEN_NS_PER_S + ts.tv_nsec;
}

/*
 * Monotonic time in nanoseconds (CLOCK_MONOTONIC): immune to wall-clock
 * steps, used for every deadline and bounded wait.
 */
static inline int64
idgen_monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64) ts.tv_sec * IDGEN_NS_PER_S + ts.tv_nsec;
}

/* The kernel's view of clock discipline, from adjtimex(2). */
typedef struct IdgenClockHealth
{
	bool		synchronised;	/* STA_UNSYNC clear and state not TIME_ERROR */
	bool		leap_pending;	/* a leap second insertion/deletion is armed */
	bool		leap_in_progress;	/* TIME_OOP: inside an inserted second */
	int			kernel_state;	/* TIME_OK, TIME_INS, ... as returned */
	int64		est_error_us;	/* estimated error in microseconds */
	int64		max_error_us;	/* maximum error in microseconds */
} IdgenClockHealth;

extern void idgen_clock_health(IdgenClockHealth *health);
extern const char *idgen_clock_state_name(int kernel_state);

/*
 * Wait until the wall clock reaches unix_ns, giving up after max_wait_ns
 * (measured on the monotonic clock).  Returns true if the clock got there.
 * Short waits spin so that a generator resumes within microseconds of a
 * tick boundary; longer ones sleep.  Interrupts are serviced throughout.
 */
extern bool idgen_wait_for_realtime(int64 unix_ns, int64 max_wait_ns);

#endif							/* IDGEN_CLOCK_H */
