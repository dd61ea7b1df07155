/*-------------------------------------------------------------------------
 *
 * coordinator.h
 *	  The lease worker's session with the coordinator: over libpq to
 *	  idgen.coordinator, or through SPI in its own session when this server
 *	  is its own coordinator.
 *
 *-------------------------------------------------------------------------
 */
#ifndef IDGEN_COORDINATOR_H
#define IDGEN_COORDINATOR_H

#define COORDINATOR_MAX_FIELDS	8

/* One call's outcome. */
typedef struct CoordinatorCall
{
	bool		ok;
	int			sqlerrcode;		/* the failure's SQLSTATE (errcodes.h), or 0 */
	char		message[512];	/* never holds idgen.coordinator's password */
	char		warning[256];	/* first WARNING the coordinator sent with it */
	int			nfields;
	char	   *fields[COORDINATOR_MAX_FIELDS]; /* first row; palloc'd in the
												 * caller's context */
} CoordinatorCall;

/*
 * In the worker, once, after its signal set-up: connect this process
 * (to idgen.database with the session limits when it is its own
 * coordinator; to no database otherwise) and show appname.
 */
extern void idgen_coordinator_open(const char *appname);

/* Whether this server is its own coordinator (idgen.coordinator empty). */
extern bool idgen_coordinator_local(void);

extern void idgen_coordinator_call(const char *sql, int nparams,
								   const char *const *params, CoordinatorCall *call);

/* Drop the remote session, if any (the next call starts a new one). */
extern void idgen_coordinator_close(void);

#endif							/* IDGEN_COORDINATOR_H */
