/*-------------------------------------------------------------------------
 *
 * timefloor.h
 *	  Transitional: the durable time floor moved to floor.h.  Kept only so
 *	  that segment_grant.c builds until it includes floor.h (helper segsrc,
 *	  issue 13); then this file is deleted.
 *
 *-------------------------------------------------------------------------
 */
#ifndef IDGEN_TIMEFLOOR_H
#define IDGEN_TIMEFLOOR_H

#include "floor.h"

#endif							/* IDGEN_TIMEFLOOR_H */
