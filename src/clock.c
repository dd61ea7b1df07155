/*-------------------------------------------------------------------------
 *
 * clock.c
 *	  Clock reading, bounded waits and clock discipline health.
 *
 * The generators read CLOCK_REALTIME for the time they embed in IDs and
 * CLOCK_MONOTONIC for every deadline, so that a step of the wall clock can
 * neither stretch nor shorten a bounded wait.  Waiting for the wall clock to
 * reach a tick boundary spins for the last couple of milliseconds: sleeping
 * with pg_usleep overshoots by tens of microseconds, which at 4,096 IDs per
 * millisecond would cost several percent of a worker's ceiling.
 *
 * idgen_clock_health() asks the kernel (adjtimex with no modes set, which
 * only reads) whether NTP/PTP discipline considers the clock synchronised,
 * what error it estimates, and whether a leap second is armed.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/timex.h>

#include "miscadmin.h"
#include "storage/s_lock.h"

#include "clock.h"

/* Below this much remaining time we spin instead of sleeping. */
#define IDGEN_SPIN_BELOW_NS		INT64CONST(2000000)

void
idgen_clock_health(IdgenClockHealth *health)
{
	struct timex tx;
	int			state;

	memset(&tx, 0, sizeof(tx));
	tx.modes = 0;				/* read only */
	state = adjtimex(&tx);

	health->kernel_state = state;
	health->synchronised = (state >= 0 && state != TIME_ERROR &&
							(tx.status & STA_UNSYNC) == 0);
	health->leap_pending = (state == TIME_INS || state == TIME_DEL ||
							(tx.status & (STA_INS | STA_DEL)) != 0);
	health->leap_in_progress = (state == TIME_OOP);
	health->est_error_us = tx.esterror;
	health->max_error_us = tx.maxerror;
}

const char *
idgen_clock_state_name(int kernel_state)
{
	switch (kernel_state)
	{
		case TIME_OK:
			return "ok";
		case TIME_INS:
			return "insert leap second";
		case TIME_DEL:
			return "delete leap second";
		case TIME_OOP:
			return "leap second in progress";
		case TIME_WAIT:
			return "leap second has occurred";
		case TIME_ERROR:
			return "unsynchronised";
		default:
			return "unknown";
	}
}

bool
idgen_wait_for_realtime(int64 unix_ns, int64 max_wait_ns)
{
	int64		deadline = idgen_monotonic_ns() + max_wait_ns;

	for (;;)
	{
		int64		remaining = unix_ns - idgen_realtime_ns();

		if (remaining <= 0)
			return true;
		if (idgen_monotonic_ns() >= deadline)
			return false;

		CHECK_FOR_INTERRUPTS();

		if (remaining > IDGEN_SPIN_BELOW_NS)
		{
			int64		sleep_ns = Min(remaining - IDGEN_SPIN_BELOW_NS / 2,
									   deadline - idgen_monotonic_ns());

			if (sleep_ns > 0)
				pg_usleep((long) (sleep_ns / 1000));
		}
		else
			SPIN_DELAY();
	}
}
