/*-------------------------------------------------------------------------
 *
 * probe.c
 *	  The scan of one uniqueness probe: idgen._probe_scan(), called by
 *	  idgen.probe_run() for each registered probe.
 *
 * The probe worker, and whoever calls probe_run(), is a superuser, while
 * the probed table, its column's type, its policies and everything they call
 * belong to the table's owner.  So the scan runs as autovacuum and REFRESH
 * MATERIALIZED VIEW run user-controlled code: as the table's owner, inside
 * a security-restricted operation (no SET ROLE, no temporary objects, no
 * leaking of state into the calling session), with search_path pinned to
 * pg_catalog, pg_temp in a GUC nest level of its own.  Before switching,
 * and on every run (the probes table is only a record of what was
 * registered), the relation is checked again: an ordinary or partitioned
 * table, still owned by the role it was registered under, whose column is
 * still of the type the probe's kind reads (bigint, or uuid for UUIDv7).
 * Anything else is refused with an error that probe_run() records as the
 * probe's result.
 * The scan is bounded by idgen.probe_timeout, so that no owner's code can
 * stall the other probes or keep the caller's transaction open.
 *
 * The queries are fixed here, not passed in: a caller can choose only which
 * table, column and bound to count, and must itself be allowed to read the
 * column.
 *
 * Also here: idgen.probe_register() and probe_unregister(), which act for
 * the role that calls them (see idgen_probe_as_caller).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "parser/parse_func.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"

#include "guc.h"

/* Duplicate values a run reports per probe (each in a WARNING). */
#define PROBE_MAX_REPORTED	10

PG_FUNCTION_INFO_V1(idgen_probe_scan);
PG_FUNCTION_INFO_V1(idgen_probe_as_caller);

/* Run a fixed query with the bound and ranges; fail unless it is a SELECT. */
static void
probe_query(const char *sql, Datum *values, const char *nulls)
{
	Oid			types[2] = {TEXTOID, get_array_type(INT8RANGEOID)};

	if (SPI_execute_with_args(sql, 2, types, values, nulls, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "idgen: uniqueness probe query failed: %s", sql);
}

static int64
probe_int8(int row, int col, bool *isnull)
{
	Datum		d = SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, isnull);

	return *isnull ? 0 : DatumGetInt64(d);
}

/*
 * Disarm the scan's bound (deadline 0: none was armed), putting back a
 * caller's statement timeout that ends later.
 */
static void
probe_restore_timeout(TimestampTz deadline, bool outer_active, TimestampTz outer_finish)
{
	if (deadline == 0)
		return;
	if (outer_active)
		enable_timeout_at(STATEMENT_TIMEOUT, outer_finish);
	else
		disable_timeout(STATEMENT_TIMEOUT, false);
}

/*
 * idgen._probe_scan(tbl regclass, col name, kind text, owner regrole,
 *					 lower_bound text, ranges int8range[])
 * RETURNS (ids_checked bigint, duplicates bigint, max_value bigint,
 *			dup_values text[], dup_counts bigint[])
 *
 * Counts the distinct values of tbl.col at or above lower_bound (segment
 * probes: also inside the given ranges), the values that occur more than
 * once (the first PROBE_MAX_REPORTED of them are returned with their
 * counts) and, for segment probes, the largest value at or above the bound.
 */
