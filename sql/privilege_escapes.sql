SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS idgen;
RESET client_min_messages;
--
-- Routes by which a role might act with more than it was granted through
-- idgen's delegable functions, each shown refused.
--
\set SHOW_CONTEXT never
ALTER SYSTEM SET idgen.probe_interval = 0;
SELECT pg_reload_conf();

CREATE ROLE regress_esc_alice;
CREATE ROLE regress_esc_bob;
GRANT EXECUTE ON FUNCTION idgen.probe_register(regclass, name, interval),
    idgen.probe_unregister(regclass, name) TO regress_esc_alice, regress_esc_bob;
CREATE SCHEMA esc_a AUTHORIZATION regress_esc_alice;
CREATE SCHEMA esc_b AUTHORIZATION regress_esc_bob;
GRANT USAGE ON SCHEMA esc_b TO regress_esc_alice;

-- bob's probed table, and a superuser's table
SET ROLE regress_esc_bob;
CREATE TABLE esc_b.t (id bigint DEFAULT idgen.snowflake_next());
CREATE INDEX ON esc_b.t (id);
SELECT idgen.probe_register('esc_b.t', 'id');
RESET ROLE;
CREATE TABLE esc_su (id bigint DEFAULT idgen.snowflake_next());
CREATE INDEX ON esc_su (id);
INSERT INTO esc_su DEFAULT VALUES;

--
-- 1. The caller of probe_register/probe_unregister is the role that calls
-- them, wherever it is called from.  Here alice's row-level security policy
-- runs inside the probe worker's scan of her table, as alice in a
-- security-restricted operation, where the session's user is a superuser:
-- her registration of the superuser's table and her removal of bob's probe
-- must both be refused as hers.
--
SET ROLE regress_esc_alice;
-- directly: refused
SELECT idgen.probe_register('public.esc_su', 'id');
\echo :LAST_ERROR_SQLSTATE
CREATE TABLE esc_a.log (what text);
CREATE FUNCTION esc_a.policy() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    BEGIN
        PERFORM idgen.probe_register('public.esc_su', 'id');
        INSERT INTO esc_a.log VALUES ('registered esc_su');
    EXCEPTION WHEN OTHERS THEN
        INSERT INTO esc_a.log VALUES ('register refused: ' || SQLSTATE);
    END;
    BEGIN
        PERFORM idgen.probe_unregister('esc_b.t', 'id');
        INSERT INTO esc_a.log VALUES ('unregistered esc_b.t');
    EXCEPTION WHEN OTHERS THEN
        INSERT INTO esc_a.log VALUES ('unregister refused: ' || SQLSTATE);
    END;
    RETURN true;
END
$$;
CREATE TABLE esc_a.t (id bigint DEFAULT idgen.snowflake_next());
CREATE INDEX ON esc_a.t (id);
INSERT INTO esc_a.t DEFAULT VALUES;
ALTER TABLE esc_a.t ENABLE ROW LEVEL SECURITY;
ALTER TABLE esc_a.t FORCE ROW LEVEL SECURITY;
CREATE POLICY p ON esc_a.t USING (esc_a.policy());
SELECT idgen.probe_register('esc_a.t', 'id');
DELETE FROM esc_a.log;
RESET ROLE;
SELECT tbl, ids_checked FROM idgen.probe_run() ORDER BY tbl::text;
SELECT DISTINCT what FROM esc_a.log ORDER BY 1;
SELECT tbl, owner FROM idgen.probe_status ORDER BY tbl::text;

SELECT idgen.probe_unregister(tbl, col) FROM idgen.probes
 WHERE tbl IN ('esc_a.t'::regclass, 'esc_b.t'::regclass, 'esc_su'::regclass);
DROP TABLE esc_su;
DROP SCHEMA esc_a CASCADE;
DROP SCHEMA esc_b CASCADE;
REVOKE ALL ON FUNCTION idgen.probe_register(regclass, name, interval),
    idgen.probe_unregister(regclass, name) FROM regress_esc_alice, regress_esc_bob;
DROP ROLE regress_esc_alice;
DROP ROLE regress_esc_bob;

--
-- 2. A partitioned table's partitions each number their rows from ctid
-- (0,1): the segment probe must not take two rows of one value in two
-- partitions for one row.  Each partition gets one row, both holding 7.
--
CREATE TABLE esc_parts (id bigint DEFAULT idgen.segment_next('esc_tag'), k int)
    PARTITION BY LIST (k);
