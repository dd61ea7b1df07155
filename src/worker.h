/*-------------------------------------------------------------------------
 *
 * worker.h
 *	  idgen's background workers: segment grants (one per database in use)
 *	  and the probe worker in idgen.database.
 *
 *-------------------------------------------------------------------------
 */
#ifndef IDGEN_WORKER_H
#define IDGEN_WORKER_H

extern void idgen_register_worker(void);
extern bool idgen_launch_segment_worker(Oid dbid);
extern PGDLLEXPORT void idgen_worker_main(Datum main_arg);
extern PGDLLEXPORT void idgen_segment_worker_main(Datum main_arg);
extern PGDLLEXPORT void idgen_probe_worker_main(Datum main_arg);

#endif							/* IDGEN_WORKER_H */