Datum
idgen_probe_scan(PG_FUNCTION_ARGS)
{
	Oid			relid;
	char	   *colname;
	char	   *kind;
	Oid			registered_owner;
	Oid			want_type;
	Relation	rel;
	Oid			relowner;
	AttrNumber	attnum;
	Oid			atttype;
	char	   *qualname;
	const char *qcol;
	char	   *scan;
	Datum		args[2];
	char		nulls[2] = {' ', ' '};
	Oid			save_userid;
	int			save_sec_context;
	int			save_nestlevel;
	int64		ids_checked;
	int64		duplicates;
	volatile int64 max_value = 0;
	bool		max_isnull = true;
	volatile int ndup = 0;
	Datum		dup_values[PROBE_MAX_REPORTED];
	Datum		dup_counts[PROBE_MAX_REPORTED];
	TupleDesc	tupdesc;
	Datum		result[5];
	bool		result_nulls[5] = {false, false, false, false, false};
	MemoryContext callcxt = CurrentMemoryContext;
	bool		isnull;
	bool		outer_active;
	TimestampTz outer_finish;
	volatile TimestampTz deadline = 0;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(4))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("table, column, kind and lower bound of a probe must not be null")));
	relid = PG_GETARG_OID(0);
	colname = NameStr(*PG_GETARG_NAME(1));
	kind = text_to_cstring(PG_GETARG_TEXT_PP(2));
	registered_owner = PG_ARGISNULL(3) ? InvalidOid : PG_GETARG_OID(3);
	args[0] = PG_GETARG_DATUM(4);
	if (PG_ARGISNULL(5))
	{
		args[1] = (Datum) 0;
		nulls[1] = 'n';
	}
	else
		args[1] = PG_GETARG_DATUM(5);

	if (strcmp(kind, "uuidv7") == 0)
		want_type = UUIDOID;
	else if (strcmp(kind, "snowflake") == 0 || strcmp(kind, "segment") == 0)
		want_type = INT8OID;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown probe kind \"%s\"", kind)));

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	/*
	 * Lock first (lock_timeout bounds the wait), then check what we locked:
	 * the checks hold until the scan is done.
	 */
	rel = try_relation_open(relid, AccessShareLock);
	if (rel == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	if (rel->rd_rel->relkind != RELKIND_RELATION &&
		rel->rd_rel->relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a table", RelationGetRelationName(rel)),
				 errdetail("The uniqueness probe checks ordinary and partitioned tables only.")));
	relowner = rel->rd_rel->relowner;
	if (relowner != registered_owner)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("the owner of table \"%s\" is not the role the probe was registered under",
						RelationGetRelationName(rel)),
				 errdetail("The probe runs with the privileges of the table's owner, who must be the owner at registration."),
				 errhint("Have the table's owner register the probe again with idgen.probe_register().")));
	attnum = get_attnum(relid, colname);
	if (attnum <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of relation \"%s\" does not exist",
						colname, RelationGetRelationName(rel))));
	atttype = get_atttype(relid, attnum);
	if (atttype != want_type)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("column \"%s\" of relation \"%s\" has type %s, not %s",
						colname, RelationGetRelationName(rel),
						format_type_be_qualified(atttype), format_type_be(want_type)),
				 errdetail("A %s probe reads %s columns only.", kind, format_type_be(want_type)),
				 errhint("Register the probe again once the column has the right type.")));

	/* the caller itself must be allowed to read what it asks about */
	if (pg_attribute_aclcheck(relid, attnum, GetUserId(), ACL_SELECT) != ACLCHECK_OK &&
		pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
		aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_TABLE, RelationGetRelationName(rel));

	qualname = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
										  RelationGetRelationName(rel));
	qcol = quote_identifier(colname);
	table_close(rel, NoLock);

	/*
	 * Every row whose value is at or above the bound is read through the
	 * index: a new ID repeating an old one has the old one's value, so both
	 * are in range.  Segment probes also read the ranges granted within the
	 * window; a row read through two overlapping ranges counts once (by
	 * partition and ctid: each partition numbers its rows from (0,1)). Plain
	 * SELECTs only: no lock stronger than writers' own.
	 */
	if (strcmp(kind, "segment") == 0)
		scan = psprintf("SELECT DISTINCT t.rel, t.tid, t.v FROM"
						" (SELECT pg_catalog.unnest($2) AS r"
						"  UNION ALL SELECT pg_catalog.int8range($1::pg_catalog.int8, NULL)) b,"
						" LATERAL (SELECT tableoid AS rel, ctid AS tid, %s AS v FROM %s"
						"          WHERE %s >= pg_catalog.lower(b.r)"
						"            AND (pg_catalog.upper_inf(b.r) OR %s < pg_catalog.upper(b.r))) t",
						qcol, qualname, qcol, qcol);
	else
		scan = psprintf("SELECT ctid AS tid, %s AS v FROM %s WHERE %s >= $1::pg_catalog.%s",
						qcol, qualname, qcol,
						want_type == UUIDOID ? "uuid" : "int8");

	/*
	 * Become the table's owner, as autovacuum and REFRESH MATERIALIZED VIEW
	 * do.
	 */
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(relowner, save_sec_context | SECURITY_RESTRICTED_OPERATION);
	save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);

	/*
	 * The table's owner decides what the scan runs (policies, functions of
	 * its column's type), so the scan is bounded by idgen.probe_timeout: the
	 * statement timeout, armed here since SPI does not arm it.  A caller's
	 * own statement timeout that ends sooner is left alone, and a later one
	 * is put back afterwards.
	 */
	outer_active = get_timeout_active(STATEMENT_TIMEOUT);
	outer_finish = outer_active ? get_timeout_finish_time(STATEMENT_TIMEOUT) : 0;
	if (idgen_probe_timeout_ms > 0)
	{
		deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), idgen_probe_timeout_ms);
		if (outer_active && outer_finish <= deadline)
			deadline = 0;
		else
			enable_timeout_at(STATEMENT_TIMEOUT, deadline);
	}

	PG_TRY();
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");

		probe_query(psprintf("SELECT pg_catalog.count(*), pg_catalog.count(*) FILTER (WHERE n > 1) FROM"
							 " (SELECT v, pg_catalog.count(*) AS n FROM (%s) s GROUP BY v) g", scan),
					args, nulls);
		ids_checked = probe_int8(0, 1, &isnull);
		duplicates = probe_int8(0, 2, &isnull);

		if (duplicates > 0)
		{
			probe_query(psprintf("SELECT v::pg_catalog.text, pg_catalog.count(*) FROM (%s) s"
								 " GROUP BY v HAVING pg_catalog.count(*) > 1 ORDER BY v LIMIT %d",
								 scan, PROBE_MAX_REPORTED),
						args, nulls);
			for (ndup = 0; ndup < (int) SPI_processed && ndup < PROBE_MAX_REPORTED; ndup++)
			{
				char	   *v = SPI_getvalue(SPI_tuptable->vals[ndup], SPI_tuptable->tupdesc, 1);
				MemoryContext oldcxt = MemoryContextSwitchTo(callcxt);

				dup_values[ndup] = CStringGetTextDatum(v);
				MemoryContextSwitchTo(oldcxt);
				dup_counts[ndup] = Int64GetDatum(probe_int8(ndup, 2, &isnull));
			}
		}

		if (strcmp(kind, "segment") == 0)
		{
			probe_query(psprintf("SELECT pg_catalog.max(%s) FROM %s WHERE %s >= $1::pg_catalog.int8",
								 qcol, qualname, qcol),
						args, nulls);
			max_value = probe_int8(0, 1, &max_isnull);
		}

		SPI_finish();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		probe_restore_timeout(deadline, outer_active, outer_finish);
		MemoryContextSwitchTo(callcxt);
		edata = CopyErrorData();
		if (deadline == 0 || edata->sqlerrcode != ERRCODE_QUERY_CANCELED ||
			GetCurrentTimestamp() < deadline)
			PG_RE_THROW();

		/*
		 * Our bound ran out: say so with an error that probe_run() records
		 * (it does not catch query_canceled, which a user's cancel raises).
		 * Aborting the (sub)transaction restores the user and GUCs.
		 */
		FlushErrorState();
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("uniqueness probe of %s.%s canceled: its scan exceeded idgen.probe_timeout (%d ms)",
						qualname, qcol, idgen_probe_timeout_ms),
				 errdetail("The scan runs the table owner's row-level security policies and the functions of its column's type."),
				 errhint("Find what makes the scan slow, or raise idgen.probe_timeout.")));
	}
	PG_END_TRY();
	probe_restore_timeout(deadline, outer_active, outer_finish);

	AtEOXact_GUC(false, save_nestlevel);
	SetUserIdAndSecContext(save_userid, save_sec_context);

	result[0] = Int64GetDatum(ids_checked);
	result[1] = Int64GetDatum(duplicates);
	result[2] = Int64GetDatum(max_value);
	result_nulls[2] = max_isnull;
	result[3] = PointerGetDatum(construct_array(dup_values, ndup, TEXTOID, -1, false, TYPALIGN_INT));
	result[4] = PointerGetDatum(construct_array(dup_counts, ndup, INT8OID, 8,
												FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc),
													  result, result_nulls)));
}

