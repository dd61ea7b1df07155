/*-------------------------------------------------------------------------
 *
 * lease_worker.c
 *	  The lease worker: holds this node's worker-id lease on the coordinator.
 *
 * Started when recovery has finished (a standby leases nothing), only in
 * leased mode (idgen.worker_id = -1, or a static id with idgen.coordinator
 * set).  It talks to the coordinator through its lease functions
 * (idgen.lease_acquire / lease_renew / lease_release, see idgen--1.1.sql):
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
 * derived from idgen.lease_ttl (lease_session_limits()): no statement, lock
 * wait or open transaction outlasts the call timeout, and the coordinator
 * ends a remote session that has been idle for two thirds of the TTL (a
 * live node calls at least every third), so a frozen or cut-off node's
 * session, and the lock on its worker id, is gone before its lease
 * expires; TCP keepalives and tcp_user_timeout, on both ends, notice a
 * dead peer within a third of the TTL.
 *
 * The session holds a session-level lock on the leased id (in a lock space
 * only idgen's lease functions reach, see lease_locks.c) for as long as it
 * lives.  Renewal runs every third of idgen.lease_ttl; each
 * success moves the node's deadline (monotonic clock) and its time horizon
 * forward.  A failed renewal makes the node fail-static: it keeps issuing
 * until its deadline (lease.c), while the worker retries with capped
 * exponential backoff and jitter.  At the deadline the node stops issuing
 * (expired) and tries to renew, or failing that to acquire a lease again.
 * On acquisition the node's Snowflake state is raised above the id's
 * previous holder's recorded time floor before the id is published.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <unistd.h>

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "libpq-fe.h"
#include "miscadmin.h"
#include "postmaster/postmaster.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "bgw.h"
#include "clock.h"
#include "errcodes.h"
#include "guc.h"
#include "idgen.h"
#include "lease.h"
#include "random.h"
#include "snowflake.h"
#include "timefloor.h"

#define LEASE_MAX_FIELDS		8

typedef struct LeaseCall
{
	bool		ok;
	int			sqlerrcode;		/* the failure's SQLSTATE (errcodes.h), or 0 */
	char		message[512];
	char		warning[256];	/* first WARNING the coordinator sent with it */
	int			nfields;
	char	   *fields[LEASE_MAX_FIELDS];	/* palloc'd in the worker's context */
} LeaseCall;

static PGconn *coordinator_conn = NULL;
static LeaseCall *notice_call = NULL;	/* the remote call under way, if any */
static int64 coordinator_used_ns = 0;	/* when the session last answered */
static bool use_local = false;
static char holder_identity[256];

/* idgen.coordinator as libpq parsed it: whether it parses, and its password */
static bool coordinator_parses = false;
static char *coordinator_password = NULL;

/* What this node holds */
static int32 held_worker_id = -1;
static int64 held_generation = 0;
static int64 held_horizon_ms = 0;
static int64 held_previous_floor_ms = 0;	/* the id's floor when we took it */
static int32 held_in_use = -1;	/* ids in use, as counted at acquisition */

static int
lease_margin_s(void)
{
	return Max(1, idgen_lease_ttl_s / 10);
}

/*
 * How long one call to the coordinator may take, the connection attempt
 * included: 5 s, but at most a third of the TTL (a renewal period), and at
 * least 1 s.
 */
static int
lease_call_timeout_ms(void)
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
typedef struct LeaseLimit
{
	const char *name;
	int			value;
	bool		remote_only;	/* meaningful for a client connection only */
} LeaseLimit;

#define LEASE_NLIMITS 8

