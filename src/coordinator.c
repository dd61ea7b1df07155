/*-------------------------------------------------------------------------
 *
 * coordinator.c
 *	  The lease worker's session with the coordinator, and every bound on
 *	  its waits.
 *
 * The lease worker (lease_worker.c) calls the coordinator's lease functions
 * (idgen.lease_acquire / lease_renew / lease_release, see idgen--1.1.sql)
 * through idgen_coordinator_call():
 *
 *	- over libpq when idgen.coordinator is set: asynchronously, so that every
 *	  call, the connection attempt included, has a timeout, and with
 *	  synchronous_commit = on in that session so lease writes are durable on
 *	  the coordinator whatever its configuration;
 *	- through SPI in its own session when idgen.coordinator is empty: this
 *	  server is its own coordinator, and a single node works with zero
 *	  configuration.
 *
 * Either session runs with search_path = pg_catalog and server-side limits
 * derived from idgen.lease_ttl (coordinator_session_limits()): no
 * statement, lock wait or open transaction outlasts the call timeout, and
 * the coordinator ends a remote session that has been idle for two thirds
 * of the TTL (a live node calls at least every third), so a frozen or
 * cut-off node's session, and the lock on its worker id, is gone before
 * its lease expires; TCP keepalives and tcp_user_timeout, on both ends,
 * notice a dead peer within a third of the TTL.
 *
 * Text from libpq or the coordinator reaches the caller (and so the log
 * and idgen.status) only through coordinator_set_message(), which blots
 * out idgen.coordinator's password.
 *
 * Over 500 lines because it is one concept in two transports: the
 * session limits, the libpq connection and exec, and the SPI call share
 * the timeouts they are bounded by, and are read together.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "libpq-fe.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timeout.h"
#include "utils/wait_event.h"

#include "bgw.h"
#include "clock.h"
#include "coordinator.h"
#include "floor.h"
#include "guc.h"
#include "idgen.h"

static PGconn *coordinator_conn = NULL;
static CoordinatorCall *notice_call = NULL; /* the remote call under way, if
											 * any */
static int64 coordinator_used_ns = 0;	/* when the session last answered */
static bool use_local = false;

/* idgen.coordinator as libpq parsed it: whether it parses, and its password */
static bool coordinator_parses = false;
static char *coordinator_password = NULL;

/*
 * How long one call to the coordinator may take, the connection attempt
 * included: 5 s, but at most a third of the TTL (a renewal period), and at
 * least 1 s.
 */
static int
coordinator_call_timeout_ms(void)
{
	return Min(5000, Max(1000, idgen_lease_ttl_s * 1000 / 3));
}

/*
 * The server-side limits of a coordinator session, all derived from the
 * TTL: set with set_config() on a remote session, with SetConfigOption()
 * on the local one (no socket, and no idle time between client commands:
 * the last five are left out).
 *
 *	- statement_timeout: four fifths of the call timeout, so that the
 *	  coordinator gives up (and lets go of its locks) before the node does,
 *	  and the node sees why;
 *	- lock_timeout: half the call timeout; a blocked acquisition then fails
 *	  with a message naming the blocker (idgen.lease_acquire);
 *	- idle_in_transaction_session_timeout: the call timeout;
 *	- idle_session_timeout: two thirds of the TTL.  A live node calls at
 *	  least every third of it (renewals; retries back off to at most TTL/4),
 *	  so only a frozen, cut-off or dead node's session is ended, and its
 *	  worker-id lock with it, before its lease expires (TCP alone cannot
 *	  tell: a frozen process's kernel still acknowledges);
 *	- tcp_keepalives_idle/interval/count and tcp_user_timeout: a dead or
 *	  unreachable peer is noticed within a third of the TTL.
 */
typedef struct CoordinatorLimit
{
	const char *name;
	int			value;
	bool		remote_only;	/* meaningful for a client connection only */
} CoordinatorLimit;

#define COORDINATOR_NLIMITS 8

