/* idgen--1.0.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION idgen" to load this file. \quit

-- ---------------------------------------------------------------------------
-- UUIDv7
-- ---------------------------------------------------------------------------

CREATE FUNCTION uuidv7()
RETURNS uuid
AS 'MODULE_PATHNAME', 'idgen_uuidv7'
LANGUAGE C VOLATILE PARALLEL SAFE;

COMMENT ON FUNCTION uuidv7() IS
'RFC 9562 version 7 UUID for the current time; strictly increasing across the server when idgen is preloaded';

CREATE FUNCTION uuidv7(ts timestamptz)
RETURNS uuid
AS 'MODULE_PATHNAME', 'idgen_uuidv7_at'
LANGUAGE C VOLATILE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION uuidv7(timestamptz) IS
'RFC 9562 version 7 UUID for the given time, with random bits (for backfills and range bounds)';

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

CREATE FUNCTION snowflake_decode(id bigint,
                                 OUT ts timestamptz,
                                 OUT worker_id int,
                                 OUT sequence int)
RETURNS record
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
    last_timeline   integer NOT NULL DEFAULT 0, -- timeline of the last grant
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
        INSERT INTO idgen.segment_alloc (tag, start_value, next_value, step, current_step)
        VALUES (tag, start, start, step, step);
    EXCEPTION WHEN unique_violation THEN
        RAISE EXCEPTION 'segment tag "%" already exists', tag
            USING ERRCODE = 'duplicate_object',
                  HINT = 'Use the existing tag, or drop it first with idgen.segment_drop().';
    END;
    INSERT INTO idgen.segment_events (tag, kind, range_start, range_end, node, timeline)
    VALUES (tag, 'create', start, start, 'sql', 0);
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

CREATE VIEW stats AS SELECT * FROM stats();

COMMENT ON VIEW stats IS
'idgen counters, one row per metric and label set, in the shape monitoring exporters scrape';

CREATE FUNCTION status(OUT worker_id int,
                       OUT lease_state text,
                       OUT lease_expires_at timestamptz,
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
'Operational state of this server: worker id, time floor, clock discipline';

-- ---------------------------------------------------------------------------
-- Privileges: generators and read-only views for everyone.
-- ---------------------------------------------------------------------------

GRANT USAGE ON SCHEMA @extschema@ TO PUBLIC;
GRANT EXECUTE ON FUNCTION uuidv7(), uuidv7(timestamptz), uuidv7_time(uuid),
    snowflake_next(), snowflake_decode(bigint), snowflake_min(timestamptz),
    bit_budget(), stats(), status() TO PUBLIC;
GRANT SELECT ON stats, status TO PUBLIC;

-- Segments: numbers only for roles the DBA grants; tags managed by
-- superusers or roles granted segment_create/segment_drop.
REVOKE ALL ON segment_alloc, segment_events FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION segment_next(text), _segment_forget(text),
    segment_create(text, bigint, integer), segment_drop(text),
    segment_buffers() FROM PUBLIC;
GRANT SELECT ON segments TO PUBLIC;
GRANT EXECUTE ON FUNCTION segment_buffers() TO PUBLIC;