static void
lease_session_limits(LeaseLimit *limits)
{
	int			ttl_ms = idgen_lease_ttl_s * 1000;
	int			call_ms = lease_call_timeout_ms();
	LeaseLimit	all[LEASE_NLIMITS] = {
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

/* One of lease_session_limits()'s values, by name. */
static int
lease_limit(const char *name)
{
	LeaseLimit	limits[LEASE_NLIMITS];
	int			i;

	lease_session_limits(limits);
	for (i = 0; i < LEASE_NLIMITS; i++)
		if (strcmp(limits[i].name, name) == 0)
			return limits[i].value;
	elog(ERROR, "idgen: no session limit \"%s\"", name);
	return 0;					/* keep compiler quiet */
}

/* ---------- talking to the coordinator ---------- */

static void lease_remote_exec(const char *sql, int nparams, const char *const *params,
							  LeaseCall *call);

static void
lease_disconnect(void)
{
	if (coordinator_conn)
		PQfinish(coordinator_conn);
	coordinator_conn = NULL;
}

/* Wait for the coordinator's socket, servicing the latch; false on timeout. */
static bool
lease_wait_socket(int events, int64 deadline_ns)
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
lease_parse_coordinator(void)
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
lease_set_message(LeaseCall *call, const char *prefix, const char *msg)
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
lease_notice_receiver(void *arg, const PGresult *res)
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
lease_connect(LeaseCall *call)
{
	/*
	 * Defaults first, so that the user's connection string can override
	 * them: bounded connection attempts, and the keepalives and
	 * tcp_user_timeout the coordinator's end uses too.
	 */
	const char *keys[] = {"connect_timeout", "application_name",
		"keepalives", "keepalives_idle", "keepalives_interval",
		"keepalives_count", "tcp_user_timeout", "dbname", NULL};
	const char *values[9];
	int64		deadline = idgen_monotonic_ns() + lease_call_timeout_ms() * IDGEN_NS_PER_MS;
	PostgresPollingStatusType poll = PGRES_POLLING_WRITING;

	if (!coordinator_parses)
	{
		snprintf(call->message, sizeof(call->message),
				 "idgen.coordinator is not a valid libpq connection string (not shown: it may hold a password)");
		return false;
	}
	values[0] = psprintf("%d", Max(2, (lease_call_timeout_ms() + 999) / 1000));
	values[1] = "idgen lease worker";
	values[2] = "1";
	values[3] = psprintf("%d", lease_limit("tcp_keepalives_idle"));
	values[4] = psprintf("%d", lease_limit("tcp_keepalives_interval"));
	values[5] = psprintf("%d", lease_limit("tcp_keepalives_count"));
	values[6] = psprintf("%d", lease_limit("tcp_user_timeout"));
	values[7] = idgen_coordinator;
	values[8] = NULL;

	coordinator_conn = PQconnectStartParams(keys, values, true);
	if (coordinator_conn == NULL || PQstatus(coordinator_conn) == CONNECTION_BAD)
		goto fail;
	PQsetNoticeReceiver(coordinator_conn, lease_notice_receiver, NULL);
	while (poll != PGRES_POLLING_OK)
	{
		if (poll == PGRES_POLLING_FAILED)
			goto fail;
		if (!lease_wait_socket(poll == PGRES_POLLING_READING ? WL_SOCKET_READABLE
							   : WL_SOCKET_WRITEABLE, deadline))
		{
			snprintf(call->message, sizeof(call->message),
					 "timed out connecting to the coordinator");
			lease_disconnect();
			return false;
		}
		poll = PQconnectPoll(coordinator_conn);
	}
	return true;

fail:
	lease_set_message(call, "could not connect to the coordinator: ",
					  coordinator_conn ? PQerrorMessage(coordinator_conn) : "out of memory");
	lease_disconnect();
	return false;
}

/*
 * A new coordinator session: lease writes durable on the coordinator,
 * timestamps in ISO form whatever its DateStyle, search_path = pg_catalog
 * and the limits of lease_session_limits().
 */
static void
lease_setup_remote_session(LeaseCall *call)
{
	LeaseLimit	limits[LEASE_NLIMITS];
	StringInfoData sql;
	int			i;

	lease_session_limits(limits);
	initStringInfo(&sql);
	appendStringInfoString(&sql,
						   "SELECT pg_catalog.set_config('search_path', 'pg_catalog', false),"
						   " pg_catalog.set_config('synchronous_commit', 'on', false),"
						   " pg_catalog.set_config('DateStyle', 'ISO', false)");
	for (i = 0; i < LEASE_NLIMITS; i++)
		appendStringInfo(&sql, ", pg_catalog.set_config('%s', '%d', false)",
						 limits[i].name, limits[i].value);
	lease_remote_exec(sql.data, 0, NULL, call);
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
lease_remote_exec(const char *sql, int nparams, const char *const *params, LeaseCall *call)
{
	int64		deadline = idgen_monotonic_ns() + lease_call_timeout_ms() * IDGEN_NS_PER_MS;
	PGresult   *res;
	PGresult   *last = NULL;

	call->warning[0] = '\0';
	notice_call = call;
	if (!PQsendQueryParams(coordinator_conn, sql, nparams, NULL, params, NULL, NULL, 0))
	{
		lease_set_message(call, "", PQerrorMessage(coordinator_conn));
		lease_disconnect();
		goto done;
	}
	for (;;)
	{
		while (PQisBusy(coordinator_conn))
		{
			if (!lease_wait_socket(WL_SOCKET_READABLE, deadline))
			{
				snprintf(call->message, sizeof(call->message),
						 "coordinator did not answer within %d ms", lease_call_timeout_ms());
				lease_disconnect();
				goto done;
			}
			if (!PQconsumeInput(coordinator_conn))
			{
				lease_set_message(call, "", PQerrorMessage(coordinator_conn));
				lease_disconnect();
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
		lease_set_message(call, "", psprintf("%s%s%s", msg ? msg : PQresultErrorMessage(last),
											detail ? " " : "", detail ? detail : ""));
	}
	else if (call->warning[0] != '\0')
	{
		call->sqlerrcode = ERRCODE_QUERY_CANCELED;
		lease_set_message(call, "synchronous standbys did not confirm the lease update; the coordinator warned: ",
						  call->warning);
	}
	else
	{
		int			i;

		call->ok = true;
		call->nfields = PQntuples(last) > 0 ? Min(PQnfields(last), LEASE_MAX_FIELDS) : 0;
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
lease_call_remote(const char *sql, int nparams, const char *const *params, LeaseCall *call)
{
	int64		now = idgen_monotonic_ns();

	notice_call = NULL;			/* in case an error skipped the last call's end */

	/*
	 * A session idle for nearly as long as the coordinator allows
	 * (idle_session_timeout; renewals leave it idle for only half that) may
	 * be ended there any moment: start a new one rather than fail a call on
	 * it.
	 */
	if (coordinator_conn != NULL &&
		now - coordinator_used_ns > lease_limit("idle_session_timeout") * 3 / 4 * IDGEN_NS_PER_MS)
		lease_disconnect();
	if (coordinator_conn == NULL || PQstatus(coordinator_conn) != CONNECTION_OK)
	{
		lease_disconnect();
		if (!lease_connect(call))
			return;
		coordinator_used_ns = now;
		lease_setup_remote_session(call);
		if (!call->ok)
		{
			lease_disconnect();
			return;
		}
		call->ok = false;
	}
	lease_remote_exec(sql, nparams, params, call);
}

/*
 * After a local call: a statement timeout that fired once the call was
 * over must not cancel whatever the worker does next.
 */
static void
lease_disarm_statement_timeout(void)
{
	if (StatementTimeout <= 0)
		return;
	disable_timeout(STATEMENT_TIMEOUT, false);
	if (get_timeout_indicator(STATEMENT_TIMEOUT, true))
		QueryCancelPending = false;
}

/* One call in this worker's own session, for idgen_bgw_run_in_xact(). */
typedef struct LeaseLocalCall
{
	const char *sql;
	int			nparams;
	const char *const *params;
	LeaseCall  *call;
	MemoryContext callcxt;		/* where the result fields go */
	bool		wrote;			/* whether the call wrote (has an xid) */
} LeaseLocalCall;

static void
lease_local_body(void *arg)
{
	LeaseLocalCall *local = (LeaseLocalCall *) arg;
	LeaseCall  *call = local->call;
	Oid			types[16];
	Datum		values[16];
	int			i;

	for (i = 0; i < local->nparams; i++)
	{
		types[i] = TEXTOID;
		values[i] = CStringGetTextDatum(local->params[i]);
	}

	/*
	 * During process exit nothing can cancel a wait for synchronous
	 * standbys (cancels are ignored then), so the one call made then, the
	 * release, commits without one: it needs no confirmation, as a release
	 * that a standby lacks leaves the lease there longer.
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

		call->nfields = Min(SPI_tuptable->tupdesc->natts, LEASE_MAX_FIELDS);
		for (i = 0; i < call->nfields; i++)
			call->fields[i] = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, i + 1);
		MemoryContextSwitchTo(spicxt);
	}
	local->wrote = TransactionIdIsValid(GetTopTransactionIdIfAny());
}

static void
lease_local_after_commit(void *arg)
{
	LeaseLocalCall *local = (LeaseLocalCall *) arg;

	lease_disarm_statement_timeout();

	/*
	 * The statement timeout may have cancelled the commit's wait for
	 * synchronous standbys, which PostgreSQL turns into a WARNING: a lease
	 * write counts only once they have it (see lease_remote_exec()).
	 */
	if (local->wrote && !proc_exit_inprogress)
		idgen_require_sync_standby_ack(XactLastCommitEnd, "the lease update");
}

/* Run one statement in this worker's own session (local coordinator). */
static void
lease_call_local(const char *sql, int nparams, const char *const *params, LeaseCall *call)
{
	LeaseLocalCall local;
	ErrorData  *edata;

	local.sql = sql;
	local.nparams = nparams;
	local.params = params;
	local.call = call;
	local.callcxt = CurrentMemoryContext;
	local.wrote = false;

	/*
	 * Within the call a cancel cancels it (the call fails and is retried),
	 * whatever the worker does with one between calls: statement_timeout
	 * and lock_timeout, which bound the call and its commit's wait for
	 * synchronous standbys, arrive as a SIGINT to this process.
	 */
	idgen_bgw_allow_cancel(true);
	edata = idgen_bgw_run_in_xact(NULL, lease_local_body, lease_local_after_commit,
								  &local);
	lease_disarm_statement_timeout();
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

static void
lease_call(const char *sql, int nparams, const char *const *params, LeaseCall *call)
{
	memset(call, 0, sizeof(*call));
	if (use_local)
		lease_call_local(sql, nparams, params, call);
	else
		lease_call_remote(sql, nparams, params, call);
}

/* ---------- the lease protocol ---------- */

static TimestampTz
parse_timestamptz(const char *text)
{
	return DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in, CStringGetDatum(text),
												   ObjectIdGetDatum(InvalidOid),
												   Int32GetDatum(-1)));
}

/*
 * Renew: extend the lease and record the new horizon (now + TTL) on the
 * coordinator; publish the new deadline and horizon only after it
 * committed.  Returns true on success.
 */
static bool
lease_renew(LeaseCall *call)
{
	int64		started_ns = idgen_monotonic_ns();
	int64		horizon_ms = idgen_realtime_ns() / IDGEN_NS_PER_MS + (int64) idgen_lease_ttl_s * 1000;
	char	   *params[5];

	params[0] = psprintf("%d", held_worker_id);
	params[1] = psprintf("%lld", (long long) held_generation);
	params[2] = holder_identity;
	params[3] = psprintf("%d", idgen_lease_ttl_s);
	params[4] = psprintf("%lld", (long long) Max(horizon_ms, held_horizon_ms));
	lease_call("SELECT expires_at, in_use FROM idgen.lease_renew($1::int, $2::bigint, $3, $4::int, $5::bigint)",
			   5, (const char *const *) params, call);
	if (!call->ok)
		return false;

	held_horizon_ms = Max(horizon_ms, held_horizon_ms);
	lease_publish_held(held_worker_id, held_generation,
					   call->nfields > 0 && call->fields[0] ? parse_timestamptz(call->fields[0]) : 0,
					   started_ns + ((int64) idgen_lease_ttl_s - lease_margin_s()) * IDGEN_NS_PER_S,
					   held_horizon_ms,
					   call->nfields > 1 && call->fields[1] ? pg_strtoint32(call->fields[1]) : held_in_use,
					   -1);
	return true;
}

static bool
lease_acquire(LeaseCall *call)
{
	IdgenLayout layout;
	char	   *params[12];
	LeaseCall	renew;
	int32		in_use;
	int32		capacity;
	int64		previous_floor_ms;

	snowflake_current_layout(&layout);
	params[0] = holder_identity;
	params[1] = psprintf("%d", MyProcPid);
	params[2] = psprintf("%d", layout.timestamp_bits);
	params[3] = psprintf("%d", layout.worker_bits);
	params[4] = psprintf("%d", layout.sequence_bits);
	params[5] = psprintf("%d", layout.tick_ms);
	params[6] = psprintf("%lld", (long long) layout.epoch_ms);
	params[7] = psprintf("%d", idgen_lease_ttl_s);
	params[8] = psprintf("%d", lease_margin_s());
	params[9] = psprintf("%d", idgen_worker_id);
	params[10] = psprintf("%d", held_worker_id);
	/*
	 * what this data directory can have issued (replayed after a crash; no
	 * permission is published now, so the fenced floor covers every ID)
	 */
	params[11] = psprintf("%lld", (long long) snowflake_fence_floor());

	lease_call("SELECT worker_id, generation, expires_at, previous_floor_ms, in_use, capacity"
			   " FROM idgen.lease_acquire($1, $2::int, $3::int, $4::int, $5::int, $6::int,"
			   " $7::bigint, $8::int, $9::int, $10::int, $11::int, $12::bigint)",
			   12, (const char *const *) params, call);
	if (!call->ok && call->sqlerrcode == ERRCODE_UNDEFINED_FUNCTION)
	{
		/*
		 * The coordinator's idgen catalog is still 1.0: its lease functions
		 * use advisory locks any role can take, and know no local floor.
		 * Lease through them all the same (the first-1.0 way: let go of
		 * the session's advisory locks first) and say how to fix it.
		 */
		ereport(WARNING,
				(errmsg("idgen: the coordinator's idgen extension is version 1.0"),
				 errdetail("Its lease functions let any role that can connect block leasing, and a restarted node waits for its old lease's horizon."),
				 errhint("Run ALTER EXTENSION idgen UPDATE in the coordinator's database (idgen.database when this server is its own coordinator).")));
		lease_call("SELECT pg_advisory_unlock_all()", 0, NULL, call);
		if (!call->ok)
			return false;
		lease_call("SELECT worker_id, generation, expires_at, previous_floor_ms, in_use, capacity"
				   " FROM idgen.lease_acquire($1, $2::int, $3::int, $4::int, $5::int, $6::int,"
				   " $7::bigint, $8::int, $9::int, $10::int, $11::int)",
				   11, (const char *const *) params, call);
	}
	if (!call->ok || call->nfields < 6)
		return false;

	held_worker_id = pg_strtoint32(call->fields[0]);
	held_generation = pg_strtoint64(call->fields[1]);
	previous_floor_ms = pg_strtoint64(call->fields[3]);
	in_use = pg_strtoint32(call->fields[4]);
	capacity = pg_strtoint32(call->fields[5]);
	held_in_use = in_use;		/* renewals no longer count (1.1) */
	held_horizon_ms = 0;
	held_previous_floor_ms = previous_floor_ms;

	if ((int64) in_use * 5 >= (int64) capacity * 4)
		ereport(WARNING,
				(errmsg("idgen: %d of %d worker ids are leased", in_use, capacity),
				 errhint("When all are taken, new nodes cannot issue Snowflake IDs; consider more worker bits.")));
	ereport(LOG,
			(errmsg("idgen lease worker: holding worker id %d (generation %lld, %d of %d ids in use)",
					held_worker_id, (long long) held_generation, in_use, capacity)));

	/*
	 * Raise the Snowflake state above everything the id's previous holders
	 * may have issued; then the first renewal records the horizon on the
	 * coordinator and only after that publishes the permission.  So no ID
	 * ever carries this id before a horizon covering it is durable on the
	 * coordinator.
	 */
	snowflake_raise_for_holding(previous_floor_ms);
	if (!lease_renew(&renew))
	{
		*call = renew;
		return false;
	}
	return true;
}

/*
 * Clean shutdown: withdraw the permission, then give the id back with the
 * time floor actually reached instead of the lease's horizon, so that the
 * next holder (often this node after a restart) need not wait for the
 * horizon.  Calls that read the permission before the withdrawal may still
 * be on their way, one of them perhaps in the middle of raising the floor
 * to the current time: snowflake_fence_floor() waits for such a raise and
 * returns a floor that no ID under the withdrawn permission can exceed.
 */
static void
lease_release_at_exit(int code, Datum arg)
{
	LeaseCall	call;
	char	   *params[4];
	int64		floor_ms;

	if (held_worker_id < 0 || held_generation == 0)
		return;
	if (use_local)
		AbortOutOfAnyTransaction();
	lease_withdraw(LEASE_ACQUIRING, "released at shutdown");
	floor_ms = Max(snowflake_fence_floor(), held_previous_floor_ms);
	floor_ms = Min(floor_ms, Max(held_horizon_ms, held_previous_floor_ms));
	params[0] = psprintf("%d", held_worker_id);
	params[1] = psprintf("%lld", (long long) held_generation);
	params[2] = holder_identity;
	params[3] = psprintf("%lld", (long long) floor_ms);
	lease_call("SELECT idgen.lease_release($1::int, $2::bigint, $3, $4::bigint)",
			   4, (const char *const *) params, &call);
	lease_disconnect();
}

/* Capped exponential backoff with jitter, in milliseconds. */
static long
lease_backoff_ms(int failures)
{
	int64		cap = Max(500, (int64) idgen_lease_ttl_s * 1000 / 6);
	int64		base = 250;
	int64		delay = base << Min(failures, 16);
	double		jitter = 0.5 + (double) (idgen_random_u64() % 1000) / 1000.0;

	delay = Min(delay, cap);
	return (long) Max(50, delay * jitter);
}

void
idgen_lease_worker_main(Datum main_arg)
{
	int			failures = 0;
	int64		next_renew_ns = 0;
	char		host[128];
	MemoryContext loop_cxt;

	/*
	 * pg_cancel_backend() on the worker is logged and otherwise ignored: a
	 * cancel must not cost the node its worker id (PostgreSQL's handler
	 * would end the worker, which gives its lease back), and every
	 * coordinator call has a timeout of its own.
	 */
	idgen_bgw_setup_signals(true);

	use_local = (idgen_coordinator[0] == '\0');
	if (use_local)
	{
		LeaseLimit	limits[LEASE_NLIMITS];
		int			i;

		idgen_bgw_connect("idgen lease worker", idgen_database, InvalidOid);
		/* nothing a user controls may resolve in this superuser session */
		SetConfigOption("search_path", "pg_catalog", PGC_SUSET, PGC_S_OVERRIDE);
		SetConfigOption("synchronous_commit", "on", PGC_SUSET, PGC_S_OVERRIDE);
		lease_session_limits(limits);
		for (i = 0; i < LEASE_NLIMITS; i++)
			if (!limits[i].remote_only)
				SetConfigOption(limits[i].name, psprintf("%d", limits[i].value),
								PGC_SUSET, PGC_S_OVERRIDE);
	}
	else
	{
		/* no database: only to be seen in pg_stat_activity */
		idgen_bgw_connect("idgen lease worker", NULL, InvalidOid);
		lease_parse_coordinator();
	}

	if (gethostname(host, sizeof(host)) != 0)
		strlcpy(host, "unknown", sizeof(host));
	snprintf(holder_identity, sizeof(holder_identity), "%llu/%s:%d",
			 (unsigned long long) GetSystemIdentifier(), host, PostPortNumber);

	before_shmem_exit(lease_release_at_exit, (Datum) 0);
	lease_set_state(LEASE_ACQUIRING, NULL);

	/* what one round allocates (call parameters and results) is freed after it */
	loop_cxt = AllocSetContextCreate(TopMemoryContext, "idgen lease worker",
									 ALLOCSET_DEFAULT_SIZES);

	for (;;)
	{
		LeaseCall	call;
		LeaseSnapshot snap;
		long		sleep_ms;
		int64		now = idgen_monotonic_ns();

		MemoryContextReset(loop_cxt);
		MemoryContextSwitchTo(loop_cxt);
		if (idgen_bgw_cancel_requested())
			ereport(LOG,
					(errmsg("idgen lease worker: ignoring a cancel request; the worker keeps its lease"),
					 errhint("To make the worker give its lease back, terminate it (pg_terminate_backend) or stop the server.")));

		lease_snapshot(&snap);
		if (snap.state == LEASE_HELD || snap.state == LEASE_FAIL_STATIC ||
			snap.state == LEASE_EXPIRED)
		{
			if (snap.state != LEASE_EXPIRED && snap.deadline_in_ms <= 0)
			{
				ereport(WARNING,
						(errmsg("idgen: worker id lease %d expired on this node; Snowflake IDs are refused until it is renewed",
								held_worker_id)));
				lease_withdraw(LEASE_EXPIRED, NULL);
				snap.state = LEASE_EXPIRED;
			}
			if (now >= next_renew_ns || snap.state != LEASE_HELD)
			{
				if (lease_renew(&call))
				{
					if (snap.state != LEASE_HELD)
						ereport(LOG, (errmsg("idgen lease worker: lease of worker id %d renewed", held_worker_id)));
					failures = 0;
					next_renew_ns = idgen_monotonic_ns() + (int64) idgen_lease_ttl_s * IDGEN_NS_PER_S / 3;
				}
				else if (call.sqlerrcode == ERRCODE_IDGEN_LEASE_CONFLICT)
				{
					ereport(WARNING,
							(errmsg("idgen: lost the lease of worker id %d: %s", held_worker_id, call.message)));
					lease_withdraw(idgen_worker_id >= 0 ? LEASE_CONFLICT : LEASE_ACQUIRING, call.message);
					held_generation = 0;
					failures++;
				}
				else
				{
					if (snap.state == LEASE_HELD)
						ereport(WARNING,
								(errmsg("idgen: could not renew the worker id lease; issuing fail-static for at most %lld ms: %s",
										(long long) snap.deadline_in_ms, call.message)));
					if (snap.state != LEASE_EXPIRED)
						lease_set_state(LEASE_FAIL_STATIC, call.message);
					else
						lease_set_state(LEASE_EXPIRED, call.message);
					failures++;
				}
			}
		}
		else
		{
			if (lease_acquire(&call))
			{
				failures = 0;
				next_renew_ns = idgen_monotonic_ns() + (int64) idgen_lease_ttl_s * IDGEN_NS_PER_S / 3;
			}
			else
			{
				LeaseState	st = LEASE_ACQUIRING;

				if (call.sqlerrcode == ERRCODE_IDGEN_LEASE_CONFLICT ||
					call.sqlerrcode == ERRCODE_IDGEN_LAYOUT_CHANGED)
					st = LEASE_CONFLICT;
				if (held_generation != 0)
					lease_withdraw(st, call.message);
				else
					lease_set_state(st, call.message);
				held_generation = 0;
				if (failures == 0 || st != snap.state)
					ereport(st == LEASE_CONFLICT ? WARNING : LOG,
							(errmsg("idgen lease worker: could not acquire a worker id lease: %s",
									call.message)));
				failures++;
			}
		}

		lease_snapshot(&snap);
		if (failures > 0)
			sleep_ms = lease_backoff_ms(failures);
		else
			sleep_ms = (long) Max(10, (next_renew_ns - idgen_monotonic_ns()) / IDGEN_NS_PER_MS);
		if ((snap.state == LEASE_FAIL_STATIC || snap.state == LEASE_HELD) &&
			snap.deadline_in_ms >= 0)
			sleep_ms = Min(sleep_ms, (long) snap.deadline_in_ms + 1);

		idgen_bgw_nap(sleep_ms);
	}
}
