/*-------------------------------------------------------------------------
 *
 * uuidv7.h
 *	  UUIDv7 generator: shared-memory entry points.
 *
 *-------------------------------------------------------------------------
 */
#ifndef IDGEN_UUIDV7_H
#define IDGEN_UUIDV7_H

#include "utils/uuid.h"

extern Size idgen_uuidv7_shmem_size(void);
extern void idgen_uuidv7_shmem_init(void);

/* One UUIDv7, as idgen.uuidv7() issues it (pg_uuid_t: utils/uuid.h). */
extern void idgen_uuidv7_generate(pg_uuid_t *uuid);

#endif							/* IDGEN_UUIDV7_H */