CREATE TABLE esc_parts_1 PARTITION OF esc_parts FOR VALUES IN (1);
CREATE TABLE esc_parts_2 PARTITION OF esc_parts FOR VALUES IN (2);
CREATE INDEX ON esc_parts (id);
INSERT INTO esc_parts VALUES (7, 1), (7, 2), (8, 2);
SELECT tableoid::regclass, ctid, id FROM esc_parts ORDER BY 1, 2;
SELECT idgen.probe_register('esc_parts', 'id');
SET client_min_messages = error;
SELECT tbl, ids_checked, duplicates, kind FROM idgen.probe_run() WHERE tbl = 'esc_parts'::regclass;
RESET client_min_messages;
SELECT idgen.probe_unregister('esc_parts', 'id');
DROP TABLE esc_parts;

--
-- 3. A 1.0 installation that adopted a schema idgen owned by another role
-- (1.0 did not check): the update to 1.1 refuses it, since that role could
-- rename the schema and put its own functions where the SECURITY DEFINER
-- bodies call them; once a superuser owns it the update goes through.
--
CREATE ROLE regress_esc_mallory;
CREATE DATABASE regress_esc_upgrade;
\c regress_esc_upgrade
CREATE SCHEMA idgen AUTHORIZATION regress_esc_mallory;
SET client_min_messages = warning;
CREATE EXTENSION idgen VERSION '1.0';
RESET client_min_messages;
ALTER EXTENSION idgen UPDATE;
\echo :LAST_ERROR_SQLSTATE
SELECT extversion FROM pg_extension WHERE extname = 'idgen';
-- an object in the schema that is not idgen's is refused too
ALTER SCHEMA idgen OWNER TO CURRENT_USER;
CREATE FUNCTION idgen.planted() RETURNS int LANGUAGE sql AS 'SELECT 1';
ALTER EXTENSION idgen UPDATE;
\echo :LAST_ERROR_SQLSTATE
DROP FUNCTION idgen.planted();
ALTER EXTENSION idgen UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'idgen';
\c contrib_regression
DROP DATABASE regress_esc_upgrade;
DROP ROLE regress_esc_mallory;

--
-- 4. Errors about a bad TypeID or ULID quote at most 100 bytes of the
-- input (then "..."): quoting all of it would let any role write a
-- message as long as its input to the server log with each call.
--
CREATE FUNCTION pg_temp.error_length(q text) RETURNS int LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN NULL;
EXCEPTION WHEN invalid_text_representation THEN
    RETURN octet_length(SQLERRM);
END
$$;
SELECT pg_temp.error_length($q$SELECT idgen.typeid_decode(repeat('a', 1000000))$q$) < 300 AS typeid_decode_short,
       pg_temp.error_length($q$SELECT idgen.typeid(repeat('a', 1000000))$q$) < 300 AS typeid_short,
       pg_temp.error_length($q$SELECT idgen.typeid_encode(repeat('A', 1000000), gen_random_uuid())$q$) < 300 AS typeid_encode_short,
       pg_temp.error_length($q$SELECT idgen.ulid_decode(repeat('a', 1000000))$q$) < 300 AS ulid_decode_short,
       pg_temp.error_length($q$SELECT idgen.ulid_decode(repeat('é', 1000000))$q$) < 300 AS ulid_multibyte_short;
-- cut at a character boundary
DO $$
BEGIN
    PERFORM idgen.ulid_decode(repeat('é', 200));
EXCEPTION WHEN invalid_text_representation THEN
    RAISE NOTICE '%', SQLERRM;
END
$$;

--
-- 5. idgen.probe_status is readable by every role, but a segment probe's
-- high-water mark is the largest value in the column: only roles that may
-- read the column see it (as pg_stats shows a column's values).
--
CREATE ROLE regress_esc_owner;
CREATE ROLE regress_esc_other;
CREATE TABLE esc_hw (id bigint DEFAULT idgen.segment_next('esc_hw_tag'));
ALTER TABLE esc_hw OWNER TO regress_esc_owner;
INSERT INTO esc_hw VALUES (4242);
SELECT idgen.probe_register('esc_hw', 'id');
SELECT count(*) FROM idgen.probe_run() WHERE tbl = 'esc_hw'::regclass;
SET ROLE regress_esc_other;
SELECT tbl, runs, high_water FROM idgen.probe_status WHERE tbl = 'esc_hw'::regclass;
RESET ROLE;
SET ROLE regress_esc_owner;
SELECT tbl, runs, high_water FROM idgen.probe_status WHERE tbl = 'esc_hw'::regclass;
RESET ROLE;
GRANT SELECT (id) ON esc_hw TO regress_esc_other;
SET ROLE regress_esc_other;
SELECT tbl, runs, high_water FROM idgen.probe_status WHERE tbl = 'esc_hw'::regclass;
RESET ROLE;
SELECT idgen.probe_unregister('esc_hw', 'id');
DROP TABLE esc_hw;
DROP ROLE regress_esc_owner;
DROP ROLE regress_esc_other;

ALTER SYSTEM RESET idgen.probe_interval;
SELECT pg_reload_conf();