static void
coordinator_session_limits(CoordinatorLimit *limits)
{
	int			ttl_ms = idgen_lease_ttl_s * 1000;
	int			call_ms = coordinator_call_timeout_ms();
	CoordinatorLimit all[COORDINATOR_NLIMITS] = {
		{"statement_timeout", call_ms * 4 / 5, false},
		{"lock_timeout", call_ms / 2, false},
		{"idle_in_transaction_session_timeout", call_ms, false},
		{"idle_session_timeout", ttl_ms * 2 / 3, true},
		{"tcp_keepalives_idle", Max(1, idgen_lease_ttl_s / 6), true},
		{"tcp_keepalives_interval", Max(1, idgen_lease_ttl_s / 15), true},
		{"tcp_keepalives_count", 3, true},
		{"tcp_user_timeout", ttl_ms / 3, true},
	};

	memcpy(limits, all, sizeof(all));
}

/* One of coordinator_session_limits()'s values, by name. */
static int
coordinator_limit(const char *name)
{
	CoordinatorLimit limits[COORDINATOR_NLIMITS];
	int			i;

	coordinator_session_limits(limits);
	for (i = 0; i < COORDINATOR_NLIMITS; i++)
		if (strcmp(limits[i].name, name) == 0)
			return limits[i].value;
	elog(ERROR, "idgen: no session limit \"%s\"", name);
	return 0;					/* keep compiler quiet */
}

/* ---------- talking to the coordinator ---------- */

static void coordinator_remote_exec(const char *sql, int nparams, const char *const *params,
									CoordinatorCall *call);

void
idgen_coordinator_close(void)
{
	if (coordinator_conn)
		PQfinish(coordinator_conn);
	coordinator_conn = NULL;
}

/* Wait for the coordinator's socket, servicing the latch; false on timeout. */
static bool
coordinator_wait_socket(int events, int64 deadline_ns)
{
	for (;;)
	{
		int64		remaining_ms = (deadline_ns - idgen_monotonic_ns()) / IDGEN_NS_PER_MS;
		int			rc;

		if (remaining_ms <= 0)
			return false;
		rc = WaitLatchOrSocket(MyLatch,
							   WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH | events,
							   PQsocket(coordinator_conn), (long) remaining_ms,
							   PG_WAIT_EXTENSION);
		if (rc & WL_LATCH_SET)
		{
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}
		if (rc & (WL_SOCKET_READABLE | WL_SOCKET_WRITEABLE))
			return true;
	}
}

/*
 * Parse idgen.coordinator once, so that libpq's messages can be shown
 * without its password: libpq quotes the connection string, or parts of
 * it, in some of them (a malformed URI, a keyword without "=").
 */
static void
coordinator_parse_conninfo(void)
{
	char	   *err = NULL;
	PQconninfoOption *opts = PQconninfoParse(idgen_coordinator, &err);
	PQconninfoOption *o;

	if (err)
		PQfreemem(err);			/* may quote the string: never shown */
	coordinator_parses = (opts != NULL);
	if (opts == NULL)
		return;
	for (o = opts; o->keyword; o++)
		if (strcmp(o->keyword, "password") == 0 && o->val && o->val[0])
			coordinator_password = MemoryContextStrdup(TopMemoryContext, o->val);
	PQconninfoFree(opts);
}

/*
 * Put prefix and a message from libpq or the coordinator into call->message
 * on one line, with every occurrence of idgen.coordinator's password
 * blotted out: the one place such text enters idgen.status and the log.
 */
static void
coordinator_set_message(CoordinatorCall *call, const char *prefix, const char *msg)
{
	StringInfoData buf;
	const char *p = msg ? msg : "unknown error";
	size_t		pwlen = coordinator_password ? strlen(coordinator_password) : 0;

	initStringInfo(&buf);
	appendStringInfoString(&buf, prefix);
	while (*p)
	{
		if (pwlen > 0 && strncmp(p, coordinator_password, pwlen) == 0)
		{
			appendStringInfoString(&buf, "********");
			p += pwlen;
			continue;
		}
		appendStringInfoChar(&buf, (*p == '\n' || *p == '\r') ? ' ' : *p);
		p++;
	}
	while (buf.len > 0 && buf.data[buf.len - 1] == ' ')
		buf.data[--buf.len] = '\0';
	strlcpy(call->message, buf.data, sizeof(call->message));
	pfree(buf.data);
}

