/*-------------------------------------------------------------------------
 *
 * statefile.h
 *	  Durable state files in the data directory: one writer and one reader
 *	  for every file idgen keeps there (the Snowflake time floor, the
 *	  UUIDv7 position).
 *
 *-------------------------------------------------------------------------
 */
#ifndef IDGEN_STATEFILE_H
#define IDGEN_STATEFILE_H

/*
 * A state record is a fixed-size struct whose first two fields are a
 * uint32 magic number and a uint32 format version and whose last field is
 * a uint32 CRC-32C of every byte before it (no padding after it: check
 * with StaticAssertDecl).  idgen_statefile_seal() fills in those three.
 */
typedef struct IdgenStateHeader
{
	uint32		magic;
	uint32		version;
} IdgenStateHeader;

typedef enum IdgenStateRead
{
	IDGEN_STATE_ABSENT,			/* no such file */
	IDGEN_STATE_OK,				/* a valid record was read */
	IDGEN_STATE_CORRUPT			/* short, wrong magic or version, bad CRC */
} IdgenStateRead;

extern void idgen_statefile_seal(void *rec, size_t size, uint32 magic, uint32 version);
extern bool idgen_statefile_valid(const void *rec, size_t size, uint32 magic,
								  uint32 version);
extern bool idgen_statefile_write(const char *path, void *rec, size_t size,
								  uint32 magic, uint32 version, int elevel);
extern IdgenStateRead idgen_statefile_read(const char *path, void *rec, size_t size,
										   uint32 magic, uint32 version,
										   int elevel, size_t *got);

#endif							/* IDGEN_STATEFILE_H */
