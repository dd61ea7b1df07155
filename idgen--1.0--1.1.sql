/* idgen--1.0--1.1.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION idgen UPDATE TO '1.1'" to load this file. \quit

-- Each change to the SQL surface since 1.0, in the same order as in
-- idgen--1.1.sql (the full script a fresh install runs).  After
-- ALTER EXTENSION idgen UPDATE the catalog equals a fresh install of 1.1.

-- ---------------------------------------------------------------------------
-- Probes run as the probed table's owner (issue 9, items 1, 4, 17, 18)
--
-- Each probe's scan moves into C (_probe_scan), which re-checks the table
-- (relkind, owner at registration, column type) and runs as the table's
-- owner in a security-restricted operation.  probe_register and
-- probe_unregister become SECURITY DEFINER with an ownership check, so
-- nobody needs DML on idgen.probes: whatever DML the 1.0 README told DBAs
-- to grant on it is revoked here.  The window is bounded (at most 10 years;
-- a NULL window is 22004).  _probe_lower_bound has an exception block, so
-- it is PARALLEL UNSAFE.  The audits become SECURITY DEFINER (EXECUTE is
-- enough to delegate them).
-- ---------------------------------------------------------------------------

ALTER TABLE probes ADD COLUMN owner regrole,
                   ADD COLUMN last_error text,
                   ADD COLUMN last_error_at timestamptz;
-- Probes whose table is gone keep a NULL owner: runs remove them.
UPDATE probes p SET owner = c.relowner FROM pg_catalog.pg_class c WHERE c.oid = p.tbl;
UPDATE probes SET "window" = interval '10 years' WHERE "window" > interval '10 years';
ALTER TABLE probes DROP CONSTRAINT probes_window_check,
    ADD CONSTRAINT probes_window_check
    CHECK ("window" > interval '0' AND "window" <= interval '10 years');

DO $idgen_revoke_probes$
DECLARE
    g oid;
BEGIN
    FOR g IN SELECT DISTINCT a.grantee
               FROM pg_catalog.pg_class c, pg_catalog.aclexplode(c.relacl) a
              WHERE c.oid = '@extschema@.probes'::pg_catalog.regclass
                AND a.grantee <> c.relowner
                AND a.privilege_type IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE')
    LOOP
        EXECUTE pg_catalog.format('REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON @extschema@.probes FROM %s',
                                  CASE WHEN g = 0 THEN 'PUBLIC'
                                       ELSE pg_catalog.quote_ident(g::pg_catalog.regrole::pg_catalog.text) END);
    END LOOP;
END
$idgen_revoke_probes$;

CREATE OR REPLACE FUNCTION probe_register(tbl regclass, col name, "window" interval DEFAULT '1 hour')
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    caller   name := CASE WHEN current_setting('role') = 'none' THEN session_user
                          ELSE current_setting('role')::name END;
    rel      pg_class;
    typ      regtype;
    dflt     text;
    k        text;
    seg      text;
    has_idx  boolean;
BEGIN
    IF tbl IS NULL OR col IS NULL THEN
        RAISE EXCEPTION 'table and column must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF "window" IS NULL THEN
        RAISE EXCEPTION 'probe window must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF "window" <= interval '0' THEN
        RAISE EXCEPTION 'probe window must be a positive interval' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- now() - window must stay a valid timestamptz on every run
    IF "window" > interval '10 years' THEN
        RAISE EXCEPTION 'probe window must be at most 10 years'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'Each run checks the IDs issued within the window, which must lie within the last 10 years.',
                  HINT = 'The window should be longer than idgen.probe_interval; 1 hour is a good start.';
    END IF;
    -- Runs read the table as its owner: only plain tables (no view code),
    -- registered by their owners.
    SELECT * INTO rel FROM pg_class c WHERE c.oid = tbl;
    IF NOT FOUND OR rel.relkind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION '% is not a table', tbl
            USING ERRCODE = 'wrong_object_type',
                  DETAIL = 'The uniqueness probe checks ordinary and partitioned tables.';
    END IF;
    IF NOT pg_has_role(caller, rel.relowner, 'USAGE') THEN
        RAISE EXCEPTION 'must be owner of table %', tbl USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT a.atttypid::regtype, pg_get_expr(d.adbin, d.adrelid)
      INTO typ, dflt
      FROM pg_attribute a
      LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
     WHERE a.attrelid = tbl AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'column "%" of relation % does not exist', col, tbl USING ERRCODE = 'undefined_column';
    END IF;
    IF typ = 'uuid'::regtype THEN
        k := 'uuidv7';
    ELSIF typ = 'bigint'::regtype THEN
        IF dflt LIKE '%segment_next%' THEN
            k := 'segment';
            seg := replace(substring(dflt FROM $re$segment_next\('((?:[^']|'')+)'$re$), '''''', '''');
            IF seg IS NULL THEN
                RAISE WARNING 'could not tell which segment tag column "%" of % uses', col, tbl
                    USING DETAIL = 'The probe checks only numbers above the high-water mark of its last run, not ranges granted again below it.';
            END IF;
        ELSE
            k := 'snowflake';
            IF dflt IS NULL OR dflt NOT LIKE '%snowflake_next%' THEN
                RAISE WARNING 'column "%" of % has no idgen.snowflake_next() default; the probe treats its values as Snowflake IDs', col, tbl
                    USING DETAIL = 'Each run checks the values at or above idgen.snowflake_min(now() - window); values that are not Snowflake IDs of this layout may fall outside that bound and go unchecked.',
                          HINT = 'For segment numbers, give the column DEFAULT idgen.segment_next(tag) before registering.';
            END IF;
        END IF;
    ELSE
        RAISE EXCEPTION 'cannot probe column "%" of type %', col, typ
            USING ERRCODE = 'datatype_mismatch',
                  DETAIL = 'The uniqueness probe checks bigint (Snowflake or segment) and uuid (UUIDv7) columns.';
    END IF;
    SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                     JOIN pg_am am ON am.oid = c.relam
                    WHERE i.indrelid = tbl AND am.amname = 'btree' AND i.indpred IS NULL
                      AND i.indkey[0] = (SELECT attnum FROM pg_attribute
                                          WHERE attrelid = tbl AND attname = col))
      INTO has_idx;
    IF NOT has_idx THEN
        RAISE WARNING 'no B-tree index leads with column "%" of %', col, tbl
            USING DETAIL = 'The probe still finds every duplicate, but each run reads the whole table instead of only the window.',
                  HINT = format('CREATE INDEX ON %s (%I);', tbl, col);
    END IF;
    INSERT INTO idgen.probes (tbl, col, "window", kind, indexed, segment_tag, owner)
    VALUES (tbl, col, "window", k, has_idx, seg, rel.relowner)
    ON CONFLICT ON CONSTRAINT probes_pkey DO UPDATE
       SET "window" = EXCLUDED."window", kind = EXCLUDED.kind, indexed = EXCLUDED.indexed,
           segment_tag = EXCLUDED.segment_tag, owner = EXCLUDED.owner,
           last_error = NULL, last_error_at = NULL;
END;
$$;

COMMENT ON FUNCTION probe_register(regclass, name, interval) IS
'Register a uniqueness probe on a bigint (Snowflake/segment) or uuid (UUIDv7) column of a table the caller owns';

CREATE OR REPLACE FUNCTION probe_unregister(tbl regclass, col name)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    caller name := CASE WHEN current_setting('role') = 'none' THEN session_user
                        ELSE current_setting('role')::name END;
BEGIN
    -- a probe whose table is gone: superusers only (the run removes it anyway)
    IF NOT coalesce(pg_has_role(caller, (SELECT c.relowner FROM pg_class c WHERE c.oid = tbl), 'USAGE'),
                    (SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = caller)) THEN
        RAISE EXCEPTION 'must be owner of table %', tbl USING ERRCODE = 'insufficient_privilege';
    END IF;
    DELETE FROM idgen.probes p WHERE p.tbl = probe_unregister.tbl AND p.col = probe_unregister.col;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no probe is registered on column "%" of %', col, tbl
            USING ERRCODE = 'undefined_object';
    END IF;
END;
$$;

COMMENT ON FUNCTION probe_unregister(regclass, name) IS 'Remove a uniqueness probe on a table the caller owns';

ALTER FUNCTION _probe_lower_bound(probes) PARALLEL UNSAFE;

-- One probe's scan (src/probe.c): re-checks the table, then counts as the
-- table's owner inside a security-restricted operation.
CREATE FUNCTION _probe_scan(tbl regclass, col name, kind text, owner regrole,
                            lower_bound text, ranges int8range[],
                            OUT ids_checked bigint, OUT duplicates bigint,
                            OUT max_value bigint, OUT dup_values text[],
                            OUT dup_counts bigint[])
RETURNS record
AS 'MODULE_PATHNAME', 'idgen_probe_scan'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION _probe_scan(regclass, name, text, regrole, text, int8range[]) IS
'Internal: one probe''s scan, as the table''s owner in a security-restricted operation';

CREATE OR REPLACE FUNCTION probe_run()
RETURNS TABLE(tbl regclass, col name, ids_checked bigint, duplicates bigint,
              kind text, lower_bound text, duration_ms float8)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p        idgen.probes;
    started  timestamptz;
    r        record;
    ranges   int8range[];
BEGIN
    FOR p IN SELECT * FROM idgen.probes ORDER BY probes.tbl::oid, probes.col LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = p.tbl) THEN
            DELETE FROM idgen.probes q WHERE q.tbl = p.tbl AND q.col = p.col;
            RAISE WARNING 'idgen probe: the table with OID % no longer exists; its probe on column "%" is removed',
                p.tbl::oid, p.col;
            CONTINUE;
        END IF;
        BEGIN
            started := clock_timestamp();
            tbl := p.tbl;
            col := p.col;
            kind := p.kind;
            lower_bound := idgen._probe_lower_bound(p);
            -- Segment numbers carry no time: the probe reads what lies at or
            -- above its last high-water mark and every range the outbox
            -- shows granted within the window (a range granted again after a
            -- failover or restore is recent).
            IF p.kind = 'segment' THEN
                ranges := ARRAY(SELECT int8range(e.range_start, e.range_end)
                                  FROM idgen.segment_events e
                                 WHERE e.tag = p.segment_tag AND e.kind = 'grant'
                                   AND e.at >= now() - p."window");
            ELSE
                ranges := NULL;
            END IF;
            SELECT * INTO r
              FROM idgen._probe_scan(p.tbl, p.col, p.kind, p.owner, lower_bound, ranges);
            ids_checked := r.ids_checked;
            duplicates := r.duplicates;
            FOR i IN 1 .. coalesce(array_length(r.dup_values, 1), 0) LOOP
                RAISE WARNING 'idgen probe: duplicate ID % appears % times in %.%',
                    r.dup_values[i], r.dup_counts[i], p.tbl, p.col
                    USING HINT = 'Find the rows with this ID and how they were generated; see idgen.audit_leases() and idgen.audit_segments().';
            END LOOP;
            duration_ms := extract(epoch FROM clock_timestamp() - started) * 1000;
            UPDATE idgen.probes q
               SET last_run_at = now(), last_ids_checked = probe_run.ids_checked,
                   last_duplicates = probe_run.duplicates, last_duration_ms = probe_run.duration_ms,
                   runs = q.runs + 1, duplicates_found = q.duplicates_found + probe_run.duplicates,
                   high_water = CASE WHEN q.kind = 'segment' THEN coalesce(r.max_value, q.high_water) ELSE q.high_water END,
                   last_error = NULL, last_error_at = NULL
             WHERE q.tbl = p.tbl AND q.col = p.col;
            RETURN NEXT;
        EXCEPTION WHEN OTHERS THEN
            -- one broken probe (a dropped column, a lock timeout, a table
            -- that changed) must not stop the others
            RAISE WARNING 'idgen probe on %.% failed: %', p.tbl, p.col, SQLERRM;
            UPDATE idgen.probes q SET last_error = SQLERRM, last_error_at = now()
             WHERE q.tbl = p.tbl AND q.col = p.col;
        END;
    END LOOP;
END;
$$;

COMMENT ON FUNCTION probe_run() IS
'Run every registered uniqueness probe now, each as its table''s owner; duplicates are logged at WARNING and counted';

CREATE OR REPLACE VIEW probe_status AS
SELECT p.tbl, p.col, p.kind, p."window", p.indexed, p.last_run_at,
       p.last_ids_checked AS ids_checked, p.last_duplicates AS duplicates,
       p.last_duration_ms AS duration_ms, p.runs, p.duplicates_found, p.high_water,
       p.owner, p.last_error AS error, p.last_error_at AS error_at
FROM probes p;

COMMENT ON VIEW probe_status IS
'Uniqueness probes: the last run of each, the duplicates found so far and why the last run failed';

ALTER FUNCTION audit_leases() SECURITY DEFINER;
ALTER FUNCTION audit_segments() SECURITY DEFINER;

REVOKE EXECUTE ON FUNCTION _probe_scan(regclass, name, text, regrole, text, int8range[]) FROM PUBLIC;


-- Segments (issue 9, items 7 and 8): the fence up to which a primary may
-- grant once its standbys have it, and segment_create() forgetting buffers
-- left by a row deleted by hand.  Rows granted before the update keep a NULL
-- fence until their next grant.
ALTER TABLE segment_alloc
    ADD COLUMN fence bigint,
    ADD CONSTRAINT segment_alloc_fence_check CHECK (fence >= next_value);

CREATE OR REPLACE FUNCTION segment_create(tag text, start bigint DEFAULT 1, step integer DEFAULT 1000)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF tag IS NULL THEN
        RAISE EXCEPTION 'segment tag must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF tag = '' THEN
        RAISE EXCEPTION 'segment tag must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF octet_length(tag) > 63 THEN
        RAISE EXCEPTION 'segment tag is too long'
            USING ERRCODE = 'name_too_long',
                  DETAIL = format('A tag has at most 63 bytes; this one has %s.', octet_length(tag));
    END IF;
    IF step IS NULL OR step <= 0 THEN
        RAISE EXCEPTION 'segment step must be positive'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('The step given was %s.', coalesce(step::text, 'NULL')),
                  HINT = 'The step is how many numbers one grant reserves; 1000 is a good start.';
    END IF;
    IF start IS NULL OR start < 0 OR start > 9223372036854775807 - step THEN
        RAISE EXCEPTION 'segment start % is out of range', coalesce(start::text, 'NULL')
            USING ERRCODE = 'numeric_value_out_of_range',
                  DETAIL = 'The start must be at least 0 and leave room for one step below the largest bigint.';
    END IF;
    BEGIN
        INSERT INTO idgen.segment_alloc (tag, start_value, next_value, step, current_step, last_timeline, fence)
        VALUES (tag, start, start, step, step, idgen._current_timeline(), start);
    EXCEPTION WHEN unique_violation THEN
        RAISE EXCEPTION 'segment tag "%" already exists', tag
            USING ERRCODE = 'duplicate_object',
                  HINT = 'Use the existing tag, or drop it first with idgen.segment_drop().';
    END;
    -- Buffers left by a row deleted by hand must not serve the new tag.
    PERFORM idgen._segment_forget(tag);
    INSERT INTO idgen.segment_events (tag, kind, range_start, range_end, node, timeline)
    VALUES (tag, 'create', start, start, 'sql', idgen._current_timeline());
END;
$$;


-- issue 12: text forms of UUIDs, TypeID (spec 0.3.0) and ULID.
CREATE FUNCTION typeid(prefix text)
RETURNS text
AS 'MODULE_PATHNAME', 'idgen_typeid'
LANGUAGE C VOLATILE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION typeid(text) IS
'New TypeID (spec 0.3.0) with the given prefix on idgen.uuidv7(), e.g. user_01h455vb4pex5vsknk084sn02q';

GRANT EXECUTE ON FUNCTION typeid(text) TO PUBLIC;

CREATE FUNCTION typeid_encode(prefix text, id uuid)
RETURNS text
AS 'MODULE_PATHNAME', 'idgen_typeid_encode'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION typeid_encode(text, uuid) IS
'TypeID text of any UUID with the given prefix';

GRANT EXECUTE ON FUNCTION typeid_encode(text, uuid) TO PUBLIC;

CREATE FUNCTION typeid_decode(typeid text, OUT prefix text, OUT id uuid)
RETURNS record
AS 'MODULE_PATHNAME', 'idgen_typeid_decode'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION typeid_decode(text) IS
'Prefix and UUID of a TypeID; 22P02 naming the rule broken for anything the spec calls invalid';

GRANT EXECUTE ON FUNCTION typeid_decode(text) TO PUBLIC;

CREATE FUNCTION ulid_encode(id uuid)
RETURNS text
AS 'MODULE_PATHNAME', 'idgen_ulid_encode'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION ulid_encode(uuid) IS
'ULID text of a UUID (26 characters, uppercase Crockford base32); sorts like the UUID';

GRANT EXECUTE ON FUNCTION ulid_encode(uuid) TO PUBLIC;

CREATE FUNCTION ulid_decode(ulid text)
RETURNS uuid
AS 'MODULE_PATHNAME', 'idgen_ulid_decode'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION ulid_decode(text) IS
'UUID of a ULID written in either case; 22P02 for other characters or values above 128 bits';

GRANT EXECUTE ON FUNCTION ulid_decode(text) TO PUBLIC;

-- issue 12: converting existing sequence-fed columns to Snowflake IDs or
-- segment numbers.
-- Checks, lock and floor shared by both conversions: the sequence feeding
-- tbl.col (an owned one: serial or identity; or the one named by a plain
-- DEFAULT nextval(...)), how it feeds it, and the largest value the column
-- holds or the sequence has handed out (NULL for an empty table and an
-- unused sequence).  Takes ACCESS EXCLUSIVE on tbl before reading anything
-- that the conversion depends on.  generator names the new values in
-- messages ('Snowflake IDs').
CREATE FUNCTION _convert_prepare(tbl regclass, col name, generator text,
                                 OUT seq regclass, OUT identity "char",
                                 OUT floor_value bigint)
RETURNS record
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rel       pg_class;
    att       pg_attribute;
    def       text;
    old_lt    text;
    old_rs    text;
    col_max   bigint;
    seq_last  bigint;
BEGIN
    SELECT * INTO rel FROM pg_class c WHERE c.oid = tbl;
    IF rel.relkind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION '"%" is not a table', tbl
            USING ERRCODE = 'wrong_object_type',
                  HINT = 'Only the column of a table (or a partitioned table) can be converted.';
    END IF;
    IF NOT pg_has_role(rel.relowner, 'USAGE') THEN
        RAISE EXCEPTION 'must be owner of table %', tbl
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = format('The table is owned by %I; converting its column changes its definition.',
                                  pg_get_userbyid(rel.relowner)),
                  HINT = 'Run the conversion as the table''s owner (or a member of the owning role).';
    END IF;

    -- Before reading the column's largest value: block every writer until
    -- commit, so that no sequence value can be inserted after the floor is
    -- read.  ACCESS EXCLUSIVE, the mode ALTER TABLE ... SET DEFAULT and
    -- DROP IDENTITY take anyway: taking a weaker one first (SHARE ROW
    -- EXCLUSIVE would be enough against inserts) and upgrading later could
    -- deadlock with a reader that goes on to write.  The wait is bounded by
    -- the caller's lock_timeout, or by 10 s if that is 0.
    old_lt := current_setting('lock_timeout');
    IF old_lt = '0' THEN
        PERFORM set_config('lock_timeout', '10s', true);
    END IF;
    BEGIN
        EXECUTE format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', tbl);
    EXCEPTION WHEN lock_not_available THEN
        RAISE EXCEPTION 'could not lock table % to convert column "%"', tbl, col
            USING ERRCODE = 'lock_not_available',
                  DETAIL = format('The conversion waited %s for the transactions using the table to end.',
                                  current_setting('lock_timeout')),
                  HINT = 'Retry when the table is less busy, or raise lock_timeout.';
    END;
    PERFORM set_config('lock_timeout', old_lt, true);

    SELECT * INTO att FROM pg_attribute a
     WHERE a.attrelid = tbl AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'column "%" of relation % does not exist', col, tbl
            USING ERRCODE = 'undefined_column';
    END IF;
    IF att.atttypid <> 'bigint'::regtype THEN
        RAISE EXCEPTION 'column "%" of % is %, not bigint', col, tbl, format_type(att.atttypid, att.atttypmod)
            USING ERRCODE = 'datatype_mismatch',
                  DETAIL = CASE WHEN att.atttypid IN ('integer'::regtype, 'smallint'::regtype)
                                THEN format('%s are 64-bit integers; %s is too small to hold them.',
                                            generator, format_type(att.atttypid, NULL))
                                ELSE format('%s are bigint.', generator) END,
                  HINT = format('Change the column''s type first: ALTER TABLE %s ALTER COLUMN %I TYPE bigint;', tbl, col);
    END IF;

    identity := att.attidentity;
    IF identity <> '' THEN
        seq := pg_get_serial_sequence(tbl::text, quote_ident(col))::regclass;
    ELSE
        -- a default that is exactly nextval() of one sequence, owned by the
        -- column (serial) or not
        SELECT pg_get_expr(d.adbin, d.adrelid), dep.refobjid::regclass INTO def, seq
          FROM pg_attrdef d
          JOIN pg_depend dep ON dep.classid = 'pg_attrdef'::regclass AND dep.objid = d.oid
                            AND dep.refclassid = 'pg_class'::regclass
          JOIN pg_class s ON s.oid = dep.refobjid AND s.relkind = 'S'
         WHERE d.adrelid = tbl AND d.adnum = att.attnum;
        IF def IS NULL OR def !~ '^nextval\(''.*''::regclass\)$' THEN
            seq := NULL;
        END IF;
    END IF;
    IF seq IS NULL THEN
        RAISE EXCEPTION 'column "%" of % is not fed by a sequence', col, tbl
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = format('Its default is %s.', coalesce(
                      (SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d
                        WHERE d.adrelid = tbl AND d.adnum = att.attnum), 'not set')),
                  HINT = 'Only a bigserial column, a column whose default is nextval(...) of a sequence, or an identity column can be converted.';
    END IF;

    -- Every row counts, also one a row-level security policy hides from
    -- the caller (FORCE ROW LEVEL SECURITY binds the owner too): with
    -- row_security off, a query a policy would filter fails instead of
    -- returning a smaller max.
    old_rs := current_setting('row_security');
    PERFORM set_config('row_security', 'off', true);
    BEGIN
        EXECUTE format('SELECT max(%I) FROM %s', col, tbl) INTO col_max;
    EXCEPTION WHEN insufficient_privilege THEN
        RAISE EXCEPTION 'cannot read every row of % to convert column "%"', tbl, col
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'A row-level security policy applies to the caller, so the rows it hides would be left out of the column''s largest value.',
                  HINT = format('Run the conversion as a role with BYPASSRLS, or in its transaction run ALTER TABLE %s NO FORCE ROW LEVEL SECURITY before it and FORCE again after it.', tbl);
    END;
    PERFORM set_config('row_security', old_rs, true);
    -- values the sequence handed out but no row holds yet (or any more)
    -- count too: an application may still insert them.  Without the right
    -- to read them, refuse: max(col) alone could start the new numbers at
    -- a value an application has fetched and is about to insert.
    IF NOT has_sequence_privilege(seq, 'SELECT, USAGE') THEN
        RAISE EXCEPTION 'permission denied to read the last value of sequence % feeding column "%" of %', seq, col, tbl
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'Values the sequence handed out that no row holds yet must stay below the new numbers, so the conversion reads the sequence''s last value.',
                  HINT = format('The sequence''s owner can GRANT SELECT ON SEQUENCE %s TO %I;', seq, current_user);
    END IF;
    seq_last := pg_sequence_last_value(seq);
    floor_value := CASE WHEN col_max IS NULL THEN seq_last
                        WHEN seq_last IS NULL THEN col_max
                        ELSE greatest(col_max, seq_last) END;
END;
$$;

COMMENT ON FUNCTION _convert_prepare(regclass, name, text) IS
'Internal: checks, lock and floor of a column conversion';

-- Switch tbl.col from its sequence to new_default.  An identity loses its
-- identity (and with it its internal sequence); an owned sequence
-- (bigserial) is dropped, or detached and kept if anything else still uses
-- it; a sequence the column does not own is left as it is.  Nothing is left
-- that pg_dump and restore would have to reconcile.
CREATE FUNCTION _convert_finish(tbl regclass, col name, seq regclass,
                                identity "char", new_default text)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    owned boolean;
    seqname text := seq::text;
BEGIN
    IF identity <> '' THEN
        EXECUTE format('ALTER TABLE %s ALTER COLUMN %I DROP IDENTITY', tbl, col);
        EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET DEFAULT %s', tbl, col, new_default);
        RAISE NOTICE 'column "%" of % now defaults to %; its identity and sequence % are dropped',
            col, tbl, new_default, seqname;
        RETURN;
    END IF;
    SELECT EXISTS (SELECT 1 FROM pg_depend dep
                    WHERE dep.classid = 'pg_class'::regclass AND dep.objid = seq
                      AND dep.refclassid = 'pg_class'::regclass AND dep.refobjid = tbl
                      AND dep.deptype = 'a')
      INTO owned;
    EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET DEFAULT %s', tbl, col, new_default);
    IF NOT owned THEN
        RAISE NOTICE 'column "%" of % now defaults to %; sequence % is not owned by it and stays as it is',
            col, tbl, new_default, seqname;
        RETURN;
    END IF;
    BEGIN
        EXECUTE format('DROP SEQUENCE %s', seq);
        RAISE NOTICE 'column "%" of % now defaults to %; its sequence % is dropped',
            col, tbl, new_default, seqname;
    EXCEPTION WHEN dependent_objects_still_exist THEN
        EXECUTE format('ALTER SEQUENCE %s OWNED BY NONE', seq);
        RAISE NOTICE 'column "%" of % now defaults to %; its sequence % is still used elsewhere, so it is kept, no longer owned by the column',
            col, tbl, new_default, seqname;
    END;
END;
$$;

COMMENT ON FUNCTION _convert_finish(regclass, name, regclass, "char", text) IS
'Internal: switch a column''s default from its sequence to a generator';

CREATE FUNCTION convert_to_snowflake(tbl regclass, col name)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p     record;
    next  bigint;
BEGIN
    p := idgen._convert_prepare(tbl, col, 'Snowflake IDs');
    next := idgen.snowflake_next();
    IF p.floor_value >= next THEN
        RAISE EXCEPTION 'column "%" of % already holds values at or above the next Snowflake ID', col, tbl
            USING ERRCODE = 'numeric_value_out_of_range',
                  DETAIL = format('The largest value the column or its sequence %s has is %s; the next Snowflake ID is %s.',
                                  p.seq, p.floor_value, next),
                  HINT = 'New IDs must be above every existing one. Use idgen.convert_to_segment(), whose numbers start above the largest value.';
    END IF;
    PERFORM idgen._convert_finish(tbl, col, p.seq, p.identity, 'idgen.snowflake_next()');
END;
$$;

COMMENT ON FUNCTION convert_to_snowflake(regclass, name) IS
'Switch a bigint column fed by a sequence to idgen.snowflake_next(), refusing if existing values reach the next ID';

GRANT EXECUTE ON FUNCTION convert_to_snowflake(regclass, name) TO PUBLIC;

CREATE FUNCTION convert_to_segment(tbl regclass, col name, tag text)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p     record;
BEGIN
    IF tag IS NULL THEN
        RAISE EXCEPTION 'segment tag must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT has_function_privilege('idgen.segment_create(text, bigint, integer)', 'EXECUTE')
       OR NOT has_function_privilege('idgen.segment_next(text)', 'EXECUTE') THEN
        RAISE EXCEPTION 'permission denied to create segment tag "%" for column "%" of %', tag, col, tbl
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'Converting to a segment tag creates the tag and makes the column''s default call idgen.segment_next().',
                  HINT = 'A superuser can GRANT EXECUTE ON FUNCTION idgen.segment_create(text, bigint, integer), idgen.segment_next(text) to the table''s owner.';
    END IF;
    IF idgen._segment_exists(tag) THEN
        RAISE EXCEPTION 'segment tag "%" already exists', tag
            USING ERRCODE = 'duplicate_object',
                  HINT = 'Choose a new tag: the column''s numbers must start above its largest value, and an existing tag has its own start.';
    END IF;
    p := idgen._convert_prepare(tbl, col, 'Segment numbers');
    -- segment_create() refuses a start too close to the end of bigint
    PERFORM idgen.segment_create(tag, coalesce(p.floor_value, 0) + 1);
    PERFORM idgen._convert_finish(tbl, col, p.seq, p.identity,
                                  format('idgen.segment_next(%L::text)', tag));
END;
$$;

COMMENT ON FUNCTION convert_to_segment(regclass, name, text) IS
'Switch a bigint column fed by a sequence to a new segment tag starting above its largest value';

GRANT EXECUTE ON FUNCTION convert_to_segment(regclass, name, text) TO PUBLIC;


-- ---------------------------------------------------------------------------
-- Lease functions (issue 9 items 2, 6, 12; issue 11 item 5): SECURITY
-- DEFINER, node roles need EXECUTE only and a holding is bound to the role
-- that took it; the coordinator's locks live in a lock space no SQL outside
-- them reaches; a node taking back its own id after a crash starts above
-- its own durable floor; renewals are O(1) in the number of holders.
-- ---------------------------------------------------------------------------

-- The column gets its default after the rows are filled, so that the
-- updated table is what a fresh install creates (no stored missing value).
ALTER TABLE leases ADD COLUMN holder_role name,
    ADD COLUMN start_floor_ms bigint;
-- holdings taken under 1.0 started above an unknown floor: assume the
-- highest one recorded, so that they never take the faster path
UPDATE leases SET start_floor_ms = time_floor_ms;
ALTER TABLE leases ALTER COLUMN start_floor_ms SET DEFAULT 0,
    ALTER COLUMN start_floor_ms SET NOT NULL;

-- The coordinator's lease locks (src/lease_locks.c): lock tags no SQL
-- outside these functions can take, so that no role able to connect can
-- block leasing.  Only the lease functions below call them.
CREATE FUNCTION _lease_lock(worker_id integer)
RETURNS boolean
AS 'MODULE_PATHNAME', 'idgen_lease_lock'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;

COMMENT ON FUNCTION _lease_lock(integer) IS
'Internal: take this session''s lock on a leased worker id without waiting';

CREATE FUNCTION _lease_unlock()
RETURNS void
AS 'MODULE_PATHNAME', 'idgen_lease_unlock'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION _lease_unlock() IS
'Internal: release this session''s worker-id lock';

CREATE FUNCTION _lease_acquisition_lock()
RETURNS void
AS 'MODULE_PATHNAME', 'idgen_lease_acquisition_lock'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION _lease_acquisition_lock() IS
'Internal: serialise worker-id acquisitions, waiting at most lock_timeout';

REVOKE EXECUTE ON FUNCTION _lease_lock(integer), _lease_unlock(), _lease_acquisition_lock()
    FROM PUBLIC;

-- Take the lock on a worker id for a holding the caller has just shown to
-- be its own (holder identity and role, under the row's lock).  Another
-- session of the same role holding it can only be this node's own earlier
-- session, cut off by a partition or left by a crash, that the
-- coordinator has not ended yet: end it (waiting up to 1 s) rather than
-- make the node give up its id.  The pg_locks scan runs only then.
CREATE FUNCTION _lease_take_lock(p_worker_id integer)
RETURNS boolean
LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    stale integer;
BEGIN
    IF idgen._lease_lock(p_worker_id) THEN
        RETURN true;
    END IF;
    SELECT l.pid INTO stale
      FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
     WHERE l.locktype = 'advisory' AND l.granted
       AND l.database = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())
       AND l.classid = 7534 AND l.objid = p_worker_id AND l.objsubid = 7534
       AND a.usename = session_user AND l.pid <> pg_backend_pid();
    RETURN stale IS NOT NULL AND pg_terminate_backend(stale, 1000)
           AND idgen._lease_lock(p_worker_id);
END;
$$;

COMMENT ON FUNCTION _lease_take_lock(integer) IS
'Internal: take the lock on the caller''s own leased worker id, ending its own stale session';

REVOKE EXECUTE ON FUNCTION _lease_take_lock(integer) FROM PUBLIC;

-- The lease functions are SECURITY DEFINER: nodes' roles get EXECUTE on
-- them and nothing else.  A holding belongs to the holder identity (the
-- node's system identifier/host:port) AND the role that took it
-- (session_user): only that role can renew or release it, or take the id
-- back without waiting for its quarantine.  Every argument is the
-- caller's; what a caller can do with them is limited to its own holding.
--
-- p_local_floor_ms: the node's durable time floor (WAL-replayed after a
-- crash): no Snowflake ID it ever issued carries a later time.  A node
-- that takes back the id whose latest holding was its own starts above
--   greatest(that holding's start_floor_ms, p_local_floor_ms)
-- instead of the id's time_floor_ms (the last horizon, up to a TTL
-- ahead).  Why that is safe: every ID ever issued under the id belongs
-- either to an earlier holding, and lies at or below the floor the latest
-- holding started above (start_floor_ms, which covered every earlier
-- holding when it was taken), or to the latest holding, which was this
-- data directory's and so lies at or below its durable floor (raised and
-- made durable before each ID left snowflake_next()).  time_floor_ms is
-- not lowered: any other node still starts above the horizon.  This rests
-- on the holder identity and role naming one data directory with its
-- whole WAL (see docs/leasing.md, "Taking back one's own id after a
-- crash", on cloned or restored data directories).
CREATE FUNCTION lease_acquire(p_holder text, p_pid integer,
                              p_timestamp_bits integer, p_worker_bits integer,
                              p_sequence_bits integer, p_tick_ms integer,
                              p_epoch_ms bigint,
                              p_ttl_s integer, p_margin_s integer,
                              p_static_id integer, p_prefer_id integer,
                              p_local_floor_ms bigint,
                              OUT worker_id integer, OUT generation bigint,
                              OUT expires_at timestamptz,
                              OUT previous_floor_ms bigint,
                              OUT in_use integer, OUT capacity integer)
RETURNS record
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    lay      idgen.lease_layout;
    cap      integer;
    cand     integer;
    cur      idgen.leases;
    known    boolean;
    own      boolean;
    blockers text;
BEGIN
    IF p_ttl_s NOT BETWEEN 1 AND 3600 OR p_margin_s NOT BETWEEN 0 AND 3600
       OR p_worker_bits NOT BETWEEN 0 AND 30 THEN
        RAISE EXCEPTION 'invalid lease parameters'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('TTL %s s, margin %s s, %s worker bits.', p_ttl_s, p_margin_s, p_worker_bits);
    END IF;
    cap := 1 << p_worker_bits;

    -- a fresh holding: let go of the lock an earlier holding left in this session
    PERFORM idgen._lease_unlock();

    -- Simultaneous first boots: one acquisition at a time.  The wait is
    -- bounded by lock_timeout (the lease worker sets it; 5 s otherwise),
    -- and a blocked acquisition names who blocks it.
    IF current_setting('lock_timeout') = '0' THEN
        PERFORM set_config('lock_timeout', '5s', true);
    END IF;
    BEGIN
        PERFORM idgen._lease_acquisition_lock();
    EXCEPTION WHEN lock_not_available THEN
        SELECT string_agg(format('pid %s (role %s)', l.pid, coalesce(a.usename::text, 'unknown')),
                          ', ' ORDER BY l.pid)
          INTO blockers
          FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
         WHERE l.locktype = 'advisory' AND l.granted
           AND l.database = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())
           AND l.classid = 7535 AND l.objid = 0 AND l.objsubid = 7534;
        RAISE EXCEPTION 'worker id acquisition is blocked on the coordinator'
            USING ERRCODE = 'lock_not_available',
                  DETAIL = format('Another session held idgen''s acquisition lock for longer than lock_timeout (%s): %s.',
                                  current_setting('lock_timeout'), coalesce(blockers, 'it has let go since')),
                  HINT = 'Only idgen''s lease functions take this lock, for the length of one call; end a stuck session with pg_terminate_backend().';
    END;

    SELECT * INTO lay FROM idgen.lease_layout FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO idgen.lease_layout (timestamp_bits, worker_bits, sequence_bits, tick_ms, epoch_ms)
        VALUES (p_timestamp_bits, p_worker_bits, p_sequence_bits, p_tick_ms, p_epoch_ms);
    ELSIF (lay.timestamp_bits, lay.worker_bits, lay.sequence_bits, lay.tick_ms, lay.epoch_ms)
          IS DISTINCT FROM (p_timestamp_bits, p_worker_bits, p_sequence_bits, p_tick_ms, p_epoch_ms) THEN
        RAISE EXCEPTION 'Snowflake layout differs from the coordinator''s'
            USING ERRCODE = 'IG006',
                  DETAIL = format('The coordinator''s nodes use %s/%s/%s bits, tick %s ms, epoch %s ms; this node uses %s/%s/%s bits, tick %s ms, epoch %s ms.',
                                  lay.timestamp_bits, lay.worker_bits, lay.sequence_bits, lay.tick_ms, lay.epoch_ms,
                                  p_timestamp_bits, p_worker_bits, p_sequence_bits, p_tick_ms, p_epoch_ms),
                  HINT = 'Every node leasing from one coordinator must use the same idgen.epoch, idgen.tick and bit settings.';
    END IF;

    -- Candidates in order: the static id; else the id this node held last,
    -- then every id without a live (or quarantined) lease of another holder.
    -- Streamed, never materialised: the id space can be 2^30.
    FOR cand IN
        SELECT p_static_id WHERE p_static_id >= 0
        UNION ALL
        SELECT p_prefer_id WHERE p_static_id < 0 AND p_prefer_id >= 0 AND p_prefer_id < cap
        UNION ALL
        SELECT g FROM generate_series(0, cap - 1) g
         WHERE p_static_id < 0 AND g IS DISTINCT FROM p_prefer_id
           AND NOT EXISTS (SELECT 1 FROM idgen.leases l
                            WHERE l.worker_id = g
                              AND (l.holder <> p_holder OR l.holder_role IS DISTINCT FROM session_user)
                              AND l.expires_at + make_interval(secs => p_margin_s) > now())
    LOOP
        SELECT * INTO cur FROM idgen.leases l WHERE l.worker_id = cand FOR UPDATE;
        known := FOUND;
        own := known AND cur.holder = p_holder AND cur.holder_role IS NOT DISTINCT FROM session_user;
        IF known AND NOT own
           AND cur.expires_at + make_interval(secs => p_margin_s) > now() THEN
            CONTINUE;           -- live, or within the quarantine after expiry
        END IF;
        IF NOT (CASE WHEN own THEN idgen._lease_take_lock(cand)
                     ELSE idgen._lease_lock(cand) END) THEN
            CONTINUE;           -- a live session still holds it
        END IF;

        worker_id := cand;
        IF own THEN
            previous_floor_ms := greatest(cur.start_floor_ms, p_local_floor_ms);
        ELSE
            previous_floor_ms := coalesce(cur.time_floor_ms, 0);
        END IF;
        expires_at := now() + make_interval(secs => p_ttl_s);
        IF known THEN
            generation := cur.generation + 1;
            UPDATE idgen.leases l
               SET holder = p_holder, holder_pid = p_pid, generation = lease_acquire.generation,
                   acquired_at = now(), renewed_at = now(),
                   expires_at = lease_acquire.expires_at, released_at = NULL,
                   time_floor_ms = greatest(l.time_floor_ms, lease_acquire.previous_floor_ms),
                   holder_role = session_user, start_floor_ms = lease_acquire.previous_floor_ms
             WHERE l.worker_id = cand;
        ELSE
            generation := 1;
            INSERT INTO idgen.leases (worker_id, holder, holder_pid, generation,
                                      acquired_at, renewed_at, expires_at,
                                      holder_role, start_floor_ms)
            VALUES (cand, p_holder, p_pid, 1, now(), now(), lease_acquire.expires_at,
                    session_user, 0);
        END IF;
        INSERT INTO idgen.lease_history (worker_id, generation, holder, acquired_at, renewed_at, expires_at)
        VALUES (cand, lease_acquire.generation, p_holder, now(), now(), lease_acquire.expires_at);

        -- counted here only: renewals stay O(1) in the number of holders
        SELECT count(*) INTO in_use FROM idgen.leases l
         WHERE l.released_at IS NULL AND l.expires_at > now();
        capacity := cap;
        RETURN;
    END LOOP;

    IF p_static_id >= 0 THEN
        SELECT * INTO cur FROM idgen.leases l WHERE l.worker_id = p_static_id;
        RAISE EXCEPTION 'worker id % is held by another node', p_static_id
            USING ERRCODE = 'IG007',
                  DETAIL = format('The lease of %s runs until %s (plus a %s s margin).',
                                  coalesce(cur.holder, 'an unknown session'), coalesce(cur.expires_at::text, 'its session ends'), p_margin_s),
                  HINT = 'Give every node its own idgen.worker_id, or set idgen.worker_id = -1 to lease a free one.';
    END IF;
    RAISE EXCEPTION 'no free worker id: all % ids are leased', cap
        USING ERRCODE = 'IG008',
              DETAIL = 'Every worker id is held by a live lease or is in its quarantine after expiry.',
              HINT = 'Raise idgen.worker_bits (all nodes and the coordinator must agree), or retire nodes.';
END;
$$;

COMMENT ON FUNCTION lease_acquire(text, integer, integer, integer, integer, integer, bigint,
                                  integer, integer, integer, integer, bigint) IS
'Coordinator side, called by nodes'' lease workers: lease a free (or the static) worker id';

-- O(1) in the number of holders: two updates by primary key and a lookup
-- in this session's own lock table.
CREATE OR REPLACE FUNCTION lease_renew(p_worker_id integer, p_generation bigint, p_holder text,
                            p_ttl_s integer, p_time_floor_ms bigint,
                            OUT expires_at timestamptz, OUT in_use integer)
RETURNS record
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    new_expiry timestamptz;
BEGIN
    IF p_ttl_s NOT BETWEEN 1 AND 3600 THEN
        RAISE EXCEPTION 'invalid lease TTL: % s', p_ttl_s
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    new_expiry := now() + make_interval(secs => p_ttl_s);
    -- The holding must be the caller's (holder identity and role; a holding
    -- taken before 1.1 recorded no role, and records the renewing one).
    -- Checked before the lock is taken, so a caller can never take the lock
    -- of a holding that is not its own.
    UPDATE idgen.leases l
       SET renewed_at = now(), expires_at = new_expiry,
           time_floor_ms = greatest(l.time_floor_ms, p_time_floor_ms),
           holder_role = session_user
     WHERE l.worker_id = p_worker_id AND l.generation = p_generation
       AND l.holder = p_holder AND l.released_at IS NULL
       AND (l.holder_role = session_user OR l.holder_role IS NULL);
    IF NOT FOUND THEN
        RAISE EXCEPTION 'lease of worker id % generation % is no longer held by this node', p_worker_id, p_generation
            USING ERRCODE = 'IG007';
    END IF;
    -- after a reconnect (or a coordinator failover) this session may not
    -- hold the id's lock yet; the error rolls the renewal back
    IF NOT idgen._lease_take_lock(p_worker_id) THEN
        RAISE EXCEPTION 'worker id % is locked by another session', p_worker_id
            USING ERRCODE = 'IG007';
    END IF;
    UPDATE idgen.lease_history h SET renewed_at = now(), expires_at = new_expiry
     WHERE h.worker_id = p_worker_id AND h.generation = p_generation;
    expires_at := new_expiry;
    in_use := NULL;             -- counted at acquisition only
END;
$$;

COMMENT ON FUNCTION lease_renew(integer, bigint, text, integer, bigint) IS
'Coordinator side: extend a lease and record its time horizon';

CREATE OR REPLACE FUNCTION lease_release(p_worker_id integer, p_generation bigint, p_holder text,
                              p_time_floor_ms bigint)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- p_time_floor_ms is what the node actually reached, which may be below
    -- the horizon it reported; never below the floor the holding started
    -- above, which covers every earlier holding
    UPDATE idgen.leases l
       SET released_at = now(), expires_at = least(l.expires_at, now()),
           time_floor_ms = greatest(p_time_floor_ms, l.start_floor_ms)
     WHERE l.worker_id = p_worker_id AND l.generation = p_generation AND l.holder = p_holder
       AND l.released_at IS NULL
       AND (l.holder_role = session_user OR l.holder_role IS NULL);
    IF NOT FOUND THEN
        RAISE EXCEPTION 'lease of worker id % generation % is no longer held by this node', p_worker_id, p_generation
            USING ERRCODE = 'IG007';
    END IF;
    UPDATE idgen.lease_history h SET released_at = now(), expires_at = least(h.expires_at, now())
     WHERE h.worker_id = p_worker_id AND h.generation = p_generation;
    PERFORM idgen._lease_unlock();
END;
$$;

COMMENT ON FUNCTION lease_release(integer, bigint, text, bigint) IS
'Coordinator side: give a lease back at clean shutdown with the floor actually reached';

-- lease_acquire has a new signature: roles that could call the 1.0 one
-- can call the new one; the 1.0 one goes.  (Roles given DML on the lease
-- tables for 1.0 keep it until the DBA revokes it; 1.1 needs none.)
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN
        SELECT DISTINCT a.grantee::regrole AS grantee
          FROM pg_catalog.pg_proc p, pg_catalog.aclexplode(p.proacl) a
         WHERE p.oid = '@extschema@.lease_acquire(text, integer, integer, integer, integer, integer, bigint, integer, integer, integer, integer)'::pg_catalog.regprocedure
           AND a.privilege_type = 'EXECUTE' AND a.grantee <> 0 AND a.grantee <> p.proowner
    LOOP
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION @extschema@.lease_acquire(text, integer, integer, integer, integer, integer, bigint, integer, integer, integer, integer, bigint) TO %s',
                                  r.grantee);
    END LOOP;
END $$;
DROP FUNCTION lease_acquire(text, integer, integer, integer, integer, integer, bigint,
                            integer, integer, integer, integer);

-- Only the roles nodes connect as: superusers, or roles the DBA grants
-- EXECUTE on these three functions (and nothing on the tables).
REVOKE EXECUTE ON FUNCTION
    lease_acquire(text, integer, integer, integer, integer, integer, bigint,
                  integer, integer, integer, integer, bigint),
    lease_renew(integer, bigint, text, integer, bigint),
    lease_release(integer, bigint, text, bigint) FROM PUBLIC;



-- Lease tables are no longer dumped by pg_dump: they are a coordinator's
-- live state and audit trail, not configuration (see idgen--1.1.sql).
-- Dropping a table from the extension removes its config-dump mark.
ALTER EXTENSION idgen DROP TABLE lease_layout;
ALTER EXTENSION idgen ADD TABLE lease_layout;
ALTER EXTENSION idgen DROP TABLE leases;
ALTER EXTENSION idgen ADD TABLE leases;
ALTER EXTENSION idgen DROP TABLE lease_history;
ALTER EXTENSION idgen ADD TABLE lease_history;

-- Segment blocks (issue 12, item 5): segment_next(tag, n), the first of n
-- consecutive numbers reserved for the caller; EXECUTE granted per role,
-- like segment_next(tag).
CREATE FUNCTION segment_next(tag text, n integer)
RETURNS bigint
AS 'MODULE_PATHNAME', 'idgen_segment_next_block'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

COMMENT ON FUNCTION segment_next(text, integer) IS
'First of n consecutive numbers of a segment tag reserved for the caller (1 <= n <= the tag''s step)';

REVOKE EXECUTE ON FUNCTION segment_next(text, integer) FROM PUBLIC;

-- lease_renew in one statement: the holding and its history row are
-- renewed together, and the session's lock is checked without a nested
-- function call (issue 11 sizing)
-- O(1) in the number of holders: one statement that updates the holding
-- and its history row by primary key, and a lookup in this session's own
-- lock table (the pg_locks scan of _lease_take_lock runs only when the
-- session does not hold the id's lock yet).
CREATE OR REPLACE FUNCTION lease_renew(p_worker_id integer, p_generation bigint, p_holder text,
                            p_ttl_s integer, p_time_floor_ms bigint,
                            OUT expires_at timestamptz, OUT in_use integer)
RETURNS record
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    new_expiry timestamptz;
    renewed    integer;
BEGIN
    IF p_ttl_s NOT BETWEEN 1 AND 3600 THEN
        RAISE EXCEPTION 'invalid lease TTL: % s', p_ttl_s
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    new_expiry := now() + make_interval(secs => p_ttl_s);
    -- The holding must be the caller's (holder identity and role; a holding
    -- taken before 1.1 recorded no role, and records the renewing one).
    -- Checked before the lock is taken, so a caller can never take the lock
    -- of a holding that is not its own.  Its history row is renewed in the
    -- same statement, only if the holding is.
    WITH l AS (
        UPDATE idgen.leases l
           SET renewed_at = now(), expires_at = new_expiry,
               time_floor_ms = greatest(l.time_floor_ms, p_time_floor_ms),
               holder_role = session_user
         WHERE l.worker_id = p_worker_id AND l.generation = p_generation
           AND l.holder = p_holder AND l.released_at IS NULL
           AND (l.holder_role = session_user OR l.holder_role IS NULL)
        RETURNING l.worker_id
    ), h AS (
        UPDATE idgen.lease_history h SET renewed_at = now(), expires_at = new_expiry
          FROM l
         WHERE h.worker_id = l.worker_id AND h.generation = p_generation
    )
    SELECT count(*) INTO renewed FROM l;
    IF renewed = 0 THEN
        RAISE EXCEPTION 'lease of worker id % generation % is no longer held by this node', p_worker_id, p_generation
            USING ERRCODE = 'IG007';
    END IF;
    -- after a reconnect (or a coordinator failover) this session may not
    -- hold the id's lock yet; the error rolls the renewal back
    IF NOT idgen._lease_lock(p_worker_id) THEN
        IF NOT idgen._lease_take_lock(p_worker_id) THEN
            RAISE EXCEPTION 'worker id % is locked by another session', p_worker_id
                USING ERRCODE = 'IG007';
        END IF;
    END IF;
    expires_at := new_expiry;
    in_use := NULL;             -- counted at acquisition only
END;
$$;

COMMENT ON FUNCTION lease_renew(integer, bigint, text, integer, bigint) IS
'Coordinator side: extend a lease and record its time horizon';

-- probe_register/probe_unregister act for the role that calls them (red
-- team): they were SECURITY DEFINER and took the caller to be the SET ROLE
-- role or the session user, which inside a table owner's code run by a
-- superuser's session (a row-level security policy during a probe scan, an
-- index expression under autovacuum) is the superuser.  Now C functions
-- that pass the calling role to SECURITY DEFINER twins granted to no one.
CREATE OR REPLACE FUNCTION probe_register(tbl regclass, col name, "window" interval DEFAULT '1 hour')
RETURNS void
AS 'MODULE_PATHNAME', 'idgen_probe_as_caller'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION probe_register(regclass, name, interval) IS
'Register a uniqueness probe on a bigint (Snowflake/segment) or uuid (UUIDv7) column of a table the caller owns';

CREATE OR REPLACE FUNCTION probe_unregister(tbl regclass, col name)
RETURNS void
AS 'MODULE_PATHNAME', 'idgen_probe_as_caller'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION probe_unregister(regclass, name) IS 'Remove a uniqueness probe on a table the caller owns';

CREATE FUNCTION _probe_register(caller regrole, tbl regclass, col name, "window" interval)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rel      pg_class;
    typ      regtype;
    dflt     text;
    k        text;
    seg      text;
    has_idx  boolean;
BEGIN
    IF tbl IS NULL OR col IS NULL THEN
        RAISE EXCEPTION 'table and column must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF "window" IS NULL THEN
        RAISE EXCEPTION 'probe window must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF "window" <= interval '0' THEN
        RAISE EXCEPTION 'probe window must be a positive interval' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- now() - window must stay a valid timestamptz on every run
    IF "window" > interval '10 years' THEN
        RAISE EXCEPTION 'probe window must be at most 10 years'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'Each run checks the IDs issued within the window, which must lie within the last 10 years.',
                  HINT = 'The window should be longer than idgen.probe_interval; 1 hour is a good start.';
    END IF;
    -- Runs read the table as its owner: only plain tables (no view code),
    -- registered by their owners.
    SELECT * INTO rel FROM pg_class c WHERE c.oid = tbl;
    IF NOT FOUND OR rel.relkind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION '% is not a table', tbl
            USING ERRCODE = 'wrong_object_type',
                  DETAIL = 'The uniqueness probe checks ordinary and partitioned tables.';
    END IF;
    IF NOT pg_has_role(caller::oid, rel.relowner, 'USAGE') THEN
        RAISE EXCEPTION 'must be owner of table %', tbl USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT a.atttypid::regtype, pg_get_expr(d.adbin, d.adrelid)
      INTO typ, dflt
      FROM pg_attribute a
      LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
     WHERE a.attrelid = tbl AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'column "%" of relation % does not exist', col, tbl USING ERRCODE = 'undefined_column';
    END IF;
    IF typ = 'uuid'::regtype THEN
        k := 'uuidv7';
    ELSIF typ = 'bigint'::regtype THEN
        IF dflt LIKE '%segment_next%' THEN
            k := 'segment';
            seg := replace(substring(dflt FROM $re$segment_next\('((?:[^']|'')+)'$re$), '''''', '''');
            IF seg IS NULL THEN
                RAISE WARNING 'could not tell which segment tag column "%" of % uses', col, tbl
                    USING DETAIL = 'The probe checks only numbers above the high-water mark of its last run, not ranges granted again below it.';
            END IF;
        ELSE
            k := 'snowflake';
            IF dflt IS NULL OR dflt NOT LIKE '%snowflake_next%' THEN
                RAISE WARNING 'column "%" of % has no idgen.snowflake_next() default; the probe treats its values as Snowflake IDs', col, tbl
                    USING DETAIL = 'Each run checks the values at or above idgen.snowflake_min(now() - window); values that are not Snowflake IDs of this layout may fall outside that bound and go unchecked.',
                          HINT = 'For segment numbers, give the column DEFAULT idgen.segment_next(tag) before registering.';
            END IF;
        END IF;
    ELSE
        RAISE EXCEPTION 'cannot probe column "%" of type %', col, typ
            USING ERRCODE = 'datatype_mismatch',
                  DETAIL = 'The uniqueness probe checks bigint (Snowflake or segment) and uuid (UUIDv7) columns.';
    END IF;
    SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                     JOIN pg_am am ON am.oid = c.relam
                    WHERE i.indrelid = tbl AND am.amname = 'btree' AND i.indpred IS NULL
                      AND i.indkey[0] = (SELECT attnum FROM pg_attribute
                                          WHERE attrelid = tbl AND attname = col))
      INTO has_idx;
    IF NOT has_idx THEN
        RAISE WARNING 'no B-tree index leads with column "%" of %', col, tbl
            USING DETAIL = 'The probe still finds every duplicate, but each run reads the whole table instead of only the window.',
                  HINT = format('CREATE INDEX ON %s (%I);', tbl, col);
    END IF;
    INSERT INTO idgen.probes (tbl, col, "window", kind, indexed, segment_tag, owner)
    VALUES (tbl, col, "window", k, has_idx, seg, rel.relowner)
    ON CONFLICT ON CONSTRAINT probes_pkey DO UPDATE
       SET "window" = EXCLUDED."window", kind = EXCLUDED.kind, indexed = EXCLUDED.indexed,
           segment_tag = EXCLUDED.segment_tag, owner = EXCLUDED.owner,
           last_error = NULL, last_error_at = NULL;
END;
$$;

COMMENT ON FUNCTION _probe_register(regrole, regclass, name, interval) IS
'Internal: probe_register() for the role that called it';

CREATE FUNCTION _probe_unregister(caller regrole, tbl regclass, col name)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- a probe whose table is gone: superusers only (the run removes it anyway)
    IF NOT coalesce(pg_has_role(caller::oid, (SELECT c.relowner FROM pg_class c WHERE c.oid = tbl), 'USAGE'),
                    (SELECT r.rolsuper FROM pg_roles r WHERE r.oid = caller::oid), false) THEN
        RAISE EXCEPTION 'must be owner of table %', tbl USING ERRCODE = 'insufficient_privilege';
    END IF;
    DELETE FROM idgen.probes p WHERE p.tbl = _probe_unregister.tbl AND p.col = _probe_unregister.col;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no probe is registered on column "%" of %', col, tbl
            USING ERRCODE = 'undefined_object';
    END IF;
END;
$$;

COMMENT ON FUNCTION _probe_unregister(regrole, regclass, name) IS
'Internal: probe_unregister() for the role that called it';

REVOKE EXECUTE ON FUNCTION _probe_register(regrole, regclass, name, interval),
    _probe_unregister(regrole, regclass, name) FROM PUBLIC;

-- The schema check on update (red team): 1.0 silently adopted a schema
-- named idgen that already existed.  A non-superuser that owns it, or may
-- create objects in it, can later rename it and put a schema of its own
-- in its place, whose functions the SECURITY DEFINER bodies then call by
-- name as a superuser.  Refuse to update such an installation; once a
-- superuser owns the schema, only superusers may create in it and it
-- holds nothing but idgen's own objects, the update goes through.
DO $idgen_schema_check_update$
DECLARE
    nsp     pg_catalog.pg_namespace;
    problem text;
BEGIN
    SELECT * INTO STRICT nsp FROM pg_catalog.pg_namespace n
     WHERE n.oid = '@extschema@'::pg_catalog.regnamespace;
    IF NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.oid = nsp.nspowner) THEN
        problem := pg_catalog.format('It is owned by role %I, which is not a superuser.',
                                     nsp.nspowner::pg_catalog.regrole::pg_catalog.text);
    ELSIF EXISTS (SELECT 1 FROM pg_catalog.aclexplode(nsp.nspacl) a
                   WHERE a.privilege_type = 'CREATE' AND a.grantee <> nsp.nspowner
                     AND (a.grantee = 0 OR NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles r
                                                 WHERE r.oid = a.grantee))) THEN
        problem := 'Roles other than superusers may create objects in it.';
    ELSIF EXISTS (SELECT 1 FROM pg_catalog.pg_class c
                   WHERE c.relnamespace = nsp.oid AND c.relkind NOT IN ('i', 'I')
                     AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                                      WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
                                        AND d.objid = c.oid AND d.deptype = 'e'))
       OR EXISTS (SELECT 1 FROM pg_catalog.pg_proc p
                   WHERE p.pronamespace = nsp.oid
                     AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                                      WHERE d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
                                        AND d.objid = p.oid AND d.deptype = 'e'))
       OR EXISTS (SELECT 1 FROM pg_catalog.pg_type t
                   WHERE t.typnamespace = nsp.oid AND t.typrelid = 0 AND t.typcategory <> 'A'
                     AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                                      WHERE d.classid = 'pg_catalog.pg_type'::pg_catalog.regclass
                                        AND d.objid = t.oid AND d.deptype = 'e'))
       OR EXISTS (SELECT 1 FROM pg_catalog.pg_operator o WHERE o.oprnamespace = nsp.oid) THEN
        problem := 'It holds objects that are not part of idgen.';
    END IF;
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'schema "%" is not safe for idgen', nsp.nspname
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = problem,
                  HINT = pg_catalog.format('Make a superuser its owner (ALTER SCHEMA %1$I OWNER TO ...), revoke CREATE on it from other roles and move out what is not idgen''s, then update again.',
                                           nsp.nspname);
    END IF;
END
$idgen_schema_check_update$;

-- idgen.probe_status shows a segment probe's high-water mark (the largest
-- value in the column) only to roles that may read the column (red team).
CREATE OR REPLACE VIEW probe_status AS
SELECT p.tbl, p.col, p.kind, p."window", p.indexed, p.last_run_at,
       p.last_ids_checked AS ids_checked, p.last_duplicates AS duplicates,
       p.last_duration_ms AS duration_ms, p.runs, p.duplicates_found,
       CASE WHEN pg_catalog.has_column_privilege(p.tbl, a.attnum, 'SELECT')
            THEN p.high_water END AS high_water,
       p.owner, p.last_error AS error, p.last_error_at AS error_at
FROM probes p
LEFT JOIN pg_catalog.pg_attribute a
       ON a.attrelid = p.tbl AND a.attname = p.col AND NOT a.attisdropped;

-- PostgreSQL 18 coexistence: pg_catalog.uuidv7() exists there and is
-- searched first, so 1.0's unqualified COMMENT ON and GRANT ON uuidv7()
-- reached core's function instead of idgen's.  Comment and grant idgen's
-- (qualified, as idgen--1.1.sql now does) and give core's its comment back.
COMMENT ON FUNCTION @extschema@.uuidv7() IS
'RFC 9562 version 7 UUID for the current time; strictly increasing across the server when idgen is preloaded';
GRANT EXECUTE ON FUNCTION @extschema@.uuidv7() TO PUBLIC;
DO $$
BEGIN
    -- to_regprocedure: NULL (so no repair) before PostgreSQL 18
    IF pg_catalog.obj_description(pg_catalog.to_regprocedure('pg_catalog.uuidv7()'), 'pg_proc')
       = pg_catalog.obj_description('@extschema@.uuidv7()'::pg_catalog.regprocedure, 'pg_proc') THEN
        COMMENT ON FUNCTION pg_catalog.uuidv7() IS 'generate UUID version 7';
    END IF;
END
$$;

-- Lease functions bound what a node role can report and hold (red team):
-- floors beyond the coordinator's clock plus the longest TTL and a clock-skew
-- allowance are refused; the acquisition lock lasts for one call and no
-- acquisition waits for another caller's transaction.
-- The acquisition lock lasts for one lease_acquire call only.
CREATE FUNCTION _lease_acquisition_unlock()
RETURNS void
AS 'MODULE_PATHNAME', 'idgen_lease_acquisition_unlock'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION _lease_acquisition_unlock() IS
'Internal: release the acquisition lock before the transaction ends';

REVOKE EXECUTE ON FUNCTION _lease_acquisition_unlock() FROM PUBLIC;

-- No lease call from another role's code in a security-restricted operation.
CREATE FUNCTION _lease_check_caller()
RETURNS void
AS 'MODULE_PATHNAME', 'idgen_lease_check_caller'
LANGUAGE C STABLE PARALLEL UNSAFE;

COMMENT ON FUNCTION _lease_check_caller() IS
'Internal: refuse a lease call made in a security-restricted operation (another role''s code)';

REVOKE EXECUTE ON FUNCTION _lease_check_caller() FROM PUBLIC;

-- Refuse a floor a node role reports beyond anything a holding can have
-- reached, so that no role with EXECUTE on the lease functions can poison
-- a worker id's floor and stop it from ever issuing again.  A node's
-- horizon is its clock plus its TTL (at most 1 hour) and its durable
-- floor its clock plus idgen.time_floor_reserve; the ceiling is the
-- coordinator's clock plus the longest TTL plus 10 minutes for the
-- clocks' skew.  p_recorded_ms (a floor the coordinator recorded for the
-- id itself) is always accepted back.
CREATE FUNCTION _lease_check_floor(p_floor_ms bigint, p_recorded_ms bigint, p_argument text)
RETURNS void
LANGUAGE plpgsql STABLE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    ceiling_ms bigint := ((extract(epoch FROM now()) + 3600 + 600) * 1000)::bigint;
BEGIN
    IF p_floor_ms > greatest(ceiling_ms, p_recorded_ms) THEN
        RAISE EXCEPTION 'time floor % ms is too far in the future', p_floor_ms
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('%s may be at most %s ms (the coordinator''s clock plus the longest lease TTL, 1 hour, plus 10 minutes of clock skew).',
                                  p_argument, greatest(ceiling_ms, p_recorded_ms)),
                  HINT = 'Check the node''s clock against the coordinator''s; a floor is the node''s clock plus its TTL at most.';
    END IF;
END;
$$;

COMMENT ON FUNCTION _lease_check_floor(bigint, bigint, text) IS
'Internal: refuse a time floor beyond what any lease holding can have reached';

REVOKE EXECUTE ON FUNCTION _lease_check_floor(bigint, bigint, text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION lease_acquire(p_holder text, p_pid integer,
                              p_timestamp_bits integer, p_worker_bits integer,
                              p_sequence_bits integer, p_tick_ms integer,
                              p_epoch_ms bigint,
                              p_ttl_s integer, p_margin_s integer,
                              p_static_id integer, p_prefer_id integer,
                              p_local_floor_ms bigint,
                              OUT worker_id integer, OUT generation bigint,
                              OUT expires_at timestamptz,
                              OUT previous_floor_ms bigint,
                              OUT in_use integer, OUT capacity integer)
RETURNS record
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    lay      idgen.lease_layout;
    cap      integer;
    cand     integer;
    cur      idgen.leases;
    known    boolean;
    own      boolean;
    blockers text;
    held     integer;
    max_held integer;
BEGIN
    IF p_ttl_s NOT BETWEEN 1 AND 3600 OR p_margin_s NOT BETWEEN 0 AND 3600
       OR p_worker_bits NOT BETWEEN 0 AND 30 THEN
        RAISE EXCEPTION 'invalid lease parameters'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('TTL %s s, margin %s s, %s worker bits.', p_ttl_s, p_margin_s, p_worker_bits);
    END IF;
    cap := 1 << p_worker_bits;
    PERFORM idgen._lease_check_caller();

    -- a fresh holding: let go of the lock an earlier holding left in this session
    PERFORM idgen._lease_unlock();

    -- Simultaneous first boots: one acquisition at a time, for the length
    -- of this call only (released before it returns, and by the end of the
    -- transaction or the abort of a subtransaction whatever happens), so
    -- that a caller leaving its transaction open blocks no one.  The wait
    -- is bounded by lock_timeout (the lease worker sets it; 5 s
    -- otherwise), and a blocked acquisition names who blocks it.
    --
    -- The lock only spares simultaneous boots a retry: which session gets
    -- an id is decided by the per-id session lock, taken without waiting.
    -- Two acquisitions picking the same id both call _lease_lock(cand);
    -- exactly one gets it, the other moves on.  The winner keeps it for as
    -- long as it holds the id (its session), so whoever later finds the
    -- id's row expired or released and takes the lock is alone on it.  The
    -- candidate row is read FOR UPDATE SKIP LOCKED: a row another
    -- transaction is changing (a holder renewing or releasing, perhaps in
    -- a transaction it leaves open) is skipped, never waited for, and a
    -- row we lock is the latest committed version, so its generation and
    -- floors are the current ones.  An id without a row yet is inserted
    -- ON CONFLICT DO NOTHING: a holder that inserted it, committed and
    -- released it between our read and our lock makes us skip the id.  A
    -- session lets go of an id's lock only when its transaction ends
    -- (src/lease_locks.c), so a row insert not committed yet is always
    -- covered by its id's lock, and never waited for.
    IF current_setting('lock_timeout') = '0' THEN
        PERFORM set_config('lock_timeout', '5s', true);
    END IF;
    BEGIN
        PERFORM idgen._lease_acquisition_lock();
    EXCEPTION WHEN lock_not_available THEN
        SELECT string_agg(format('pid %s (role %s)', l.pid, coalesce(a.usename::text, 'unknown')),
                          ', ' ORDER BY l.pid)
          INTO blockers
          FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
         WHERE l.locktype = 'advisory' AND l.granted
           AND l.database = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())
           AND l.classid = 7535 AND l.objid = 0 AND l.objsubid = 7534;
        RAISE EXCEPTION 'worker id acquisition is blocked on the coordinator'
            USING ERRCODE = 'lock_not_available',
                  DETAIL = format('Another session held idgen''s acquisition lock for longer than lock_timeout (%s): %s.',
                                  current_setting('lock_timeout'), coalesce(blockers, 'it has let go since')),
                  HINT = 'idgen''s lease functions hold this lock only while a call runs; a session holding it longer took it through idgen._lease_acquisition_lock() as a superuser: end it with pg_terminate_backend().';
    END;

    -- the first node records the layout; a plain read, so that no caller's
    -- open transaction holds the row
    SELECT * INTO lay FROM idgen.lease_layout;
    IF NOT FOUND THEN
        INSERT INTO idgen.lease_layout (timestamp_bits, worker_bits, sequence_bits, tick_ms, epoch_ms)
        VALUES (p_timestamp_bits, p_worker_bits, p_sequence_bits, p_tick_ms, p_epoch_ms)
        ON CONFLICT (singleton) DO NOTHING;
        SELECT * INTO lay FROM idgen.lease_layout;
    END IF;
    IF (lay.timestamp_bits, lay.worker_bits, lay.sequence_bits, lay.tick_ms, lay.epoch_ms)
          IS DISTINCT FROM (p_timestamp_bits, p_worker_bits, p_sequence_bits, p_tick_ms, p_epoch_ms) THEN
        RAISE EXCEPTION 'Snowflake layout differs from the coordinator''s'
            USING ERRCODE = 'IG006',
                  DETAIL = format('The coordinator''s nodes use %s/%s/%s bits, tick %s ms, epoch %s ms; this node uses %s/%s/%s bits, tick %s ms, epoch %s ms.',
                                  lay.timestamp_bits, lay.worker_bits, lay.sequence_bits, lay.tick_ms, lay.epoch_ms,
                                  p_timestamp_bits, p_worker_bits, p_sequence_bits, p_tick_ms, p_epoch_ms),
                  HINT = 'Every node leasing from one coordinator must use the same idgen.epoch, idgen.tick and bit settings.';
    END IF;

    -- A role's live holdings are capped (idgen.lease_max_per_role, read
    -- from pg_settings, where a placeholder a session set itself without
    -- idgen preloaded never shows), so that one node role cannot lease
    -- every id under made-up holder names.  Superusers are not capped.
    -- The caller holder's own rows are not counted: a node taking its id
    -- back replaces its holding.  Ids whose lock other sessions of the role
    -- hold count too: their holdings may not be committed yet (a session
    -- lets go of an id's lock only when its transaction ends).
    IF NOT (SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = session_user) THEN
        max_held := coalesce((SELECT s.setting::integer FROM pg_settings s
                               WHERE s.name = 'idgen.lease_max_per_role'), 4);
        SELECT count(*) INTO held
          FROM (SELECT l.worker_id::bigint FROM idgen.leases l
                 WHERE l.holder_role = session_user AND l.holder <> p_holder
                   AND l.released_at IS NULL AND l.expires_at > now()
                UNION
                SELECT k.objid::bigint FROM pg_locks k JOIN pg_stat_activity a ON a.pid = k.pid
                 WHERE k.locktype = 'advisory' AND k.granted
                   AND k.database = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())
                   AND k.classid = 7534 AND k.objsubid = 7534
                   AND a.usename = session_user AND k.pid <> pg_backend_pid()) u;
        IF held >= max_held THEN
            PERFORM idgen._lease_acquisition_unlock();
            RAISE EXCEPTION 'role % already holds % worker ids', session_user, held
                USING ERRCODE = 'IG010',
                      DETAIL = format('idgen.lease_max_per_role on the coordinator is %s: no role but a superuser may hold more live leases.', max_held),
                      HINT = 'Give each node its own role, or raise idgen.lease_max_per_role on the coordinator.';
        END IF;
    END IF;

    -- Candidates in order: the static id; else the id this node held last,
    -- then every id without a live (or quarantined) lease of another holder.
    -- Streamed, never materialised: the id space can be 2^30.
    FOR cand IN
        SELECT p_static_id WHERE p_static_id >= 0
        UNION ALL
        SELECT p_prefer_id WHERE p_static_id < 0 AND p_prefer_id >= 0 AND p_prefer_id < cap
        UNION ALL
        SELECT g FROM generate_series(0, cap - 1) g
         WHERE p_static_id < 0 AND g IS DISTINCT FROM p_prefer_id
           AND NOT EXISTS (SELECT 1 FROM idgen.leases l
                            WHERE l.worker_id = g
                              AND (l.holder <> p_holder OR l.holder_role IS DISTINCT FROM session_user)
                              AND l.expires_at + make_interval(secs => p_margin_s) > now())
    LOOP
        SELECT * INTO cur FROM idgen.leases l WHERE l.worker_id = cand FOR UPDATE SKIP LOCKED;
        known := FOUND;
        IF NOT known AND EXISTS (SELECT 1 FROM idgen.leases l WHERE l.worker_id = cand) THEN
            CONTINUE;           -- another transaction is changing its row
        END IF;
        own := known AND cur.holder = p_holder AND cur.holder_role IS NOT DISTINCT FROM session_user;
        IF known AND NOT own
           AND cur.expires_at + make_interval(secs => p_margin_s) > now() THEN
            CONTINUE;           -- live, or within the quarantine after expiry
        END IF;
        IF own THEN
            PERFORM idgen._lease_check_floor(p_local_floor_ms, cur.time_floor_ms, 'p_local_floor_ms');
        END IF;
        IF NOT (CASE WHEN own THEN idgen._lease_take_lock(cand)
                     ELSE idgen._lease_lock(cand) END) THEN
            CONTINUE;           -- a live session still holds it
        END IF;

        worker_id := cand;
        IF own THEN
            previous_floor_ms := greatest(cur.start_floor_ms, p_local_floor_ms);
        ELSE
            previous_floor_ms := coalesce(cur.time_floor_ms, 0);
        END IF;
        expires_at := now() + make_interval(secs => p_ttl_s);
        IF known THEN
            generation := cur.generation + 1;
            UPDATE idgen.leases l
               SET holder = p_holder, holder_pid = p_pid, generation = lease_acquire.generation,
                   acquired_at = now(), renewed_at = now(),
                   expires_at = lease_acquire.expires_at, released_at = NULL,
                   time_floor_ms = greatest(l.time_floor_ms, lease_acquire.previous_floor_ms),
                   holder_role = session_user, start_floor_ms = lease_acquire.previous_floor_ms
             WHERE l.worker_id = cand;
        ELSE
            generation := 1;
            INSERT INTO idgen.leases (worker_id, holder, holder_pid, generation,
                                      acquired_at, renewed_at, expires_at,
                                      holder_role, start_floor_ms)
            VALUES (cand, p_holder, p_pid, 1, now(), now(), lease_acquire.expires_at,
                    session_user, 0)
            ON CONFLICT DO NOTHING;
            IF NOT FOUND THEN
                PERFORM idgen._lease_unlock();
                CONTINUE;       -- taken and released since we looked
            END IF;
        END IF;
        INSERT INTO idgen.lease_history (worker_id, generation, holder, acquired_at, renewed_at, expires_at)
        VALUES (cand, lease_acquire.generation, p_holder, now(), now(), lease_acquire.expires_at);

        -- counted here only: renewals stay O(1) in the number of holders.
        -- Live holdings, and the ids whose lock a session holds: an
        -- acquisition running at the same time has not committed its row
        -- yet, but holds the id's lock already.
        SELECT count(*) INTO in_use
          FROM (SELECT l.worker_id::bigint FROM idgen.leases l
                 WHERE l.released_at IS NULL AND l.expires_at > now()
                UNION
                SELECT k.objid::bigint FROM pg_locks k
                 WHERE k.locktype = 'advisory' AND k.granted
                   AND k.database = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())
                   AND k.classid = 7534 AND k.objsubid = 7534) u;
        capacity := cap;
        PERFORM idgen._lease_acquisition_unlock();
        RETURN;
    END LOOP;
    PERFORM idgen._lease_acquisition_unlock();

    IF p_static_id >= 0 THEN
        SELECT * INTO cur FROM idgen.leases l WHERE l.worker_id = p_static_id;
        RAISE EXCEPTION 'worker id % is held by another node', p_static_id
            USING ERRCODE = 'IG007',
                  DETAIL = format('The lease of %s runs until %s (plus a %s s margin).',
                                  coalesce(cur.holder, 'an unknown session'), coalesce(cur.expires_at::text, 'its session ends'), p_margin_s),
                  HINT = 'Give every node its own idgen.worker_id, or set idgen.worker_id = -1 to lease a free one.';
    END IF;
    RAISE EXCEPTION 'no free worker id: all % ids are leased', cap
        USING ERRCODE = 'IG008',
              DETAIL = 'Every worker id is held by a live lease or is in its quarantine after expiry.',
              HINT = 'Raise idgen.worker_bits (all nodes and the coordinator must agree), or retire nodes.';
END;
$$;

COMMENT ON FUNCTION lease_acquire(text, integer, integer, integer, integer, integer, bigint,
                                  integer, integer, integer, integer, bigint) IS
'Coordinator side, called by nodes'' lease workers: lease a free (or the static) worker id';

CREATE OR REPLACE FUNCTION lease_renew(p_worker_id integer, p_generation bigint, p_holder text,
                            p_ttl_s integer, p_time_floor_ms bigint,
                            OUT expires_at timestamptz, OUT in_use integer)
RETURNS record
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    new_expiry timestamptz;
    renewed    integer;
    recorded   bigint;
BEGIN
    IF p_ttl_s NOT BETWEEN 1 AND 3600 THEN
        RAISE EXCEPTION 'invalid lease TTL: % s', p_ttl_s
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM idgen._lease_check_caller();
    new_expiry := now() + make_interval(secs => p_ttl_s);
    SELECT l.time_floor_ms INTO recorded FROM idgen.leases l WHERE l.worker_id = p_worker_id;
    -- The holding must be the caller's (holder identity and role; a holding
    -- taken before 1.1 recorded no role, and records the renewing one).
    -- Checked before the lock is taken, so a caller can never take the lock
    -- of a holding that is not its own.  Its history row is renewed in the
    -- same statement, only if the holding is.
    WITH l AS (
        UPDATE idgen.leases l
           SET renewed_at = now(), expires_at = new_expiry,
               time_floor_ms = greatest(l.time_floor_ms, p_time_floor_ms),
               holder_role = session_user
         WHERE l.worker_id = p_worker_id AND l.generation = p_generation
           AND l.holder = p_holder AND l.released_at IS NULL
           AND (l.holder_role = session_user OR l.holder_role IS NULL)
        RETURNING l.worker_id
    ), h AS (
        UPDATE idgen.lease_history h SET renewed_at = now(), expires_at = new_expiry
          FROM l
         WHERE h.worker_id = l.worker_id AND h.generation = p_generation
    )
    SELECT count(*) INTO renewed FROM l;
    IF renewed = 0 THEN
        RAISE EXCEPTION 'lease of worker id % generation % is no longer held by this node', p_worker_id, p_generation
            USING ERRCODE = 'IG007';
    END IF;
    -- checked once the holding is known to be the caller's (the error
    -- rolls the renewal back)
    PERFORM idgen._lease_check_floor(p_time_floor_ms, recorded, 'p_time_floor_ms');
    -- after a reconnect (or a coordinator failover) this session may not
    -- hold the id's lock yet; the error rolls the renewal back
    IF NOT idgen._lease_lock(p_worker_id) THEN
        IF NOT idgen._lease_take_lock(p_worker_id) THEN
            RAISE EXCEPTION 'worker id % is locked by another session', p_worker_id
                USING ERRCODE = 'IG007';
        END IF;
    END IF;
    expires_at := new_expiry;
    in_use := NULL;             -- counted at acquisition only
END;
$$;

COMMENT ON FUNCTION lease_renew(integer, bigint, text, integer, bigint) IS
'Coordinator side: extend a lease and record its time horizon';

CREATE OR REPLACE FUNCTION lease_release(p_worker_id integer, p_generation bigint, p_holder text,
                              p_time_floor_ms bigint)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    recorded bigint;
BEGIN
    PERFORM idgen._lease_check_caller();
    -- p_time_floor_ms is what the node actually reached, which may be below
    -- the horizon it reported; never below the floor the holding started
    -- above, which covers every earlier holding
    SELECT greatest(l.time_floor_ms, l.start_floor_ms) INTO recorded
      FROM idgen.leases l WHERE l.worker_id = p_worker_id;
    UPDATE idgen.leases l
       SET released_at = now(), expires_at = least(l.expires_at, now()),
           time_floor_ms = greatest(p_time_floor_ms, l.start_floor_ms)
     WHERE l.worker_id = p_worker_id AND l.generation = p_generation AND l.holder = p_holder
       AND l.released_at IS NULL
       AND (l.holder_role = session_user OR l.holder_role IS NULL);
    IF NOT FOUND THEN
        RAISE EXCEPTION 'lease of worker id % generation % is no longer held by this node', p_worker_id, p_generation
            USING ERRCODE = 'IG007';
    END IF;
    PERFORM idgen._lease_check_floor(p_time_floor_ms, recorded, 'p_time_floor_ms');
    UPDATE idgen.lease_history h SET released_at = now(), expires_at = least(h.expires_at, now())
     WHERE h.worker_id = p_worker_id AND h.generation = p_generation;
    PERFORM idgen._lease_unlock();
END;
$$;

COMMENT ON FUNCTION lease_release(integer, bigint, text, bigint) IS
'Coordinator side: give a lease back at clean shutdown with the floor actually reached';
