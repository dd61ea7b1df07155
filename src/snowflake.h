/*-------------------------------------------------------------------------
 *
 * snowflake.h
 *	  64-bit Snowflake IDs: shared-memory entry points, layout validation
 *	  and the hooks the time floor and the lease worker use.
 *
 *-------------------------------------------------------------------------
 */
#ifndef IDGEN_SNOWFLAKE_H
#define IDGEN_SNOWFLAKE_H

#include "timefloor.h"

extern Size snowflake_shmem_size(void);
extern void snowflake_shmem_init(void);
extern void snowflake_check_layout(void);
extern void snowflake_current_layout(IdgenLayout *layout);
extern void snowflake_replay_floor(const IdgenFloorRecord *rec);
extern void snowflake_raise_for_holding(int64 previous_floor_ms);
extern int64 snowflake_fence_floor(void);
extern void snowflake_status(int32 *worker_id, int64 *last_issued_ms,
							 int64 *floor_ms, bool *issued, const char **problem);

#endif							/* IDGEN_SNOWFLAKE_H */
