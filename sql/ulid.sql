SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS idgen;
RESET client_min_messages;
--
-- ULID text form: idgen.ulid_encode(uuid), idgen.ulid_decode(text).
-- Output does not depend on the current time.
--
SET timezone = 'UTC';

CREATE FUNCTION pg_temp.decode_error(t text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM idgen.ulid_decode(t);
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;

-- Known values: the ULID spec's example 01ARZ3NDEKTSV4RRFFQ69G5FAV, the
-- bounds, and a UUIDv7 whose first 48 bits are its millisecond time.
SELECT idgen.ulid_decode('01ARZ3NDEKTSV4RRFFQ69G5FAV') AS spec_example;
SELECT idgen.ulid_encode('01563e3a-b5d3-d676-4c61-efb99302bd5b') AS spec_example;
SELECT idgen.ulid_encode('00000000-0000-0000-0000-000000000000') AS nil,
       idgen.ulid_encode('ffffffff-ffff-ffff-ffff-ffffffffffff') AS max;
SELECT idgen.ulid_decode('7ZZZZZZZZZZZZZZZZZZZZZZZZZ') AS max,
       idgen.ulid_decode('00000000000000000000000000') AS nil;
SELECT idgen.ulid_encode('01890a5d-ac96-774b-bcce-b302099a8057') AS v7;

-- Either case decodes; mixed case too.
SELECT idgen.ulid_decode('01h455vb4pex5vsknk084sn02q') = idgen.ulid_decode('01H455VB4PEX5VSKNK084SN02Q') AS lower_eq_upper,
       idgen.ulid_decode('01h455VB4pex5vsknk084sn02Q') = idgen.ulid_decode('01H455VB4PEX5VSKNK084SN02Q') AS mixed;

-- The 48-bit time of a ULID is the UUIDv7's millisecond time.
SELECT idgen.uuidv7_time(idgen.ulid_decode('01H455VB4PEX5VSKNK084SN02Q')) AS ts;

-- Rejected: wrong length, characters outside the alphabet (I L O U, hyphen,
-- space, underscore, non-ASCII), values above 128 bits.
SELECT t, pg_temp.decode_error(t) AS error
FROM (VALUES (''), ('01H455VB4PEX5VSKNK084SN02'), ('01H455VB4PEX5VSKNK084SN02QQ'),
             ('01H455VB4PEX5VSKNK084SN0IQ'), ('01H455VB4PEX5VSKNK084SN0LQ'),
             ('01H455VB4PEX5VSKNK084SN0OQ'), ('01H455VB4PEX5VSKNK084SN0UQ'),
             ('01H455VB4PEX5VSKNK084SN0-Q'), ('01H455VB4PEX5VSKNK084SN0 Q'),
             ('01H455VB4PEX5VSKNK084SN0_Q'), ('01H455VB4PEX5VSKNK084SN0éQ'),
             ('01H455VB4PEX5VSK-K084SN02Q'),
             ('80000000000000000000000000'), ('8ZZZZZZZZZZZZZZZZZZZZZZZZZ'),
             ('ZZZZZZZZZZZZZZZZZZZZZZZZZZ'), ('zzzzzzzzzzzzzzzzzzzzzzzzzz')) AS v(t);
SELECT idgen.ulid_decode('8ZZZZZZZZZZZZZZZZZZZZZZZZZ');
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- Round trip over random UUIDs; the ULID is always 26 uppercase
-- characters of the alphabet.
SELECT count(*) FILTER (WHERE idgen.ulid_decode(idgen.ulid_encode(u)) = u) AS round_trips,
       bool_and(idgen.ulid_encode(u) ~ '^[0-7][0-9A-HJKMNP-TV-Z]{25}$') AS shape,
       bool_and(idgen.ulid_decode(lower(idgen.ulid_encode(u))) = u) AS lower_round_trips
FROM (SELECT gen_random_uuid() AS u FROM generate_series(1, 1000)) g;

-- Order: ULIDs of idgen's UUIDv7s sort (byte-wise) exactly as the UUIDs,
-- over many IDs; and so do ULIDs of random UUIDs.
CREATE TEMP TABLE gen AS
SELECT i, u, idgen.ulid_encode(u) COLLATE "C" AS ulid
FROM (SELECT i, idgen.uuidv7() AS u FROM generate_series(1, 20000) AS i) s;
SELECT count(*) AS n,
       count(*) FILTER (WHERE rank_uuid = rank_ulid) AS same_rank
FROM (SELECT row_number() OVER (ORDER BY u) AS rank_uuid,
             row_number() OVER (ORDER BY ulid) AS rank_ulid FROM gen) r;
SELECT bool_and(ulid > lag) AS increasing_in_generation_order
FROM (SELECT ulid, lag(ulid) OVER (ORDER BY i) AS lag FROM gen) s WHERE lag IS NOT NULL;
SELECT bool_and((a.u < b.u) = (idgen.ulid_encode(a.u) COLLATE "C" < idgen.ulid_encode(b.u) COLLATE "C")) AS random_pairs_agree
FROM (SELECT gen_random_uuid() AS u FROM generate_series(1, 2000)) a,
     LATERAL (SELECT gen_random_uuid() AS u) b;

-- ULID and TypeID are the same bits: the TypeID suffix is the ULID in
-- lowercase.
SELECT bool_and(lower(idgen.ulid_encode(u)) = idgen.typeid_encode('', u)) AS same_bits
FROM (SELECT gen_random_uuid() AS u FROM generate_series(1, 100)) g;

SELECT idgen.ulid_encode(NULL) IS NULL AS n1, idgen.ulid_decode(NULL) IS NULL AS n2;
SELECT proname, provolatile, proparallel, proisstrict
FROM pg_proc WHERE pronamespace = 'idgen'::regnamespace AND proname LIKE 'ulid%' ORDER BY proname;
