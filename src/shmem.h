/*-------------------------------------------------------------------------
 *
 * shmem.h
 *	  Shared-memory set-up for idgen.
 *
 *-------------------------------------------------------------------------
 */
#ifndef IDGEN_SHMEM_H
#define IDGEN_SHMEM_H

#include "storage/lwlock.h"

/* Named LWLock tranche and the locks in it (see shmem.c for the protocol). */
#define IDGEN_LWLOCK_TRANCHE	"idgen"
#define IDGEN_LWLOCK_FLOOR		0	/* raising the Snowflake time floor */
#define IDGEN_LWLOCK_SEGMENT_HASH 1 /* adding or removing segment tags */
#define IDGEN_NUM_LWLOCKS		2

extern void idgen_shmem_install_hooks(void);
extern LWLock *idgen_lwlock(int which);

#endif							/* IDGEN_SHMEM_H */