/*
 * idgen.probe_register(tbl, col, window) and idgen.probe_unregister(tbl, col)
 *
 * Each calls its internal SECURITY DEFINER twin (_probe_register,
 * _probe_unregister: same arguments after a leading regrole) with the role
 * that called it, which checks that this role owns the table.  That role is
 * GetUserId() here, in a function that is not itself SECURITY DEFINER,
 * wherever the call comes from; inside a SECURITY DEFINER function the
 * caller is gone, and the session's user or SET ROLE is not it when the
 * call comes from a table owner's code that a superuser's session runs (a
 * row-level security policy in a probe scan, an index expression under
 * autovacuum, another role's SECURITY DEFINER function).  The twins are
 * granted to no one: fmgr calls them without an EXECUTE check.
 */
Datum
idgen_probe_as_caller(PG_FUNCTION_ARGS)
{
	Oid			self = fcinfo->flinfo->fn_oid;
	Oid		   *selftypes;
	int			nargs;
	Oid			argtypes[FUNC_MAX_ARGS];
	Oid			twin;
	FmgrInfo	flinfo;

	LOCAL_FCINFO(inner, FUNC_MAX_ARGS);
	Datum		result;

	(void) get_func_signature(self, &selftypes, &nargs);
	if (nargs != PG_NARGS() || nargs + 1 > FUNC_MAX_ARGS)
		elog(ERROR, "unexpected call of %s", get_func_name(self));
	argtypes[0] = REGROLEOID;
	memcpy(argtypes + 1, selftypes, nargs * sizeof(Oid));
	/* cppcheck-suppress unknownEvaluationOrder ; either order: same list */
	twin = LookupFuncName(list_make2(makeString(get_namespace_name(get_func_namespace(self))),
									 makeString(psprintf("_%s", get_func_name(self)))),
						  nargs + 1, argtypes, false);

	fmgr_info(twin, &flinfo);
	InitFunctionCallInfoData(*inner, &flinfo, nargs + 1, PG_GET_COLLATION(), NULL, NULL);
	inner->args[0].value = ObjectIdGetDatum(GetUserId());
	inner->args[0].isnull = false;
	for (int i = 0; i < nargs; i++)
		inner->args[i + 1] = fcinfo->args[i];
	result = FunctionCallInvoke(inner);
	fcinfo->isnull = inner->isnull;
	return result;
}
