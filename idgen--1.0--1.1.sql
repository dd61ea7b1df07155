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