/*
 * libpq's notice receiver on the coordinator session: remember the first
 * WARNING that arrives during a call (the message only: no palloc, no
 * ereport, since this runs inside libpq).  Other notices are dropped.
 */
static void
coordinator_notice_receiver(void *arg, const PGresult *res)
{
	const char *severity = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
	const char *msg;

	if (severity == NULL)		/* a server that sends only the localized one */
		severity = PQresultErrorField(res, PG_DIAG_SEVERITY);
	if (notice_call == NULL || notice_call->warning[0] != '\0' ||
		severity == NULL || strcmp(severity, "WARNING") != 0)
		return;
	msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	strlcpy(notice_call->warning, msg && msg[0] ? msg : "WARNING",
			sizeof(notice_call->warning));
}

static bool
coordinator_connect(CoordinatorCall *call)
{
	/*
	 * Defaults first, so that the user's connection string can override them:
	 * bounded connection attempts, and the keepalives and tcp_user_timeout
	 * the coordinator's end uses too.
	 */
	const char *keys[] = {
		"connect_timeout", "application_name", "keepalives",
		"keepalives_idle", "keepalives_interval", "keepalives_count",
		"tcp_user_timeout", "dbname", NULL
	};
	const char *values[9];
	int64		deadline = idgen_monotonic_ns() + coordinator_call_timeout_ms() * IDGEN_NS_PER_MS;
	PostgresPollingStatusType poll = PGRES_POLLING_WRITING;

	if (!coordinator_parses)
	{
		snprintf(call->message, sizeof(call->message),
				 "idgen.coordinator is not a valid libpq connection string (not shown: it may hold a password)");
		return false;
	}
	values[0] = psprintf("%d", Max(2, (coordinator_call_timeout_ms() + 999) / 1000));
	values[1] = "idgen lease worker";
	values[2] = "1";
	values[3] = psprintf("%d", coordinator_limit("tcp_keepalives_idle"));
	values[4] = psprintf("%d", coordinator_limit("tcp_keepalives_interval"));
	values[5] = psprintf("%d", coordinator_limit("tcp_keepalives_count"));
	values[6] = psprintf("%d", coordinator_limit("tcp_user_timeout"));
	values[7] = idgen_coordinator;
	values[8] = NULL;

	coordinator_conn = PQconnectStartParams(keys, values, true);
	if (coordinator_conn == NULL || PQstatus(coordinator_conn) == CONNECTION_BAD)
		goto fail;
	PQsetNoticeReceiver(coordinator_conn, coordinator_notice_receiver, NULL);
	while (poll != PGRES_POLLING_OK)
	{
		if (poll == PGRES_POLLING_FAILED)
			goto fail;
		if (!coordinator_wait_socket(poll == PGRES_POLLING_READING ? WL_SOCKET_READABLE
									 : WL_SOCKET_WRITEABLE, deadline))
		{
			snprintf(call->message, sizeof(call->message),
					 "timed out connecting to the coordinator");
			idgen_coordinator_close();
			return false;
		}
		poll = PQconnectPoll(coordinator_conn);
	}
	return true;

fail:
	coordinator_set_message(call, "could not connect to the coordinator: ",
							coordinator_conn ? PQerrorMessage(coordinator_conn) : "out of memory");
	idgen_coordinator_close();
	return false;
}

/*
 * A new coordinator session: lease writes durable on the coordinator,
 * timestamps in ISO form whatever its DateStyle, search_path = pg_catalog
 * and the limits of coordinator_session_limits().
 */
