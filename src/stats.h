/*-------------------------------------------------------------------------
 *
 * stats.h
 *	  Monitoring counters, shown one row per metric by the idgen.stats view.
 *
 *-------------------------------------------------------------------------
 */
#ifndef IDGEN_STATS_H
#define IDGEN_STATS_H

/*
 * Every counter idgen keeps.  The order is the order of rows in idgen.stats;
 * names, labels and help texts live in stats.c beside the array that
 * describes them.
 */
typedef enum IdgenCounter
{
	IDGEN_C_UUIDV7_ISSUED,
	IDGEN_C_UUIDV7_CLOCK_STEP_BACK,
	IDGEN_C_SNOWFLAKE_ISSUED,
	IDGEN_C_SNOWFLAKE_CLOCK_STEP_BACK,
	IDGEN_C_SNOWFLAKE_WAIT_SEQUENCE,
	IDGEN_C_SNOWFLAKE_WAIT_CLOCK,
	IDGEN_C_SNOWFLAKE_REFUSE_CLOCK,
	IDGEN_C_SNOWFLAKE_REFUSE_FLOOR,
	IDGEN_C_SNOWFLAKE_REFUSE_UNSYNC,
	IDGEN_C_SNOWFLAKE_REFUSE_EXHAUSTED,
	IDGEN_C_SNOWFLAKE_REFUSE_WORKER,
	IDGEN_C_SNOWFLAKE_REFUSE_LAYOUT,
	IDGEN_C_FLOOR_WRITES,
	IDGEN_C_SEGMENT_ISSUED,
	IDGEN_C_SEGMENT_GRANTS,
	IDGEN_C_SEGMENT_PREFETCHES,
	IDGEN_C_SEGMENT_CALLER_WAITS,
	IDGEN_C_SEGMENT_WAIT_TIMEOUTS,
	IDGEN_C_SEGMENT_BURNS,
	IDGEN_NUM_COUNTERS
} IdgenCounter;

/*
 * Count IDs issued: cheap, kept in backend-local memory and added to the
 * shared counters every few hundred IDs and at the end of each transaction.
 */
extern void idgen_count_issued(IdgenCounter counter);
extern void idgen_count_issued_n(IdgenCounter counter, uint64 n);

/* Count a rare event (a wait, a refusal, a write): shared at once. */
extern void idgen_count_event(IdgenCounter counter);

extern Size idgen_stats_shmem_size(void);
extern void idgen_stats_shmem_init(void);
extern void idgen_stats_init_backend(void);

#endif							/* IDGEN_STATS_H */
