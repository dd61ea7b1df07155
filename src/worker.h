/*-------------------------------------------------------------------------
 *
 * worker.h
 *	  What idgen's segment workers (one per database in use) and the probe
 *	  worker in idgen.database share.
 *
 *-------------------------------------------------------------------------
 */
#ifndef IDGEN_WORKER_H
#define IDGEN_WORKER_H

/* Longest a worker sleeps before it looks at its work again. */
#define IDGEN_WORKER_NAP_MS			1000

extern void idgen_register_worker(void);
extern bool idgen_launch_segment_worker(Oid dbid);
extern void idgen_worker_connect(const char *appname, const char *dbname, Oid dbid);
extern void idgen_worker_nap(long timeout_ms);

#endif							/* IDGEN_WORKER_H */
