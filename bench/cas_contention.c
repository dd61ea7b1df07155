/*
 * cas_contention.c: what one shared 64-bit position costs when one or two
 * threads issue from it, for the compare-and-swap protocols idgen.uuidv7()
 * can use.  A stand-in for perf c2c, which needs hardware counters that
 * this VM does not expose; bench/contention builds and runs it.
 *
 * Each thread issues IDS positions as uuidv7_next_position() does
 * (max(clock position, last + 1), CAS into the shared word), with WORK
 * iterations of private busy work between IDs standing in for the
 * executor.  Protocols:
 *   read    read the shared word, then CAS (idgen up to 1.0)
 *   guess   CAS from this thread's own last position, no read
 *   pfw     prefetch the line for writing before the clock read, then as read
 *   pfw-guess  both
 * Printed per run: threads, protocol, ns per ID per thread (wall, from
 * CLOCK_MONOTONIC), CAS failures per ID.  Threads are pinned to CPUs 0 and
 * 1 and, when run as root, scheduled SCHED_FIFO so that other processes on
 * a busy machine cannot interleave with them.
 *
 * Build: cc -O2 -pthread -o cas_contention cas_contention.c
 * Usage: cas_contention PROTOCOL THREADS IDS WORK
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum protocol
{
	READ, GUESS, PFW, PFW_GUESS
};

static _Alignas(128) _Atomic uint64_t shared_position;
static enum protocol protocol;
static long ids;
static long work;
static pthread_barrier_t start;

typedef struct
{
	int			cpu;
	uint64_t	failures;
	double		ns_per_id;
	uint64_t	checksum;
} result;

static inline void
prefetch_for_write(void *p)
{
#if defined(__x86_64__)
	__asm__ __volatile__("prefetchw %0" : : "m"(*(volatile char *) p));
#else
	__builtin_prefetch(p, 1);
#endif
}

static inline uint64_t
clock_position(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ((uint64_t) ts.tv_sec * 4096000 +
			((uint64_t) ts.tv_nsec << 12) / 1000000) << 10;
}

static double
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void *
run(void *arg)
{
	result	   *r = arg;
	cpu_set_t	set;
	struct sched_param sp = {.sched_priority = 10};
	uint64_t	mine = 0;
	uint64_t	prev = 0;
	volatile uint64_t sink = 0;
	double		t0;

	CPU_ZERO(&set);
	CPU_SET(r->cpu, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	(void) pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp);	/* root only */
	pthread_barrier_wait(&start);
	t0 = now_ns();
	for (long i = 0; i < ids; i++)
	{
		uint64_t	clk,
					last,
					next;

		if (protocol == PFW || protocol == PFW_GUESS)
			prefetch_for_write(&shared_position);
		clk = clock_position();
		last = (protocol == GUESS || protocol == PFW_GUESS) ? mine
			: atomic_load_explicit(&shared_position, memory_order_relaxed);
		next = clk > last ? clk : last + 1;
		while (!atomic_compare_exchange_strong(&shared_position, &last, next))
		{
			r->failures++;
			next = clk > last ? clk : last + 1;
		}
		mine = next;
		if (next <= prev)
			abort();			/* not increasing: the protocol is broken */
		prev = next;
		r->checksum += next;
		for (long w = 0; w < work; w++)
			sink += w;
	}
	r->ns_per_id = (now_ns() - t0) / ids;
	return NULL;
}

int
main(int argc, char **argv)
{
	static const char *names[] = {"read", "guess", "pfw", "pfw-guess"};
	pthread_t	th[2];
	result		res[2];
	int			threads;

	if (argc != 5)
	{
		fprintf(stderr, "usage: %s read|guess|pfw|pfw-guess THREADS IDS WORK\n", argv[0]);
		return 2;
	}
	for (protocol = READ; protocol <= PFW_GUESS; protocol++)
		if (strcmp(argv[1], names[protocol]) == 0)
			break;
	threads = atoi(argv[2]);
	ids = atol(argv[3]);
	work = atol(argv[4]);
	if (protocol > PFW_GUESS || threads < 1 || threads > 2 || ids < 1)
	{
		fprintf(stderr, "%s: bad arguments\n", argv[0]);
		return 2;
	}
	pthread_barrier_init(&start, NULL, threads);
	for (int t = 0; t < threads; t++)
	{
		memset(&res[t], 0, sizeof(res[t]));
		res[t].cpu = t;
		pthread_create(&th[t], NULL, run, &res[t]);
	}
	for (int t = 0; t < threads; t++)
		pthread_join(th[t], NULL);
	for (int t = 0; t < threads; t++)
		printf("%d\t%s\t%.1f\t%.3f\n", threads, names[protocol],
			   res[t].ns_per_id, (double) res[t].failures / ids);
	return 0;
}
