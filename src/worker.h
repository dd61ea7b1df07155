/*-------------------------------------------------------------------------
 *
 * worker.h
 *	  idgen's background worker.
 *
 *-------------------------------------------------------------------------
 */
#ifndef IDGEN_WORKER_H
#define IDGEN_WORKER_H

extern void idgen_register_worker(void);
extern PGDLLEXPORT void idgen_worker_main(Datum main_arg);

#endif							/* IDGEN_WORKER_H */
