/*-------------------------------------------------------------------------
 *
 * worker.h
 *	  idgen's background workers in idgen.database (segments, probes).
 *
 *-------------------------------------------------------------------------
 */
#ifndef IDGEN_WORKER_H
#define IDGEN_WORKER_H

extern void idgen_register_worker(void);
extern PGDLLEXPORT void idgen_worker_main(Datum main_arg);
extern PGDLLEXPORT void idgen_probe_worker_main(Datum main_arg);

#endif							/* IDGEN_WORKER_H */
