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
