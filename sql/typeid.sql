SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS idgen;
RESET client_min_messages;
--
-- TypeID (spec 0.3.0): idgen.typeid(), idgen.typeid_encode(),
-- idgen.typeid_decode().
--
-- The vectors below are the spec repository's spec/valid.yml and
-- spec/invalid.yml (jetify-com/typeid, "Last updated: 2024-04-10 (for
-- version 0.3.0 of the spec)"), written out here by hand; then cases from
-- the spec's rules.  Output does not depend on the current time.
--

-- The SQLSTATE and message a decode fails with, or 'ok'.
CREATE FUNCTION pg_temp.decode_error(t text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM idgen.typeid_decode(t);
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;

CREATE FUNCTION pg_temp.encode_error(p text, u uuid) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM idgen.typeid_encode(p, u);
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;

-- spec/valid.yml: decoding gives the prefix and UUID, encoding gives the
-- TypeID back.
CREATE TEMP TABLE valid(name text, typeid text, prefix text, uuid uuid);
INSERT INTO valid VALUES
  ('nil',               '00000000000000000000000000',         '',        '00000000-0000-0000-0000-000000000000'),
  ('one',               '00000000000000000000000001',         '',        '00000000-0000-0000-0000-000000000001'),
  ('ten',               '0000000000000000000000000a',         '',        '00000000-0000-0000-0000-00000000000a'),
  ('sixteen',           '0000000000000000000000000g',         '',        '00000000-0000-0000-0000-000000000010'),
  ('thirty-two',        '00000000000000000000000010',         '',        '00000000-0000-0000-0000-000000000020'),
  ('max-valid',         '7zzzzzzzzzzzzzzzzzzzzzzzzz',         '',        'ffffffff-ffff-ffff-ffff-ffffffffffff'),
  ('valid-alphabet',    'prefix_0123456789abcdefghjkmnpqrs',  'prefix',  '0110c853-1d09-52d8-d73e-1194e95b5f19'),
  ('valid-uuidv7',      'prefix_01h455vb4pex5vsknk084sn02q',  'prefix',  '01890a5d-ac96-774b-bcce-b302099a8057'),
  ('prefix-underscore', 'pre_fix_00000000000000000000000000', 'pre_fix', '00000000-0000-0000-0000-000000000000');

SELECT v.name, d.prefix, d.id,
       d.prefix = v.prefix AND d.id = v.uuid AS decodes,
       idgen.typeid_encode(v.prefix, v.uuid) = v.typeid AS encodes
FROM valid v, idgen.typeid_decode(v.typeid) d
ORDER BY v.name;

-- spec/invalid.yml: each fails with 22P02 naming the rule.
CREATE TEMP TABLE invalid(name text, typeid text);
INSERT INTO invalid VALUES
  ('prefix-uppercase',           'PREFIX_00000000000000000000000000'),
  ('prefix-numeric',             '12345_00000000000000000000000000'),
  ('prefix-period',              'pre.fix_00000000000000000000000000'),
  ('prefix-non-ascii',           'préfix_00000000000000000000000000'),
  ('prefix-spaces',              '  prefix_00000000000000000000000000'),
  ('prefix-64-chars',            'abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijkl_00000000000000000000000000'),
  ('separator-empty-prefix',     '_00000000000000000000000000'),
  ('separator-empty',            '_'),
  ('suffix-short',               'prefix_1234567890123456789012345'),
  ('suffix-long',                'prefix_123456789012345678901234567'),
  ('suffix-spaces',              'prefix_1234567890123456789012345 '),
  ('suffix-uppercase',           'prefix_0123456789ABCDEFGHJKMNPQRS'),
  ('suffix-hyphens',             'prefix_123456789-123456789-123456'),
  ('suffix-wrong-alphabet',      'prefix_ooooooiiiiiiuuuuuuulllllll'),
  ('suffix-ambiguous-crockford', 'prefix_i23456789ol23456789oi23456'),
  ('suffix-hyphens-crockford',   'prefix_123456789-0123456789-0123456'),
  ('suffix-overflow',            'prefix_8zzzzzzzzzzzzzzzzzzzzzzzzz'),
  ('prefix-underscore-start',    '_prefix_00000000000000000000000000'),
  ('prefix-underscore-end',      'prefix__00000000000000000000000000');

SELECT name, pg_temp.decode_error(typeid) AS error FROM invalid ORDER BY name;

-- One error in full: the detail states the rule.
SELECT * FROM idgen.typeid_decode('prefix_8zzzzzzzzzzzzzzzzzzzzzzzzz');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT * FROM idgen.typeid_decode('User_01h455vb4pex5vsknk084sn02q');

--
-- Rules of the spec beyond the vectors.
--

-- Prefix: 63 characters is the longest; underscores inside are fine, also
-- several in a row; a single letter is a prefix.
SELECT length(p) AS prefix_length, pg_temp.encode_error(p, '01890a5d-ac96-774b-bcce-b302099a8057') AS encode
FROM (VALUES (repeat('a', 63)), (repeat('a', 64)), ('a'), ('a__b'), ('a_b_c')) AS t(p);
SELECT * FROM idgen.typeid_decode(repeat('x', 63) || '_01h455vb4pex5vsknk084sn02q');
SELECT * FROM idgen.typeid_decode('a__b_01h455vb4pex5vsknk084sn02q');

-- Encoding checks the prefix with the same rules (and SQLSTATE).
SELECT p, pg_temp.encode_error(p, '01890a5d-ac96-774b-bcce-b302099a8057') AS encode
FROM (VALUES ('user'), (''), ('User'), ('user1'), ('_user'), ('user_'), ('us-er'), (' '), ('é')) AS t(p);

-- The empty prefix leaves the separator out.
SELECT idgen.typeid_encode('', '01890a5d-ac96-774b-bcce-b302099a8057');

-- Suffix characters outside the alphabet, one at a time in an otherwise
-- valid suffix: i l o u, uppercase, hyphen, space.
SELECT c, pg_temp.decode_error('user_01h455vb4pex5vsknk084sn0' || c || 'q') AS decode
FROM unnest(ARRAY['i', 'l', 'o', 'u', 'I', 'L', 'O', 'U', 'Q', '-', ' ', '_', 'z']) AS c;

-- Suffix bound: 7zzz... is the largest, every first character 8-z fails.
SELECT pg_temp.decode_error('7zzzzzzzzzzzzzzzzzzzzzzzzz') AS seven;
SELECT count(*) AS overflow_rejected
FROM unnest(string_to_array('89abcdefghjkmnpqrstvwxyz', NULL)) AS c
WHERE pg_temp.decode_error(c || 'zzzzzzzzzzzzzzzzzzzzzzzzz') LIKE '22P02: % suffix is above 7zzz%';

-- Empty input; a suffix of 26 bytes with a two-byte character; a prefix
-- of 63 bytes with one.
SELECT pg_temp.decode_error('') AS empty;
SELECT pg_temp.decode_error('user_01h455vb4pex5vsknk084sn0é') AS multibyte;
SELECT pg_temp.decode_error(repeat('a', 61) || 'é_01h455vb4pex5vsknk084sn02q') AS multibyte_prefix;

-- Any UUID version round-trips (the spec allows other variants when
-- users provide the bits); so do 1,000 random ones.
SELECT idgen.typeid_encode('x', u) AS typeid, (idgen.typeid_decode(idgen.typeid_encode('x', u))).id = u AS round_trip
FROM (VALUES ('6ba7b810-9dad-11d1-80b4-00c04fd430c8'::uuid),   -- v1
             ('f47ac10b-58cc-4372-a567-0e02b2c3d479'::uuid)) AS t(u);
SELECT count(*) FILTER (WHERE d.id = g.u AND d.prefix = 'rnd') AS round_trips
FROM (SELECT gen_random_uuid() AS u FROM generate_series(1, 1000)) g,
     LATERAL idgen.typeid_decode(idgen.typeid_encode('rnd', g.u)) d;

-- idgen.typeid(): a UUIDv7 of now behind the prefix, lowercase, 26
-- characters after it; new TypeIDs sort in generation order.
CREATE TEMP TABLE gen AS
SELECT i, idgen.typeid('user') AS t FROM generate_series(1, 1000) AS i;
SELECT count(*) AS n,
       bool_and(t ~ '^user_[0-7][0-9a-hjkmnp-tv-z]{25}$') AS shape,
       bool_and((idgen.typeid_decode(t)).prefix = 'user') AS prefix,
       bool_and(substr((idgen.typeid_decode(t)).id::text, 15, 1) = '7') AS uuidv7,
       bool_and(abs(extract(epoch FROM idgen.uuidv7_time((idgen.typeid_decode(t)).id) - now())) < 3600) AS recent,
       count(DISTINCT t) AS distinct_ids
FROM gen;
SELECT bool_and(t > lag) AS increasing
FROM (SELECT t COLLATE "C" AS t, lag(t COLLATE "C") OVER (ORDER BY i) AS lag FROM gen) s
WHERE lag IS NOT NULL;
SELECT idgen.typeid('') ~ '^[0-7][0-9a-hjkmnp-tv-z]{25}$' AS empty_prefix;
SELECT idgen.typeid('Bad');

-- NULL in, NULL out; volatility and parallel labels.
SELECT idgen.typeid(NULL) IS NULL AS n1, idgen.typeid_encode(NULL, idgen.uuidv7()) IS NULL AS n2,
       idgen.typeid_encode('a', NULL) IS NULL AS n3, (idgen.typeid_decode(NULL)).id IS NULL AS n4;
SELECT proname, provolatile, proparallel, proisstrict
FROM pg_proc WHERE pronamespace = 'idgen'::regnamespace AND proname LIKE 'typeid%' ORDER BY proname;
