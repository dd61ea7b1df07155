/*-------------------------------------------------------------------------
 *
 * bgw.h
 *	  The toolkit every idgen background worker is built on: registration,
 *	  signals, napping, and running work in a transaction.
 *
 *-------------------------------------------------------------------------
 */
#ifndef IDGEN_BGW_H
#define IDGEN_BGW_H

/* Every background worker idgen starts (bgw.c's registration table). */
typedef enum IdgenBgw
{
	IDGEN_BGW_SEGMENT,			/* segment grants in idgen.database: static */
	IDGEN_BGW_PROBE,			/* uniqueness probes in idgen.database: static */
	IDGEN_BGW_LEASE,			/* the worker-id lease: static, leased mode
								 * only */
	IDGEN_BGW_SEGMENT_DATABASE, /* segment grants in another database: dynamic */
	IDGEN_BGW_COUNT
} IdgenBgw;

/* From _PG_init: register every static worker this configuration needs. */
extern void idgen_bgw_register_static(void);

/* From a backend: start a dynamic worker for dbid; false if no slot is free. */
extern bool idgen_bgw_launch(IdgenBgw which, Oid dbid);

/*
 * In a worker, first: SIGTERM ends it (die), SIGHUP marks a reload for
 * idgen_bgw_nap().  With defer_cancel, a cancel (SIGINT) outside
 * idgen_bgw_allow_cancel(true) does not interrupt the worker; it is only
 * remembered, for idgen_bgw_cancel_requested() (the lease worker, whose
 * lease must not be lost to pg_cancel_backend()).
 */
extern void idgen_bgw_setup_signals(bool defer_cancel);
extern bool idgen_bgw_cancel_requested(void);
extern void idgen_bgw_allow_cancel(bool allow);

/*
 * Connect to a database by name, or else by OID, or else to none (shared
 * catalogs only), and show appname in pg_stat_activity.
 */
extern void idgen_bgw_connect(const char *appname, const char *dbname, Oid dbid);

/* Sleep on the latch for at most timeout_ms; then interrupts and reloads. */
extern void idgen_bgw_nap(long timeout_ms);

/*
 * Run body in a transaction of its own, connected to SPI, with a snapshot,
 * and then, once committed, after_commit (if not NULL; for checks that
 * need the commit, such as the wait for synchronous standbys).  Returns
 * NULL on success; on an error in body the transaction is aborted, and an
 * error in either step is returned, in the caller's memory context, for the caller to
 * report and FreeErrorData().  activity, if not NULL, is shown in
 * pg_stat_activity meanwhile.
 */
typedef void (*IdgenXactStep) (void *arg);

extern ErrorData *idgen_bgw_run_in_xact(const char *activity, IdgenXactStep body,
										IdgenXactStep after_commit, void *arg);

#endif							/* IDGEN_BGW_H */
