/* idgen--1.0--1.1.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION idgen UPDATE TO '1.1'" to load this file. \quit

-- Each change to the SQL surface since 1.0, in the same order as in
-- idgen--1.1.sql (the full script a fresh install runs).  After
-- ALTER EXTENSION idgen UPDATE the catalog equals a fresh install of 1.1.

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
