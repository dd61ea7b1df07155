/*-------------------------------------------------------------------------
 *
 * timefloor.h
 *	  The durable Snowflake time floor: its on-disk record, its WAL record
 *	  and the custom resource manager that replays it.
 *
 *-------------------------------------------------------------------------
 */
#ifndef IDGEN_TIMEFLOOR_H
#define IDGEN_TIMEFLOOR_H

#include "access/xlogdefs.h"

/* File in the data directory holding the floor and the layout. */
#define IDGEN_FLOOR_FILE		"idgen_snowflake.state"

/*
 * Resource manager id for idgen's WAL records.  RM_EXPERIMENTAL_ID until
 * idgen has an id of its own in PostgreSQL's registry of custom resource
 * managers; the README says what this means for other extensions.
 */
#define IDGEN_RMGR_ID			RM_EXPERIMENTAL_ID
#define IDGEN_RMGR_NAME			"idgen"
#define XLOG_IDGEN_FLOOR		0x00

/*
 * The Snowflake layout a data directory uses.  IDs of two layouts can
 * collide, so the layout is written with every floor and compared at
 * start-up.
 */
typedef struct IdgenLayout
{
	int32		timestamp_bits;
	int32		worker_bits;
	int32		sequence_bits;
	int32		tick_ms;
	int64		epoch_ms;		/* Unix milliseconds */
} IdgenLayout;

/* The record, both on disk and in WAL. */
typedef struct IdgenFloorRecord
{
	uint32		magic;
	uint32		version;
	IdgenLayout layout;
	int64		floor_ms;		/* Unix ms: no ID's tick starts after this */
	int32		worker_id;		/* worker id in force when written */
	uint32		crc;			/* CRC-32C of everything above */
} IdgenFloorRecord;

#define IDGEN_FLOOR_MAGIC		0x49444746	/* "IDGF" */
#define IDGEN_FLOOR_VERSION		1

typedef enum IdgenFloorReadResult
{
	IDGEN_FLOOR_ABSENT,
	IDGEN_FLOOR_OK,
	IDGEN_FLOOR_CORRUPT
} IdgenFloorReadResult;

extern IdgenFloorReadResult idgen_floor_read_file(IdgenFloorRecord *rec);
extern void idgen_floor_write_file(IdgenFloorRecord *rec);
extern bool idgen_floor_log_and_flush(IdgenFloorRecord *rec, bool must_confirm);
extern void idgen_floor_register_rmgr(void);
extern void idgen_require_sync_standby_ack(XLogRecPtr lsn, const char *what);
extern bool idgen_layout_equal(const IdgenLayout *a, const IdgenLayout *b);
extern char *idgen_layout_describe(const IdgenLayout *layout);

#endif							/* IDGEN_TIMEFLOOR_H */
