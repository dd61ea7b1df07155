/*-------------------------------------------------------------------------
 *
 * uuidv7.h
 *	  UUIDv7 generator: shared-memory entry points.
 *
 *-------------------------------------------------------------------------
 */
#ifndef IDGEN_UUIDV7_H
#define IDGEN_UUIDV7_H

extern Size uuidv7_shmem_size(void);
extern void uuidv7_shmem_init(void);

#endif							/* IDGEN_UUIDV7_H */
