/* idgen--1.1.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION idgen" to load this file. \quit

-- ---------------------------------------------------------------------------
-- UUIDv7
-- ---------------------------------------------------------------------------

CREATE FUNCTION uuidv7()
RETURNS uuid
AS 'MODULE_PATHNAME', 'idgen_uuidv7'
LANGUAGE C VOLATILE PARALLEL SAFE;

-- Qualified: on PostgreSQL 18 an unqualified uuidv7() is pg_catalog's.
COMMENT ON FUNCTION @extschema@.uuidv7() IS
'RFC 9562 version 7 UUID for the current time; strictly increasing across the server when idgen is preloaded';

CREATE FUNCTION uuidv7(ts timestamptz)
RETURNS uuid
AS 'MODULE_PATHNAME', 'idgen_uuidv7_at'
LANGUAGE C VOLATILE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION uuidv7(timestamptz) IS
'RFC 9562 version 7 UUID for the given time, with random bits (for backfills and range bounds)';

CREATE FUNCTION uuidv7_min(ts timestamptz)
RETURNS uuid
AS 'MODULE_PATHNAME', 'idgen_uuidv7_min'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION uuidv7_min(timestamptz) IS
'Smallest UUIDv7 idgen.uuidv7() can issue at or after ts, for range scans: WHERE id >= idgen.uuidv7_min(...)';

CREATE FUNCTION uuidv7_time(u uuid)
RETURNS timestamptz
AS 'MODULE_PATHNAME', 'idgen_uuidv7_time'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION uuidv7_time(uuid) IS
'Time embedded in a version 7 UUID, with sub-millisecond precision; NULL for other UUIDs';

-- ---------------------------------------------------------------------------
-- Snowflake
-- ---------------------------------------------------------------------------

CREATE FUNCTION snowflake_next()
RETURNS bigint
AS 'MODULE_PATHNAME', 'idgen_snowflake_next'
LANGUAGE C VOLATILE PARALLEL SAFE;

COMMENT ON FUNCTION snowflake_next() IS
'Next 64-bit Snowflake ID of this server: strictly increasing, refuses rather than duplicate on clock faults';

CREATE FUNCTION snowflake_decode(id bigint)
RETURNS TABLE(ts timestamptz, worker_id int, sequence int)
AS 'MODULE_PATHNAME', 'idgen_snowflake_decode'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION snowflake_decode(bigint) IS
'Time, worker id and sequence of a Snowflake ID under the layout in force';

CREATE FUNCTION snowflake_min(ts timestamptz)
RETURNS bigint
AS 'MODULE_PATHNAME', 'idgen_snowflake_min'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION snowflake_min(timestamptz) IS
'Smallest Snowflake ID of the tick containing ts, for range scans: WHERE id >= idgen.snowflake_min(...)';

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

-- ---------------------------------------------------------------------------
-- Segments
-- ---------------------------------------------------------------------------

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
    CHECK (tag <> '' AND octet_length(tag) <= 63),
    CHECK (next_value >= start_value)
);

COMMENT ON TABLE segment_alloc IS
'Segment tags: the next number never granted, the step and the timeline of the last grant';

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

SELECT pg_catalog.pg_extension_config_dump('segment_alloc', '');
SELECT pg_catalog.pg_extension_config_dump('segment_events', '');
SELECT pg_catalog.pg_extension_config_dump('segment_events_event_id_seq', '');

CREATE FUNCTION segment_next(tag text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'idgen_segment_next'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

COMMENT ON FUNCTION segment_next(text) IS
'Next number of a segment tag: increasing across the server, never handed out twice, gaps possible';

CREATE FUNCTION _current_timeline()
RETURNS integer
AS 'MODULE_PATHNAME', 'idgen_current_timeline'
LANGUAGE C VOLATILE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION _current_timeline() IS 'Internal: the timeline this primary writes WAL on';

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
        INSERT INTO idgen.segment_alloc (tag, start_value, next_value, step, current_step, last_timeline)
        VALUES (tag, start, start, step, step, idgen._current_timeline());
    EXCEPTION WHEN unique_violation THEN
        RAISE EXCEPTION 'segment tag "%" already exists', tag
            USING ERRCODE = 'duplicate_object',
                  HINT = 'Use the existing tag, or drop it first with idgen.segment_drop().';
    END;
    INSERT INTO idgen.segment_events (tag, kind, range_start, range_end, node, timeline)
    VALUES (tag, 'create', start, start, 'sql', idgen._current_timeline());
END;
$$;

COMMENT ON FUNCTION segment_create(text, bigint, integer) IS
'Create a segment tag whose numbers start at start and are granted step at a time';

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

-- ---------------------------------------------------------------------------
-- Worker-id leases (the coordinator side)
--
-- Any server with CREATE EXTENSION idgen can be the coordinator.  Nodes'
-- lease workers call lease_acquire/lease_renew/lease_release over a session
-- that holds one session-level advisory lock per leased worker id.  Nothing
-- here is writable or callable by ordinary users.
-- ---------------------------------------------------------------------------

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
    time_floor_ms bigint NOT NULL DEFAULT 0  -- highest Unix ms the holders may have issued
);

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

SELECT pg_catalog.pg_extension_config_dump('lease_layout', '');
SELECT pg_catalog.pg_extension_config_dump('leases', '');
SELECT pg_catalog.pg_extension_config_dump('lease_history', '');

-- Advisory-lock key space: (classid 0x1D6E, objid = worker id).
CREATE FUNCTION lease_acquire(p_holder text, p_pid integer,
                              p_timestamp_bits integer, p_worker_bits integer,
                              p_sequence_bits integer, p_tick_ms integer,
                              p_epoch_ms bigint,
                              p_ttl_s integer, p_margin_s integer,
                              p_static_id integer, p_prefer_id integer,
                              OUT worker_id integer, OUT generation bigint,
                              OUT expires_at timestamptz,
                              OUT previous_floor_ms bigint,
                              OUT in_use integer, OUT capacity integer)
RETURNS record
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    lay   idgen.lease_layout;
    cap   integer := (1 << p_worker_bits);
    cand  integer;
    cur   idgen.leases;
BEGIN
    -- simultaneous first boots: one acquisition at a time (a key of its
    -- own: (7534, id) are the holders' locks)
    PERFORM pg_advisory_xact_lock(7535, 0);

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
                            WHERE l.worker_id = g AND l.holder <> p_holder
                              AND l.expires_at + make_interval(secs => p_margin_s) > now())
    LOOP
        SELECT * INTO cur FROM idgen.leases l WHERE l.worker_id = cand FOR UPDATE;
        IF FOUND AND cur.holder <> p_holder
           AND cur.expires_at + make_interval(secs => p_margin_s) > now() THEN
            CONTINUE;           -- live, or within the quarantine after expiry
        END IF;
        IF NOT pg_try_advisory_lock(7534, cand) THEN
            CONTINUE;           -- a live session still holds it
        END IF;

        worker_id := cand;
        previous_floor_ms := coalesce(cur.time_floor_ms, 0);
        expires_at := now() + make_interval(secs => p_ttl_s);
        IF FOUND THEN
            generation := cur.generation + 1;
            UPDATE idgen.leases l
               SET holder = p_holder, holder_pid = p_pid, generation = lease_acquire.generation,
                   acquired_at = now(), renewed_at = now(),
                   expires_at = lease_acquire.expires_at, released_at = NULL
             WHERE l.worker_id = cand;
        ELSE
            generation := 1;
            INSERT INTO idgen.leases (worker_id, holder, holder_pid, generation,
                                      acquired_at, renewed_at, expires_at)
            VALUES (cand, p_holder, p_pid, 1, now(), now(), lease_acquire.expires_at);
        END IF;
        INSERT INTO idgen.lease_history (worker_id, generation, holder, acquired_at, renewed_at, expires_at)
        VALUES (cand, lease_acquire.generation, p_holder, now(), now(), lease_acquire.expires_at);

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

CREATE FUNCTION lease_renew(p_worker_id integer, p_generation bigint, p_holder text,
                            p_ttl_s integer, p_time_floor_ms bigint,
                            OUT expires_at timestamptz, OUT in_use integer)
RETURNS record
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    new_expiry timestamptz := now() + make_interval(secs => p_ttl_s);
BEGIN
    -- after a reconnect (or a coordinator failover) this session may not
    -- hold the advisory lock yet
    IF NOT EXISTS (SELECT 1 FROM pg_locks
                    WHERE locktype = 'advisory' AND pid = pg_backend_pid()
                      AND classid = 7534 AND objid = p_worker_id AND granted)
       AND NOT pg_try_advisory_lock(7534, p_worker_id) THEN
        RAISE EXCEPTION 'worker id % is locked by another session', p_worker_id
            USING ERRCODE = 'IG007';
    END IF;
    UPDATE idgen.leases l
       SET renewed_at = now(), expires_at = new_expiry,
           time_floor_ms = greatest(l.time_floor_ms, p_time_floor_ms)
     WHERE l.worker_id = p_worker_id AND l.generation = p_generation
       AND l.holder = p_holder AND l.released_at IS NULL;
    IF NOT FOUND THEN
        PERFORM pg_advisory_unlock(7534, p_worker_id);
        RAISE EXCEPTION 'lease of worker id % generation % is no longer held by this node', p_worker_id, p_generation
            USING ERRCODE = 'IG007';
    END IF;
    UPDATE idgen.lease_history h SET renewed_at = now(), expires_at = new_expiry
     WHERE h.worker_id = p_worker_id AND h.generation = p_generation;
    expires_at := new_expiry;
    SELECT count(*) INTO in_use FROM idgen.leases l
     WHERE l.released_at IS NULL AND l.expires_at > now();
END;
$$;

CREATE FUNCTION lease_release(p_worker_id integer, p_generation bigint, p_holder text,
                              p_time_floor_ms bigint)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- p_time_floor_ms is what the node actually reached (at least the floor
    -- it took the id over with), which may be below the horizon it reported
    UPDATE idgen.leases l
       SET released_at = now(), expires_at = least(l.expires_at, now()),
           time_floor_ms = p_time_floor_ms
     WHERE l.worker_id = p_worker_id AND l.generation = p_generation AND l.holder = p_holder;
    UPDATE idgen.lease_history h SET released_at = now(), expires_at = least(h.expires_at, now())
     WHERE h.worker_id = p_worker_id AND h.generation = p_generation;
    PERFORM pg_advisory_unlock(7534, p_worker_id);
END;
$$;

-- ---------------------------------------------------------------------------
-- Uniqueness probe and audits
-- ---------------------------------------------------------------------------

-- Registered probes and their results (they persist across restarts).
CREATE TABLE probes (
    tbl              regclass NOT NULL,
    col              name NOT NULL,
    "window"         interval NOT NULL CHECK ("window" > interval '0'),
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
    PRIMARY KEY (tbl, col)
);

SELECT pg_catalog.pg_extension_config_dump('probes', '');

CREATE FUNCTION probe_register(tbl regclass, col name, "window" interval DEFAULT '1 hour')
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    typ      regtype;
    dflt     text;
    k        text;
    seg      text;
    has_idx  boolean;
BEGIN
    IF tbl IS NULL OR col IS NULL THEN
        RAISE EXCEPTION 'table and column must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF "window" IS NULL OR "window" <= interval '0' THEN
        RAISE EXCEPTION 'probe window must be a positive interval' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- The scheduled probe reads the table as the worker's superuser: only
    -- plain tables (no view code to run) and only their owners.
    IF (SELECT relkind FROM pg_class WHERE oid = tbl) NOT IN ('r', 'p') THEN
        RAISE EXCEPTION '% is not a table', tbl
            USING ERRCODE = 'wrong_object_type',
                  DETAIL = 'The uniqueness probe checks ordinary and partitioned tables.';
    END IF;
    IF NOT pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = tbl), 'USAGE') THEN
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
    INSERT INTO idgen.probes (tbl, col, "window", kind, indexed, segment_tag)
    VALUES (tbl, col, "window", k, has_idx, seg)
    ON CONFLICT ON CONSTRAINT probes_pkey DO UPDATE
       SET "window" = EXCLUDED."window", kind = EXCLUDED.kind, indexed = EXCLUDED.indexed,
           segment_tag = EXCLUDED.segment_tag;
END;
$$;

COMMENT ON FUNCTION probe_register(regclass, name, interval) IS
'Register a uniqueness probe on a bigint (Snowflake/segment) or uuid (UUIDv7) column';

CREATE FUNCTION probe_unregister(tbl regclass, col name)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM idgen.probes p WHERE p.tbl = probe_unregister.tbl AND p.col = probe_unregister.col;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no probe is registered on column "%" of %', col, tbl
            USING ERRCODE = 'undefined_object';
    END IF;
END;
$$;

-- The lower bound of a probe's scan, as a literal of the column's type.
CREATE FUNCTION _probe_lower_bound(p idgen.probes)
RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
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

CREATE FUNCTION probe_run()
RETURNS TABLE(tbl regclass, col name, ids_checked bigint, duplicates bigint,
              kind text, lower_bound text, duration_ms float8)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p        idgen.probes;
    started  timestamptz;
    dup      record;
    maxval   bigint;
    ranges   int8range[];
    scan     text;          -- SELECT tid, v FROM <the rows the probe reads>
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
            -- Every row whose value is at or above the bound is read through
            -- the index: a new ID repeating an old one has the old one's
            -- value, so both are in range.  Segment numbers carry no time:
            -- the probe reads what lies at or above its last high-water mark
            -- and every range the outbox shows granted within the window (a
            -- range granted again after a failover or restore is recent).
            -- Plain SELECTs only: no lock stronger than writers' own.
            IF p.kind = 'segment' THEN
                ranges := ARRAY(SELECT int8range(e.range_start, e.range_end)
                                  FROM idgen.segment_events e
                                 WHERE e.tag = p.segment_tag AND e.kind = 'grant'
                                   AND e.at >= now() - p."window");
                scan := format('SELECT DISTINCT t.tid, t.v FROM'
                               ' (SELECT unnest($2::int8range[]) AS r'
                               '  UNION ALL SELECT int8range($1::bigint, NULL)) b,'
                               ' LATERAL (SELECT ctid AS tid, %1$I AS v FROM %2$s'
                               '          WHERE %1$I >= lower(b.r)'
                               '            AND (upper_inf(b.r) OR %1$I < upper(b.r))) t',
                               p.col, p.tbl);
            ELSE
                ranges := NULL;
                scan := format('SELECT ctid AS tid, %1$I AS v FROM %2$s WHERE %1$I >= $1::%3$s',
                               p.col, p.tbl, CASE WHEN p.kind = 'uuidv7' THEN 'uuid' ELSE 'bigint' END);
            END IF;
            EXECUTE format('SELECT count(*), count(*) FILTER (WHERE n > 1) FROM'
                           ' (SELECT v, count(*) AS n FROM (%s) s GROUP BY v) g', scan)
               INTO ids_checked, duplicates USING lower_bound, ranges;
            IF duplicates > 0 THEN
                FOR dup IN EXECUTE format('SELECT v::text AS v, count(*) AS n FROM (%s) s'
                                          ' GROUP BY v HAVING count(*) > 1 ORDER BY v LIMIT 10', scan)
                           USING lower_bound, ranges LOOP
                    RAISE WARNING 'idgen probe: duplicate ID % appears % times in %.%', dup.v, dup.n, p.tbl, p.col
                        USING HINT = 'Find the rows with this ID and how they were generated; see idgen.audit_leases() and idgen.audit_segments().';
                END LOOP;
            END IF;
            IF p.kind = 'segment' THEN
                EXECUTE format('SELECT max(%1$I) FROM %2$s WHERE %1$I >= $1::bigint', p.col, p.tbl)
                   INTO maxval USING lower_bound;
            END IF;
            duration_ms := extract(epoch FROM clock_timestamp() - started) * 1000;
            UPDATE idgen.probes q
               SET last_run_at = now(), last_ids_checked = probe_run.ids_checked,
                   last_duplicates = probe_run.duplicates, last_duration_ms = probe_run.duration_ms,
                   runs = q.runs + 1, duplicates_found = q.duplicates_found + probe_run.duplicates,
                   high_water = CASE WHEN q.kind = 'segment' THEN coalesce(maxval, q.high_water) ELSE q.high_water END
             WHERE q.tbl = p.tbl AND q.col = p.col;
            RETURN NEXT;
        EXCEPTION WHEN OTHERS THEN
            -- one broken probe (a dropped column, a lock timeout) must not
            -- stop the others
            RAISE WARNING 'idgen probe on %.% failed: %', p.tbl, p.col, SQLERRM;
        END;
    END LOOP;
END;
$$;

COMMENT ON FUNCTION probe_run() IS
'Run every registered uniqueness probe now; duplicates are logged at WARNING and counted';

CREATE VIEW probe_status AS
SELECT p.tbl, p.col, p.kind, p."window", p.indexed, p.last_run_at,
       p.last_ids_checked AS ids_checked, p.last_duplicates AS duplicates,
       p.last_duration_ms AS duration_ms, p.runs, p.duplicates_found, p.high_water
FROM probes p;

COMMENT ON VIEW probe_status IS
'Uniqueness probes: the last run of each and the duplicates found so far';

CREATE FUNCTION audit_leases()
RETURNS TABLE(worker_id integer, holder_a text, generation_a bigint,
              holder_b text, generation_b bigint, overlap tstzrange)
LANGUAGE sql STABLE PARALLEL SAFE
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

CREATE FUNCTION audit_segments()
RETURNS TABLE(tag text, event_a bigint, range_a int8range, node_a text,
              event_b bigint, range_b int8range, node_b text)
LANGUAGE sql STABLE PARALLEL SAFE
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

-- ---------------------------------------------------------------------------
-- Monitoring
-- ---------------------------------------------------------------------------

CREATE FUNCTION stats(OUT metric text,
                      OUT labels jsonb,
                      OUT value bigint,
                      OUT scope text,
                      OUT help text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'idgen_stats'
LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED;

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

CREATE VIEW status AS SELECT * FROM status();

COMMENT ON VIEW status IS
'Operational state of this server: worker id and its lease, time floor, clock discipline';

COMMENT ON FUNCTION stats() IS 'Counters behind the idgen.stats view';
COMMENT ON FUNCTION status() IS 'One row of operational state behind the idgen.status view';
COMMENT ON FUNCTION segment_buffers() IS 'Ranges this server has buffered per segment tag (behind idgen.segments)';
COMMENT ON FUNCTION _segment_forget(text) IS 'Internal: forget a dropped tag''s buffered ranges';
COMMENT ON FUNCTION probe_unregister(regclass, name) IS 'Remove a uniqueness probe';
COMMENT ON FUNCTION _probe_lower_bound(probes) IS 'Internal: the lower bound of a probe''s scan';
COMMENT ON FUNCTION lease_acquire(text, integer, integer, integer, integer, integer, bigint,
                                  integer, integer, integer, integer) IS
'Coordinator side, called by nodes'' lease workers: lease a free (or the static) worker id';
COMMENT ON FUNCTION lease_renew(integer, bigint, text, integer, bigint) IS
'Coordinator side: extend a lease and record its time horizon';
COMMENT ON FUNCTION lease_release(integer, bigint, text, bigint) IS
'Coordinator side: give a lease back at clean shutdown with the floor actually reached';

-- ---------------------------------------------------------------------------
-- Privileges: generators and read-only views for everyone.
-- ---------------------------------------------------------------------------

GRANT USAGE ON SCHEMA @extschema@ TO PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.uuidv7(), uuidv7(timestamptz), uuidv7_min(timestamptz), uuidv7_time(uuid),
    snowflake_next(), snowflake_decode(bigint), snowflake_min(timestamptz),
    bit_budget(), stats(), status() TO PUBLIC;
GRANT SELECT ON stats, status TO PUBLIC;

-- Segments: numbers only for roles the DBA grants; tags managed by
-- superusers or roles granted segment_create/segment_drop.
REVOKE ALL ON segment_alloc, segment_events FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION segment_next(text), _segment_forget(text), _current_timeline(),
    segment_create(text, bigint, integer), segment_drop(text),
    segment_buffers() FROM PUBLIC;
GRANT SELECT ON segments TO PUBLIC;
GRANT EXECUTE ON FUNCTION segment_buffers() TO PUBLIC;

-- Probes and audits: for the DBA (and roles the DBA grants them to).
REVOKE ALL ON probes FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION probe_register(regclass, name, interval),
    probe_unregister(regclass, name), probe_run(), _probe_lower_bound(probes),
    audit_leases(), audit_segments() FROM PUBLIC;
GRANT SELECT ON probe_status TO PUBLIC;

-- Leases: only the roles nodes connect as (superusers, or roles the DBA
-- grants these functions and tables to).
REVOKE ALL ON lease_layout, leases, lease_history FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION
    lease_acquire(text, integer, integer, integer, integer, integer, bigint,
                  integer, integer, integer, integer),
    lease_renew(integer, bigint, text, integer, bigint),
    lease_release(integer, bigint, text, bigint) FROM PUBLIC;
