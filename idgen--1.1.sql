/* idgen--1.1.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION idgen" to load this file. \quit

-- The script in feature order, each object followed by its COMMENT and its
-- privileges:
--   1. UUIDv7, with its text forms TypeID and ULID
--   2. Snowflake
--   3. Segments, with the conversion of existing columns
--   4. Lease coordinator
--   5. Probes and audits
--   6. Monitoring
-- Every object is created after the objects it uses; this order needs no
-- exception (the audits read the segment and lease tables, the stats view
-- reads probes).  The order of statements touching one object (a REVOKE
-- before a GRANT) is kept as 1.0 had it: idgen--1.0--1.1.sql must give
-- exactly this catalog, the order of ACL entries included.

-- The control file names schema idgen, and CREATE EXTENSION takes a schema
-- of that name if one exists.  idgen's SECURITY DEFINER functions call its
-- own objects by that schema's name, so refuse a schema that someone else
-- could have prepared: one owned by a role that is not a superuser, one in
-- which another role may create objects, or one that already holds objects
-- (the empty schema a DROP EXTENSION idgen leaves behind passes).
DO $idgen_schema_check$
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
    ELSIF EXISTS (SELECT 1 FROM pg_catalog.pg_class WHERE relnamespace = nsp.oid)
       OR EXISTS (SELECT 1 FROM pg_catalog.pg_proc WHERE pronamespace = nsp.oid)
       OR EXISTS (SELECT 1 FROM pg_catalog.pg_type WHERE typnamespace = nsp.oid)
       OR EXISTS (SELECT 1 FROM pg_catalog.pg_operator WHERE oprnamespace = nsp.oid)
       OR EXISTS (SELECT 1 FROM pg_catalog.pg_opclass WHERE opcnamespace = nsp.oid)
       OR EXISTS (SELECT 1 FROM pg_catalog.pg_opfamily WHERE opfnamespace = nsp.oid)
       OR EXISTS (SELECT 1 FROM pg_catalog.pg_collation WHERE collnamespace = nsp.oid)
       OR EXISTS (SELECT 1 FROM pg_catalog.pg_conversion WHERE connamespace = nsp.oid)
       OR EXISTS (SELECT 1 FROM pg_catalog.pg_ts_config WHERE cfgnamespace = nsp.oid)
       OR EXISTS (SELECT 1 FROM pg_catalog.pg_ts_dict WHERE dictnamespace = nsp.oid)
       OR EXISTS (SELECT 1 FROM pg_catalog.pg_ts_parser WHERE prsnamespace = nsp.oid)
       OR EXISTS (SELECT 1 FROM pg_catalog.pg_ts_template WHERE tmplnamespace = nsp.oid)
       OR EXISTS (SELECT 1 FROM pg_catalog.pg_statistic_ext WHERE stxnamespace = nsp.oid)
       OR EXISTS (SELECT 1 FROM pg_catalog.pg_default_acl WHERE defaclnamespace = nsp.oid) THEN
        problem := 'It already holds objects (or default privileges) that idgen did not create.';
    END IF;
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'schema "%" already exists and was not created by idgen', nsp.nspname
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = problem,
                  HINT = pg_catalog.format('Inspect schema %1$I and move or drop what it holds (DROP SCHEMA %1$I), then run CREATE EXTENSION idgen again.',
                                           nsp.nspname);
    END IF;
END
$idgen_schema_check$;

-- Everyone may look up idgen's objects; what each may do with them is
-- granted or revoked beside each object.
GRANT USAGE ON SCHEMA @extschema@ TO PUBLIC;

-- ===========================================================================
-- 1. UUIDv7
--
-- RFC 9562 version 7 UUIDs: time-ordered, strictly increasing across the
-- server when idgen is preloaded; and their text forms TypeID and ULID.
-- Everything here is for everyone.
-- ===========================================================================

CREATE FUNCTION uuidv7()
RETURNS uuid
AS 'MODULE_PATHNAME', 'idgen_uuidv7'
LANGUAGE C VOLATILE PARALLEL SAFE;

-- Qualified, here and in the GRANT: on PostgreSQL 18 an unqualified
-- uuidv7() is pg_catalog's.
COMMENT ON FUNCTION @extschema@.uuidv7() IS
'RFC 9562 version 7 UUID for the current time; strictly increasing across the server when idgen is preloaded';

GRANT EXECUTE ON FUNCTION @extschema@.uuidv7() TO PUBLIC;

CREATE FUNCTION uuidv7(ts timestamptz)
RETURNS uuid
AS 'MODULE_PATHNAME', 'idgen_uuidv7_at'
LANGUAGE C VOLATILE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION uuidv7(timestamptz) IS
'RFC 9562 version 7 UUID for the given time, with random bits (for backfills and range bounds)';

GRANT EXECUTE ON FUNCTION uuidv7(timestamptz) TO PUBLIC;

CREATE FUNCTION uuidv7_min(ts timestamptz)
RETURNS uuid
AS 'MODULE_PATHNAME', 'idgen_uuidv7_min'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION uuidv7_min(timestamptz) IS
'Smallest UUIDv7 idgen.uuidv7() can issue at or after ts, for range scans: WHERE id >= idgen.uuidv7_min(...)';

GRANT EXECUTE ON FUNCTION uuidv7_min(timestamptz) TO PUBLIC;

CREATE FUNCTION uuidv7_time(u uuid)
RETURNS timestamptz
AS 'MODULE_PATHNAME', 'idgen_uuidv7_time'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION uuidv7_time(uuid) IS
'Time embedded in a version 7 UUID, with sub-millisecond precision; NULL for other UUIDs';

GRANT EXECUTE ON FUNCTION uuidv7_time(uuid) TO PUBLIC;

-- ---------------------------------------------------------------------------
-- Text forms: TypeID and ULID
-- ---------------------------------------------------------------------------

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

-- ===========================================================================
-- 2. Snowflake
--
-- 64-bit IDs: time, worker id and sequence in the layout idgen.bit_budget()
-- reports.  The worker id is configured or leased (group 4); issuing one
-- needs idgen preloaded.  Everything here is for everyone.
-- ===========================================================================

CREATE FUNCTION snowflake_next()
RETURNS bigint
AS 'MODULE_PATHNAME', 'idgen_snowflake_next'
LANGUAGE C VOLATILE PARALLEL SAFE;

COMMENT ON FUNCTION snowflake_next() IS
'Next 64-bit Snowflake ID of this server: strictly increasing, refuses rather than duplicate on clock faults';

GRANT EXECUTE ON FUNCTION snowflake_next() TO PUBLIC;

CREATE FUNCTION snowflake_decode(id bigint)
RETURNS TABLE(ts timestamptz, worker_id int, sequence int)
AS 'MODULE_PATHNAME', 'idgen_snowflake_decode'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION snowflake_decode(bigint) IS
'Time, worker id and sequence of a Snowflake ID under the layout in force';

GRANT EXECUTE ON FUNCTION snowflake_decode(bigint) TO PUBLIC;

CREATE FUNCTION snowflake_min(ts timestamptz)
RETURNS bigint
AS 'MODULE_PATHNAME', 'idgen_snowflake_min'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION snowflake_min(timestamptz) IS
'Smallest Snowflake ID of the tick containing ts, for range scans: WHERE id >= idgen.snowflake_min(...)';

GRANT EXECUTE ON FUNCTION snowflake_min(timestamptz) TO PUBLIC;

CREATE FUNCTION bit_budget(OUT timestamp_bits int,
                           OUT worker_bits int,
                           OUT sequence_bits int,
                           OUT epoch timestamptz,
                           OUT tick interval,
                           OUT exhausted_at timestamptz,
                           OUT years_left float8,
                           OUT ids_per_second_per_worker bigint,
                           OUT worker_capacity bigint,
                           OUT workers_in_use int)
RETURNS record
AS 'MODULE_PATHNAME', 'idgen_bit_budget'
LANGUAGE C VOLATILE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION bit_budget() IS
'The Snowflake layout in force: bits per field, epoch, tick, when the timestamp bits run out, capacity';

GRANT EXECUTE ON FUNCTION bit_budget() TO PUBLIC;

-- ===========================================================================
-- 3. Segments
--
-- Gap-tolerant increasing numbers per tag, granted to each server in ranges
-- by its background worker, with an outbox of every grant and burn.
-- Numbers only for roles the DBA grants EXECUTE on segment_next; tags are
-- managed by superusers or roles granted segment_create/segment_drop.  No
-- role is granted DML on the tables.  Then the conversion of existing
-- sequence-fed columns to Snowflake or segment numbers.
-- ===========================================================================

-- One row per tag.  Written only by idgen's background worker (grants) and
-- by segment_create/segment_drop.
CREATE TABLE segment_alloc (
    tag             text PRIMARY KEY,
    start_value     bigint NOT NULL,
    next_value      bigint NOT NULL,            -- next number never granted
    step            integer NOT NULL CHECK (step > 0),  -- the tag's (minimum) step
    current_step    bigint NOT NULL CHECK (current_step > 0),  -- step in use
    last_timeline   integer NOT NULL,           -- timeline of the last grant (or the create)
    last_grant_at   timestamptz,
    rate_per_second float8,                     -- observed at the last grant
    grants          bigint NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- The primary grants below this only once its standbys have it; a
    -- promoted standby burns up to it.  NULL: no grant since 1.0.
    fence           bigint,
    CHECK (tag <> '' AND octet_length(tag) <= 63),
    CHECK (next_value >= start_value),
    CONSTRAINT segment_alloc_fence_check CHECK (fence >= next_value)
);

COMMENT ON TABLE segment_alloc IS
'Segment tags: the next number never granted, the step and the timeline of the last grant';

REVOKE ALL ON segment_alloc FROM PUBLIC;

SELECT pg_catalog.pg_extension_config_dump('segment_alloc', '');

-- The outbox: every grant and every burn, committed in the same transaction
-- as the change to segment_alloc.  Ranges are [range_start, range_end).
CREATE TABLE segment_events (
    event_id    bigserial PRIMARY KEY,
    tag         text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('create', 'grant', 'burn', 'drop')),
    range_start bigint,
    range_end   bigint,
    node        text NOT NULL,      -- system identifier:port of the granting server
    timeline    integer NOT NULL,
    at          timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX segment_events_tag_idx ON segment_events (tag, range_start);

COMMENT ON TABLE segment_events IS
'Outbox of segment grants and failover burns; read it in event_id order';

REVOKE ALL ON segment_events FROM PUBLIC;

SELECT pg_catalog.pg_extension_config_dump('segment_events', '');
SELECT pg_catalog.pg_extension_config_dump('segment_events_event_id_seq', '');

CREATE FUNCTION segment_next(tag text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'idgen_segment_next'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

COMMENT ON FUNCTION segment_next(text) IS
'Next number of a segment tag: increasing across the server, never handed out twice, gaps possible';

REVOKE EXECUTE ON FUNCTION segment_next(text) FROM PUBLIC;

CREATE FUNCTION segment_next(tag text, n integer)
RETURNS bigint
AS 'MODULE_PATHNAME', 'idgen_segment_next_block'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

COMMENT ON FUNCTION segment_next(text, integer) IS
'First of n consecutive numbers of a segment tag reserved for the caller (1 <= n <= the tag''s step)';

REVOKE EXECUTE ON FUNCTION segment_next(text, integer) FROM PUBLIC;

CREATE FUNCTION _current_timeline()
RETURNS integer
AS 'MODULE_PATHNAME', 'idgen_current_timeline'
LANGUAGE C VOLATILE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION _current_timeline() IS 'Internal: the timeline this primary writes WAL on';

REVOKE EXECUTE ON FUNCTION _current_timeline() FROM PUBLIC;

CREATE FUNCTION _segment_exists(tag text)
RETURNS boolean
LANGUAGE sql STABLE STRICT PARALLEL SAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT EXISTS (SELECT 1 FROM idgen.segment_alloc a WHERE a.tag = _segment_exists.tag) $$;

COMMENT ON FUNCTION _segment_exists(text) IS 'Internal: whether a segment tag exists (for segment_next at the tag limit)';

CREATE FUNCTION _segment_forget(tag text)
RETURNS void
AS 'MODULE_PATHNAME', 'idgen_segment_forget'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;

COMMENT ON FUNCTION _segment_forget(text) IS 'Internal: forget a dropped tag''s buffered ranges';

REVOKE EXECUTE ON FUNCTION _segment_forget(text) FROM PUBLIC;

CREATE FUNCTION segment_create(tag text, start bigint DEFAULT 1, step integer DEFAULT 1000)
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

COMMENT ON FUNCTION segment_create(text, bigint, integer) IS
'Create a segment tag whose numbers start at start and are granted step at a time';

REVOKE EXECUTE ON FUNCTION segment_create(text, bigint, integer) FROM PUBLIC;

CREATE FUNCTION segment_drop(tag text)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    dropped idgen.segment_alloc;
BEGIN
    IF tag IS NULL THEN
        RAISE EXCEPTION 'segment tag must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    DELETE FROM idgen.segment_alloc a WHERE a.tag = segment_drop.tag RETURNING * INTO dropped;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'segment tag "%" does not exist', tag USING ERRCODE = 'undefined_object';
    END IF;
    INSERT INTO idgen.segment_events (tag, kind, range_start, range_end, node, timeline)
    VALUES (tag, 'drop', dropped.start_value, dropped.next_value, 'sql', 0);
    PERFORM idgen._segment_forget(tag);
END;
$$;

COMMENT ON FUNCTION segment_drop(text) IS
'Drop a segment tag and the ranges this server has buffered for it';

REVOKE EXECUTE ON FUNCTION segment_drop(text) FROM PUBLIC;

CREATE FUNCTION segment_buffers(OUT tag text,
                                OUT ranges_buffered int,
                                OUT current_start bigint,
                                OUT current_end bigint,
                                OUT current_next bigint,
                                OUT next_start bigint,
                                OUT next_end bigint,
                                OUT step_in_use bigint,
                                OUT grants bigint,
                                OUT waiters int)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'idgen_segment_buffers'
LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED;

COMMENT ON FUNCTION segment_buffers() IS 'Ranges this server has buffered per segment tag (behind idgen.segments)';

-- For everyone, behind the segments view.  Revoked, then granted, as 1.0
-- did: that order is the order of the entries in its ACL.
REVOKE EXECUTE ON FUNCTION segment_buffers() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION segment_buffers() TO PUBLIC;

CREATE VIEW segments AS
SELECT a.tag,
       a.current_step AS step,
       coalesce(b.ranges_buffered, 0) AS ranges_buffered,
       b.current_start, b.current_end, b.current_next,
       b.next_start, b.next_end,
       a.next_value AS next_ungranted,
       a.last_grant_at,
       a.last_timeline,
       a.grants
FROM segment_alloc a
LEFT JOIN segment_buffers() b ON b.tag = a.tag;

COMMENT ON VIEW segments IS
'Segment tags with the step in use, the ranges buffered in this server and the last grant';

GRANT SELECT ON segments TO PUBLIC;

-- ---------------------------------------------------------------------------
-- Segments and Snowflake: converting existing columns
--
-- convert_to_snowflake() and convert_to_segment() switch a bigint column fed
-- by a sequence (bigserial, DEFAULT nextval(...), GENERATED ... AS IDENTITY)
-- to a generator.  They run with the caller's rights (SECURITY INVOKER): the
-- caller must own the table, and for a segment tag be allowed to run
-- segment_create() and segment_next(); each is checked up front for a clear
-- error.  So they let no one do what they could not do by hand.
-- ---------------------------------------------------------------------------

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

-- ===========================================================================
-- 4. Lease coordinator
--
-- Worker-id leases, the coordinator side.  Any server with CREATE
-- EXTENSION idgen can be the coordinator.  Nodes' lease workers call
-- lease_acquire/lease_renew/lease_release over a session that holds a
-- session-level lock on its leased worker id, in a lock space only these
-- functions reach.  Nothing here is writable or callable by ordinary users:
-- the tables are written only by the lease functions (SECURITY DEFINER), and
-- node roles get EXECUTE on those three functions and nothing else.
-- ===========================================================================

-- The Snowflake layout the coordinator's nodes use (one row).
CREATE TABLE lease_layout (
    singleton      boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    timestamp_bits integer NOT NULL,
    worker_bits    integer NOT NULL,
    sequence_bits  integer NOT NULL,
    tick_ms        integer NOT NULL,
    epoch_ms       bigint NOT NULL,
    recorded_at    timestamptz NOT NULL DEFAULT now()
);

REVOKE ALL ON lease_layout FROM PUBLIC;

-- The current holding of each worker id ever leased.
CREATE TABLE leases (
    worker_id     integer PRIMARY KEY,
    holder        text NOT NULL,        -- system identifier/host:port of the node
    holder_pid    integer NOT NULL,
    generation    bigint NOT NULL,      -- bumped on every new holding
    acquired_at   timestamptz NOT NULL,
    renewed_at    timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL,
    released_at   timestamptz,
    time_floor_ms bigint NOT NULL DEFAULT 0, -- highest Unix ms the holders may have issued
    holder_role   name,                 -- session_user that took the holding (NULL: before 1.1)
    start_floor_ms bigint NOT NULL DEFAULT 0 -- the floor the current holding started above
);

REVOKE ALL ON leases FROM PUBLIC;

-- One row per holding, for audits (idgen.audit_leases()).
CREATE TABLE lease_history (
    worker_id     integer NOT NULL,
    generation    bigint NOT NULL,
    holder        text NOT NULL,
    acquired_at   timestamptz NOT NULL,
    renewed_at    timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL,
    released_at   timestamptz,
    PRIMARY KEY (worker_id, generation)
);

REVOKE ALL ON lease_history FROM PUBLIC;

-- None of the three is marked for pg_dump (pg_extension_config_dump): they
-- are the live state of this server as a coordinator (and its audit trail),
-- not configuration.  A restored copy must not make its server treat the
-- source's holders as live, and its own lease worker writes them from the
-- moment CREATE EXTENSION has run, so restored rows would collide with its
-- rows (a sectioned or parallel pg_restore into a running server).

-- The coordinator's lease locks (src/lease_locks.c): lock tags no SQL
-- outside these functions can take, so that no role able to connect can
-- block leasing.  Only the lease functions below call them.
CREATE FUNCTION _lease_lock(worker_id integer)
RETURNS boolean
AS 'MODULE_PATHNAME', 'idgen_lease_lock'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;

COMMENT ON FUNCTION _lease_lock(integer) IS
'Internal: take this session''s lock on a leased worker id without waiting';

REVOKE EXECUTE ON FUNCTION _lease_lock(integer) FROM PUBLIC;

CREATE FUNCTION _lease_unlock()
RETURNS void
AS 'MODULE_PATHNAME', 'idgen_lease_unlock'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION _lease_unlock() IS
'Internal: release this session''s worker-id lock';

REVOKE EXECUTE ON FUNCTION _lease_unlock() FROM PUBLIC;

CREATE FUNCTION _lease_acquisition_lock()
RETURNS void
AS 'MODULE_PATHNAME', 'idgen_lease_acquisition_lock'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION _lease_acquisition_lock() IS
'Internal: serialise worker-id acquisitions, waiting at most lock_timeout';

REVOKE EXECUTE ON FUNCTION _lease_acquisition_lock() FROM PUBLIC;

CREATE FUNCTION _lease_acquisition_unlock()
RETURNS void
AS 'MODULE_PATHNAME', 'idgen_lease_acquisition_unlock'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION _lease_acquisition_unlock() IS
'Internal: release the acquisition lock before the transaction ends';

REVOKE EXECUTE ON FUNCTION _lease_acquisition_unlock() FROM PUBLIC;

CREATE FUNCTION _lease_check_caller()
RETURNS void
AS 'MODULE_PATHNAME', 'idgen_lease_check_caller'
LANGUAGE C STABLE PARALLEL UNSAFE;

COMMENT ON FUNCTION _lease_check_caller() IS
'Internal: refuse a lease call made in a security-restricted operation (another role''s code)';

REVOKE EXECUTE ON FUNCTION _lease_check_caller() FROM PUBLIC;

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

-- The lease functions are SECURITY DEFINER: nodes' roles get EXECUTE on
-- them and nothing else.  A holding belongs to the holder identity (the
-- node's system identifier/host:port) AND the role that took it
-- (session_user): only that role can renew or release it, or take the id
-- back without waiting for its quarantine.  Another role's code that a
-- session of that role runs in a security-restricted operation (a probe's
-- scan as its table's owner) is refused (_lease_check_caller).  Every argument is the
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

REVOKE EXECUTE ON FUNCTION
    lease_acquire(text, integer, integer, integer, integer, integer, bigint,
                  integer, integer, integer, integer, bigint) FROM PUBLIC;

-- O(1) in the number of holders: one statement that updates the holding
-- and its history row by primary key, and a lookup in this session's own
-- lock table (the pg_locks scan of _lease_take_lock runs only when the
-- session does not hold the id's lock yet).
CREATE FUNCTION lease_renew(p_worker_id integer, p_generation bigint, p_holder text,
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

REVOKE EXECUTE ON FUNCTION lease_renew(integer, bigint, text, integer, bigint) FROM PUBLIC;

CREATE FUNCTION lease_release(p_worker_id integer, p_generation bigint, p_holder text,
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

REVOKE EXECUTE ON FUNCTION lease_release(integer, bigint, text, bigint) FROM PUBLIC;

-- ===========================================================================
-- 5. Probes and audits
--
-- Uniqueness probes: registered bigint or uuid columns are checked for
-- duplicate IDs, each run as its table's owner.  Audits: overlapping lease
-- holdings and overlapping segment grants, from the records of groups 3 and 4.
-- For the DBA: probe_register/probe_unregister (for the caller's own tables,
-- through their SECURITY DEFINER twins) and the audits (SECURITY DEFINER) are
-- delegated by granting EXECUTE on them; nobody is granted DML on probes.
-- probe_run() and the internal helpers are for superusers only; probe_status
-- is for everyone.
-- ===========================================================================

-- Registered probes and their results (they persist across restarts).
-- Written only by probe_register/probe_unregister (SECURITY DEFINER) and
-- probe_run; no role is ever granted DML on it.
CREATE TABLE probes (
    tbl              regclass NOT NULL,
    col              name NOT NULL,
    "window"         interval NOT NULL
                     CONSTRAINT probes_window_check
                     CHECK ("window" > interval '0' AND "window" <= interval '10 years'),
    kind             text NOT NULL CHECK (kind IN ('snowflake', 'uuidv7', 'segment')),
    indexed          boolean NOT NULL,
    segment_tag      text,                -- segment probes: the tag in the column's default
    high_water       bigint,              -- segment probes: largest value seen by the last run
    registered_at    timestamptz NOT NULL DEFAULT now(),
    last_run_at      timestamptz,
    last_ids_checked bigint,
    last_duplicates  bigint,
    last_duration_ms float8,
    runs             bigint NOT NULL DEFAULT 0,
    duplicates_found bigint NOT NULL DEFAULT 0,
    owner            regrole,             -- the table's owner at registration: runs run as it
    last_error       text,                -- why the last run of this probe failed or was refused
    last_error_at    timestamptz,
    PRIMARY KEY (tbl, col)
);

REVOKE ALL ON probes FROM PUBLIC;

SELECT pg_catalog.pg_extension_config_dump('probes', '');

-- probe_register and probe_unregister (src/probe.c, not SECURITY DEFINER)
-- call their SECURITY DEFINER twins below with the role that called them,
-- so that EXECUTE is all a delegated role needs and the role that must own
-- the table is the caller itself, wherever the call comes from (inside a
-- SECURITY DEFINER function the session's role is not the caller: a table
-- owner's policy or index expression may run in a superuser's session).
CREATE FUNCTION probe_register(tbl regclass, col name, "window" interval DEFAULT '1 hour')
RETURNS void
AS 'MODULE_PATHNAME', 'idgen_probe_as_caller'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION probe_register(regclass, name, interval) IS
'Register a uniqueness probe on a bigint (Snowflake/segment) or uuid (UUIDv7) column of a table the caller owns';

REVOKE EXECUTE ON FUNCTION probe_register(regclass, name, interval) FROM PUBLIC;

CREATE FUNCTION probe_unregister(tbl regclass, col name)
RETURNS void
AS 'MODULE_PATHNAME', 'idgen_probe_as_caller'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION probe_unregister(regclass, name) IS 'Remove a uniqueness probe on a table the caller owns';

REVOKE EXECUTE ON FUNCTION probe_unregister(regclass, name) FROM PUBLIC;

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

REVOKE EXECUTE ON FUNCTION _probe_register(regrole, regclass, name, interval) FROM PUBLIC;

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

REVOKE EXECUTE ON FUNCTION _probe_unregister(regrole, regclass, name) FROM PUBLIC;

-- The lower bound of a probe's scan, as a literal of the column's type.
-- PARALLEL UNSAFE: its exception block is a subtransaction.
CREATE FUNCTION _probe_lower_bound(p idgen.probes)
RETURNS text
LANGUAGE plpgsql STABLE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    since timestamptz := now() - p."window";
BEGIN
    IF p.kind = 'snowflake' THEN
        BEGIN
            RETURN idgen.snowflake_min(greatest(since, (SELECT epoch FROM idgen.bit_budget())))::text;
        EXCEPTION WHEN object_not_in_prerequisite_state THEN
            RETURN '0';
        END;
    ELSIF p.kind = 'uuidv7' THEN
        RETURN idgen.uuidv7_min(greatest(since, '1970-01-01 00:00:00+00'))::text;
    ELSE
        RETURN coalesce(p.high_water, -9223372036854775808)::text;
    END IF;
END;
$$;

COMMENT ON FUNCTION _probe_lower_bound(probes) IS 'Internal: the lower bound of a probe''s scan';

REVOKE EXECUTE ON FUNCTION _probe_lower_bound(probes) FROM PUBLIC;

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

REVOKE EXECUTE ON FUNCTION _probe_scan(regclass, name, text, regrole, text, int8range[]) FROM PUBLIC;

-- Not SECURITY DEFINER: for superusers (and the probe worker).  Each probe
-- runs as its table's owner (_probe_scan); a probe that is refused or fails
-- records why in last_error and does not stop the others.
CREATE FUNCTION probe_run()
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

REVOKE EXECUTE ON FUNCTION probe_run() FROM PUBLIC;

-- A segment probe's high-water mark is the largest value in its column:
-- shown only to roles that may read the column (as pg_stats does).
CREATE VIEW probe_status AS
SELECT p.tbl, p.col, p.kind, p."window", p.indexed, p.last_run_at,
       p.last_ids_checked AS ids_checked, p.last_duplicates AS duplicates,
       p.last_duration_ms AS duration_ms, p.runs, p.duplicates_found,
       CASE WHEN pg_catalog.has_column_privilege(p.tbl, a.attnum, 'SELECT')
            THEN p.high_water END AS high_water,
       p.owner, p.last_error AS error, p.last_error_at AS error_at
FROM probes p
LEFT JOIN pg_catalog.pg_attribute a
       ON a.attrelid = p.tbl AND a.attname = p.col AND NOT a.attisdropped;

COMMENT ON VIEW probe_status IS
'Uniqueness probes: the last run of each, the duplicates found so far and why the last run failed';

GRANT SELECT ON probe_status TO PUBLIC;

CREATE FUNCTION audit_leases()
RETURNS TABLE(worker_id integer, holder_a text, generation_a bigint,
              holder_b text, generation_b bigint, overlap tstzrange)
LANGUAGE sql STABLE PARALLEL SAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT a.worker_id, a.holder, a.generation, b.holder, b.generation,
           tstzrange(a.acquired_at, coalesce(a.released_at, a.expires_at))
         * tstzrange(b.acquired_at, coalesce(b.released_at, b.expires_at))
      FROM idgen.lease_history a
      JOIN idgen.lease_history b
        ON a.worker_id = b.worker_id AND a.generation < b.generation
       -- a node that restarts retakes its own id at once; its earlier
       -- holding shares its data directory and state: not a collision
       AND a.holder <> b.holder
     WHERE tstzrange(a.acquired_at, coalesce(a.released_at, a.expires_at))
        && tstzrange(b.acquired_at, coalesce(b.released_at, b.expires_at))
     ORDER BY 1, 3, 5
$$;

COMMENT ON FUNCTION audit_leases() IS
'Holdings of one worker id that overlap in time, from the lease records';

REVOKE EXECUTE ON FUNCTION audit_leases() FROM PUBLIC;

CREATE FUNCTION audit_segments()
RETURNS TABLE(tag text, event_a bigint, range_a int8range, node_a text,
              event_b bigint, range_b int8range, node_b text)
LANGUAGE sql STABLE PARALLEL SAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT a.tag, a.event_id, int8range(a.range_start, a.range_end), a.node,
           b.event_id, int8range(b.range_start, b.range_end), b.node
      FROM idgen.segment_events a
      JOIN idgen.segment_events b
        ON a.tag = b.tag AND a.event_id < b.event_id
     WHERE a.kind = 'grant' AND b.kind = 'grant'
       AND int8range(a.range_start, a.range_end) && int8range(b.range_start, b.range_end)
     ORDER BY 1, 2, 5
$$;

COMMENT ON FUNCTION audit_segments() IS
'Granted segment ranges of one tag that overlap, from the outbox';

REVOKE EXECUTE ON FUNCTION audit_segments() FROM PUBLIC;

-- ===========================================================================
-- 6. Monitoring
--
-- The stats view (counters in the shape monitoring exporters scrape, the
-- probes' included) and the status view (this server's worker id, lease,
-- time floor and clock), each over a function of the same name.  For
-- everyone.
-- ===========================================================================

CREATE FUNCTION stats(OUT metric text,
                      OUT labels jsonb,
                      OUT value bigint,
                      OUT scope text,
                      OUT help text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'idgen_stats'
LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED;

COMMENT ON FUNCTION stats() IS 'Counters behind the idgen.stats view';

GRANT EXECUTE ON FUNCTION stats() TO PUBLIC;

CREATE VIEW stats AS
SELECT metric, labels, value, scope, help FROM stats()
UNION ALL
SELECT 'idgen_probe_runs_total', jsonb_build_object('table', p.tbl::text, 'column', p.col::text),
       p.runs, 'database', 'Runs of the uniqueness probe on this column.'
FROM probes p
UNION ALL
SELECT 'idgen_probe_duplicates_total', jsonb_build_object('table', p.tbl::text, 'column', p.col::text),
       p.duplicates_found, 'database', 'Duplicate IDs the uniqueness probe has found on this column (summed over runs).'
FROM probes p
UNION ALL
SELECT 'idgen_probe_ids_checked', jsonb_build_object('table', p.tbl::text, 'column', p.col::text),
       coalesce(p.last_ids_checked, 0), 'database', 'IDs the last probe run checked on this column.'
FROM probes p;

COMMENT ON VIEW stats IS
'idgen counters, one row per metric and label set, in the shape monitoring exporters scrape';

GRANT SELECT ON stats TO PUBLIC;

CREATE FUNCTION status(OUT worker_id int,
                       OUT lease_state text,
                       OUT lease_expires_at timestamptz,
                       OUT lease_generation bigint,
                       OUT lease_deadline_ms bigint,
                       OUT lease_error text,
                       OUT workers_in_use int,
                       OUT last_issued_at timestamptz,
                       OUT time_floor timestamptz,
                       OUT snowflake_problem text,
                       OUT clock_synchronised bool,
                       OUT clock_state text,
                       OUT clock_est_error_us bigint,
                       OUT clock_max_error_us bigint,
                       OUT leap_second_pending bool,
                       OUT require_clock_sync bool)
RETURNS record
AS 'MODULE_PATHNAME', 'idgen_status'
LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED;

COMMENT ON FUNCTION status() IS 'One row of operational state behind the idgen.status view';

GRANT EXECUTE ON FUNCTION status() TO PUBLIC;

CREATE VIEW status AS SELECT * FROM status();

COMMENT ON VIEW status IS
'Operational state of this server: worker id and its lease, time floor, clock discipline';

GRANT SELECT ON status TO PUBLIC;
