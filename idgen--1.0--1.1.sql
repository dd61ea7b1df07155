/* idgen--1.0--1.1.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION idgen UPDATE TO '1.1'" to load this file. \quit

-- Each change to the SQL surface since 1.0, in the same order as in
-- idgen--1.1.sql (the full script a fresh install runs).  After
-- ALTER EXTENSION idgen UPDATE the catalog equals a fresh install of 1.1.

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

    EXECUTE format('SELECT max(%I) FROM %s', col, tbl) INTO col_max;
    -- values the sequence handed out but no row holds yet (or any more)
    -- count too: an application may still insert them
    IF has_sequence_privilege(seq, 'SELECT, USAGE') THEN
        seq_last := pg_sequence_last_value(seq);
    END IF;
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