static void
coordinator_setup_remote_session(CoordinatorCall *call)
{
	CoordinatorLimit limits[COORDINATOR_NLIMITS];
	StringInfoData sql;
	int			i;

	coordinator_session_limits(limits);
	initStringInfo(&sql);
	appendStringInfoString(&sql,
						   "SELECT pg_catalog.set_config('search_path', 'pg_catalog', false),"
						   " pg_catalog.set_config('synchronous_commit', 'on', false),"
						   " pg_catalog.set_config('DateStyle', 'ISO', false)");
	for (i = 0; i < COORDINATOR_NLIMITS; i++)
		appendStringInfo(&sql, ", pg_catalog.set_config('%s', '%d', false)",
						 limits[i].name, limits[i].value);
	coordinator_remote_exec(sql.data, 0, NULL, call);
	pfree(sql.data);
}

/*
 * Run one statement on the coordinator session, asynchronously with a
 * timeout.
 *
 * A lease write counts only once the coordinator's synchronous standbys
 * have it: the node relies on it across a coordinator failover.  When the
 * wait of a commit for them is cancelled (pg_cancel_backend(); the
 * session's statement_timeout does not cover a commit), PostgreSQL keeps
 * the commit, sends only a WARNING ("canceling wait for synchronous
 * replication ...") and reports success.  So a call that brought a WARNING
 * fails: the warning carries no SQLSTATE of its own to tell it apart.  The
 * lease functions' only other WARNINGs come from pg_terminate_backend() on
 * the node's own stale session (it had gone already, or did not end within
 * 1 s); failing such a call too costs a retry, the node keeps its earlier
 * deadline, and lease_error quotes the warning.
 */
static void
coordinator_remote_exec(const char *sql, int nparams, const char *const *params, CoordinatorCall *call)
{
	int64		deadline = idgen_monotonic_ns() + coordinator_call_timeout_ms() * IDGEN_NS_PER_MS;
	PGresult   *res;
	PGresult   *last = NULL;

	call->warning[0] = '\0';
	notice_call = call;
	if (!PQsendQueryParams(coordinator_conn, sql, nparams, NULL, params, NULL, NULL, 0))
	{
		coordinator_set_message(call, "", PQerrorMessage(coordinator_conn));
		idgen_coordinator_close();
		goto done;
	}
	for (;;)
	{
		while (PQisBusy(coordinator_conn))
		{
			if (!coordinator_wait_socket(WL_SOCKET_READABLE, deadline))
			{
				snprintf(call->message, sizeof(call->message),
						 "coordinator did not answer within %d ms", coordinator_call_timeout_ms());
				idgen_coordinator_close();
				goto done;
			}
			if (!PQconsumeInput(coordinator_conn))
			{
				coordinator_set_message(call, "", PQerrorMessage(coordinator_conn));
				idgen_coordinator_close();
				goto done;
			}
		}
		res = PQgetResult(coordinator_conn);
		if (res == NULL)
			break;
		if (last)
			PQclear(last);
		last = res;
	}
	coordinator_used_ns = idgen_monotonic_ns();

	if (last == NULL)
		snprintf(call->message, sizeof(call->message), "no result from the coordinator");
	else if (PQresultStatus(last) != PGRES_TUPLES_OK && PQresultStatus(last) != PGRES_COMMAND_OK)
	{
		const char *state = PQresultErrorField(last, PG_DIAG_SQLSTATE);
		const char *msg = PQresultErrorField(last, PG_DIAG_MESSAGE_PRIMARY);
		const char *detail = PQresultErrorField(last, PG_DIAG_MESSAGE_DETAIL);

		if (state && strlen(state) == 5)
			call->sqlerrcode = MAKE_SQLSTATE(state[0], state[1], state[2],
											 state[3], state[4]);
		coordinator_set_message(call, "", psprintf("%s%s%s", msg ? msg : PQresultErrorMessage(last),
												   detail ? " " : "", detail ? detail : ""));
	}
	else if (call->warning[0] != '\0')
	{
		call->sqlerrcode = ERRCODE_QUERY_CANCELED;
		coordinator_set_message(call, "synchronous standbys did not confirm the lease update; the coordinator warned: ",
								call->warning);
	}
	else
	{
		int			i;

		call->ok = true;
		call->nfields = PQntuples(last) > 0 ? Min(PQnfields(last), COORDINATOR_MAX_FIELDS) : 0;
		for (i = 0; i < call->nfields; i++)
			call->fields[i] = PQgetisnull(last, 0, i) ? NULL : pstrdup(PQgetvalue(last, 0, i));
	}

done:
	notice_call = NULL;
	if (last)
		PQclear(last);
}

