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

/* SQLSTATEs of idgen's own refusals: class IG. */
#define IDGEN_ERRCODE_CLOCK_BEHIND			MAKE_SQLSTATE('I','G','0','0','1')
#define IDGEN_ERRCODE_TIME_FLOOR			MAKE_SQLSTATE('I','G','0','0','2')
#define IDGEN_ERRCODE_CLOCK_UNSYNCHRONISED	MAKE_SQLSTATE('I','G','0','0','3')
#define IDGEN_ERRCODE_TIMESTAMP_EXHAUSTED	MAKE_SQLSTATE('I','G','0','0','4')
/* IG005 (no worker id) is in lease.h, IG009 (standby wait) in timefloor.h */
#define IDGEN_ERRCODE_LAYOUT_CHANGED		MAKE_SQLSTATE('I','G','0','0','6')

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
