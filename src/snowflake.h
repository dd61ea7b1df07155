/*-------------------------------------------------------------------------
 *
 * snowflake.h
 *	  64-bit Snowflake IDs: set-up, the layout's derived constants for
 *	  decoding, and the state idgen.status shows.
 *
 *-------------------------------------------------------------------------
 */
#ifndef IDGEN_SNOWFLAKE_H
#define IDGEN_SNOWFLAKE_H

#include "datatype/timestamp.h"

/* The layout's derived constants (from the idgen.*_bits settings). */
typedef struct SnowflakeGeometry
{
	int			sequence_shift; /* = sequence_bits */
	int			worker_shift;	/* = sequence_bits + worker_bits */
	uint64		sequence_mask;
	uint64		max_tick;
} SnowflakeGeometry;

extern Size idgen_snowflake_shmem_size(void);
extern void idgen_snowflake_shmem_init(void);
extern void idgen_snowflake_check_layout(void);
extern void idgen_snowflake_geometry(SnowflakeGeometry *geometry);
extern TimestampTz idgen_snowflake_tick_timestamptz(uint64 tick);
extern void idgen_snowflake_status(int32 *worker_id, int64 *last_issued_ms,
								   int64 *floor_ms, bool *issued, const char **problem);

#endif							/* IDGEN_SNOWFLAKE_H */