/* Run one statement on the remote coordinator, connecting first if need be. */
static void
coordinator_call_remote(const char *sql, int nparams, const char *const *params, CoordinatorCall *call)
{
	int64		now = idgen_monotonic_ns();

	notice_call = NULL;			/* in case an error skipped the last call's
								 * end */

	/*
	 * A session idle for nearly as long as the coordinator allows
	 * (idle_session_timeout; renewals leave it idle for only half that) may
	 * be ended there any moment: start a new one rather than fail a call on
	 * it.
	 */
	if (coordinator_conn != NULL &&
		now - coordinator_used_ns > coordinator_limit("idle_session_timeout") * 3 / 4 * IDGEN_NS_PER_MS)
		idgen_coordinator_close();
	if (coordinator_conn == NULL || PQstatus(coordinator_conn) != CONNECTION_OK)
	{
		idgen_coordinator_close();
		if (!coordinator_connect(call))
			return;
		coordinator_used_ns = now;
		coordinator_setup_remote_session(call);
		if (!call->ok)
		{
			idgen_coordinator_close();
			return;
		}
		call->ok = false;
	}
	coordinator_remote_exec(sql, nparams, params, call);
}

/*
 * After a local call: a statement timeout that fired once the call was
 * over must not cancel whatever the worker does next.
 */
static void
coordinator_disarm_statement_timeout(void)
{
	if (StatementTimeout <= 0)
		return;
	disable_timeout(STATEMENT_TIMEOUT, false);
	if (get_timeout_indicator(STATEMENT_TIMEOUT, true))
		QueryCancelPending = false;
}

/* One call in this worker's own session, for idgen_bgw_run_in_xact(). */
typedef struct CoordinatorLocalCall
{
	const char *sql;
	int			nparams;
	const char *const *params;
	CoordinatorCall *call;
	MemoryContext callcxt;		/* where the result fields go */
	bool		wrote;			/* whether the call wrote (has an xid) */
} CoordinatorLocalCall;

static void
coordinator_local_body(void *arg)
{
	CoordinatorLocalCall *local = (CoordinatorLocalCall *) arg;
	CoordinatorCall *call = local->call;
	Oid			types[16];
	Datum		values[16];
	int			i;

	for (i = 0; i < local->nparams; i++)
	{
		types[i] = TEXTOID;
		values[i] = CStringGetTextDatum(local->params[i]);
	}

	/*
	 * During process exit nothing can cancel a wait for synchronous standbys
	 * (cancels are ignored then), so the one call made then, the release,
	 * commits without one: it needs no confirmation, as a release that a
	 * standby lacks leaves the lease there longer.
	 */
	if (proc_exit_inprogress)
		(void) set_config_option("synchronous_commit", "local",
								 PGC_SUSET, PGC_S_SESSION,
								 GUC_ACTION_LOCAL, true, 0, false);
	/* no client loop arms statement_timeout for a background worker */
	if (StatementTimeout > 0)
		enable_timeout_after(STATEMENT_TIMEOUT, StatementTimeout);
	if (SPI_execute_with_args(local->sql, local->nparams, types, values, NULL, false, 1) < 0)
		elog(ERROR, "idgen: lease statement failed");
	if (SPI_processed > 0 && SPI_tuptable)
	{
		MemoryContext spicxt = MemoryContextSwitchTo(local->callcxt);

		call->nfields = Min(SPI_tuptable->tupdesc->natts, COORDINATOR_MAX_FIELDS);
		for (i = 0; i < call->nfields; i++)
			call->fields[i] = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, i + 1);
		MemoryContextSwitchTo(spicxt);
	}
	local->wrote = TransactionIdIsValid(GetTopTransactionIdIfAny());
}

static void
coordinator_local_after_commit(void *arg)
{
	CoordinatorLocalCall *local = (CoordinatorLocalCall *) arg;

	coordinator_disarm_statement_timeout();

	/*
	 * The statement timeout may have cancelled the commit's wait for
	 * synchronous standbys, which PostgreSQL turns into a WARNING: a lease
	 * write counts only once they have it (see coordinator_remote_exec()).
	 */
	if (local->wrote && !proc_exit_inprogress)
		idgen_require_sync_standby_ack(XactLastCommitEnd, "the lease update");
}

/* Run one statement in this worker's own session (local coordinator). */
static void
coordinator_call_local(const char *sql, int nparams, const char *const *params, CoordinatorCall *call)
{
	CoordinatorLocalCall local;
	ErrorData  *edata;

	local.sql = sql;
	local.nparams = nparams;
	local.params = params;
	local.call = call;
	local.callcxt = CurrentMemoryContext;
	local.wrote = false;

	/*
	 * Within the call a cancel cancels it (the call fails and is retried),
	 * whatever the worker does with one between calls: statement_timeout and
	 * lock_timeout, which bound the call and its commit's wait for
	 * synchronous standbys, arrive as a SIGINT to this process.
	 */
	idgen_bgw_allow_cancel(true);
	edata = idgen_bgw_run_in_xact(NULL, coordinator_local_body, coordinator_local_after_commit,
								  &local);
	coordinator_disarm_statement_timeout();
	if (edata == NULL)
		call->ok = true;
	else
	{
		call->sqlerrcode = edata->sqlerrcode;
		snprintf(call->message, sizeof(call->message), "%s%s%s", edata->message,
				 edata->detail ? " " : "", edata->detail ? edata->detail : "");
		FreeErrorData(edata);
	}
	idgen_bgw_allow_cancel(false);
}

/*
 * Run one statement on the coordinator (params as text) and fill in *call:
 * ok and the first row's fields, or the failure's SQLSTATE and message.
 * Never raises an error for the call's own failure.
 */
void
idgen_coordinator_call(const char *sql, int nparams, const char *const *params,
					   CoordinatorCall *call)
{
	memset(call, 0, sizeof(*call));
	if (use_local)
		coordinator_call_local(sql, nparams, params, call);
	else
		coordinator_call_remote(sql, nparams, params, call);
}

void
idgen_coordinator_open(const char *appname)
{
	use_local = (idgen_coordinator[0] == '\0');
	if (use_local)
	{
		CoordinatorLimit limits[COORDINATOR_NLIMITS];
		int			i;

		idgen_bgw_connect(appname, idgen_database, InvalidOid);
		/* nothing a user controls may resolve in this superuser session */
		SetConfigOption("search_path", "pg_catalog", PGC_SUSET, PGC_S_OVERRIDE);
		SetConfigOption("synchronous_commit", "on", PGC_SUSET, PGC_S_OVERRIDE);
		coordinator_session_limits(limits);
		for (i = 0; i < COORDINATOR_NLIMITS; i++)
			if (!limits[i].remote_only)
				SetConfigOption(limits[i].name, psprintf("%d", limits[i].value),
								PGC_SUSET, PGC_S_OVERRIDE);
	}
	else
	{
		/* no database: only to be seen in pg_stat_activity */
		idgen_bgw_connect(appname, NULL, InvalidOid);
		coordinator_parse_conninfo();
	}
}

bool
idgen_coordinator_local(void)
{
	return use_local;
}
