-- bench/setup.sql: objects bench/run needs in its throwaway database.
-- Loaded once, after CREATE EXTENSION idgen and pgstattuple.

CREATE SCHEMA bench;

-- Sequences for the nextval rows and for the Instagram-style function.
CREATE SEQUENCE bench.seq_cache1 CACHE 1;
CREATE SEQUENCE bench.seq_cache100 CACHE 100;
CREATE SEQUENCE bench.instagram_seq;

-- Elapsed microseconds of one statement, timed inside the server with
-- clock_timestamp(), so no client round trip or result transfer is counted.
CREATE FUNCTION bench.elapsed_us(q text) RETURNS float8
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
	t0 timestamptz;
	t1 timestamptz;
BEGIN
	t0 := clock_timestamp();
	EXECUTE q;
	t1 := clock_timestamp();
	RETURN (extract(epoch FROM t1) - extract(epoch FROM t0)) * 1e6;
END
$$;

-- On-CPU and run-queue nanoseconds of this backend so far, from
-- /proc/self/schedstat (Linux; the first two fields).
CREATE FUNCTION bench.schedstat() RETURNS bigint[]
LANGUAGE sql VOLATILE AS $$
	SELECT string_to_array(split_part(pg_read_file('/proc/self/schedstat'), E'\n', 1), ' ')::bigint[]
$$;

-- Section 1: elapsed microseconds and on-CPU nanoseconds of one statement,
-- as 'wall_us cpu_ns'.  On a machine shared with other work the CPU time
-- stays put when the wall time does not.
CREATE FUNCTION bench.elapsed_cpu(q text) RETURNS text
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
	t0 timestamptz;
	t1 timestamptz;
	s0 bigint[];
	s1 bigint[];
BEGIN
	s0 := bench.schedstat();
	t0 := clock_timestamp();
	EXECUTE q;
	t1 := clock_timestamp();
	s1 := bench.schedstat();
	RETURN ((extract(epoch FROM t1) - extract(epoch FROM t0)) * 1e6)::text || ' ' || (s1[1] - s0[1]);
END
$$;

-- For the two-backend runs: wait until start_at (Unix seconds), run the
-- statement, and return 'start end cpu wait': start and end as Unix
-- microseconds, so the driver can take the wall time of the overlap as
-- max(end) - min(start), and the nanoseconds this backend spent on a CPU
-- and waiting for one while the statement ran.
CREATE FUNCTION bench.window_us(q text, start_at float8) RETURNS text
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
	t0 float8;
	t1 float8;
	s0 bigint[];
	s1 bigint[];
BEGIN
	-- Sleep to 2 ms before the start, then spin: pg_sleep alone wakes up
	-- to a millisecond late, which would skew short runs.
	PERFORM pg_sleep(greatest(0, start_at - 0.002 - extract(epoch FROM clock_timestamp())::float8));
	WHILE extract(epoch FROM clock_timestamp())::float8 < start_at LOOP
	END LOOP;
	s0 := bench.schedstat();
	t0 := extract(epoch FROM clock_timestamp()) * 1e6;
	EXECUTE q;
	t1 := extract(epoch FROM clock_timestamp()) * 1e6;
	s1 := bench.schedstat();
	RETURN concat_ws(' ', t0::bigint, t1::bigint, s1[1] - s0[1], s1[2] - s0[2]);
END
$$;

-- Comparison: the Instagram-style PL/pgSQL generator,
-- (ms since a custom epoch) << 23 | shard << 10 | nextval % 1024.
CREATE FUNCTION bench.instagram_next_id() RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
	custom_epoch_ms CONSTANT bigint := 1314220021721;	-- 2011-08-24
	shard CONSTANT bigint := 5;
	ms bigint;
	seq bigint;
BEGIN
	seq := nextval('bench.instagram_seq') % 1024;
	ms := floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint - custom_epoch_ms;
	RETURN (ms << 23) | (shard << 10) | seq;
END
$$;

-- Comparison: a plain PL/pgSQL UUIDv7: a v4 UUID with its first 48 bits
-- overlaid by the Unix milliseconds and the version nibble set to 7 (the
-- variant bits of gen_random_uuid() are already right).  Random within
-- the millisecond, as the usual user-land versions are.
CREATE FUNCTION bench.plpgsql_uuidv7() RETURNS uuid
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
	b bytea := uuid_send(gen_random_uuid());
	ms bigint := floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint;
BEGIN
	b := overlay(b PLACING substring(int8send(ms) FROM 3) FROM 1 FOR 6);
	b := set_byte(b, 6, (get_byte(b, 6) & 15) | 112);
	RETURN encode(b, 'hex')::uuid;
END
$$;

-- The comparison functions do what they claim.
DO $$
DECLARE
	u uuid := bench.plpgsql_uuidv7();
	i bigint := bench.instagram_next_id();
	now_ms bigint := floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint;
BEGIN
	ASSERT substring(u::text FROM 15 FOR 1) = '7', 'plpgsql_uuidv7: version is not 7';
	ASSERT abs(floor(extract(epoch FROM idgen.uuidv7_time(u)) * 1000)::bigint - now_ms) < 1000,
		'plpgsql_uuidv7: embedded time is not now';
	ASSERT abs((i >> 23) + 1314220021721 - now_ms) < 1000, 'instagram_next_id: time bits are not now';
	ASSERT ((i >> 10) & 8191) = 5, 'instagram_next_id: shard bits are not 5';
END
$$;

-- Segment tag for the per-ID and two-backend rows.
SELECT idgen.segment_create('bench', 1, 1000);

-- Section 4: time each of n calls of idgen.segment_next(tag); a call whose
-- number is the start of a granted range (per the outbox) crossed a switch.
-- clock_timestamp() has microsecond resolution, so sub-microsecond calls
-- read as 0 or 1.
-- Returns 'switches|p50|p99.9|max of switch calls|p50|p99.9|max of the rest'
-- in microseconds.
CREATE FUNCTION bench.segment_latency(tag text, n int) RETURNS text
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
	t0 timestamptz;
	v bigint;
	vals bigint[] := '{}';
	lats float8[] := '{}';
	r text;
BEGIN
	FOR i IN 1 .. n LOOP
		t0 := clock_timestamp();
		v := idgen.segment_next(tag);
		lats := lats || (extract(epoch FROM clock_timestamp() - t0) * 1e6)::float8;
		vals := vals || v;
	END LOOP;
	WITH calls AS (
		SELECT u.v, u.lat, EXISTS (SELECT 1 FROM idgen.segment_events e
		                            WHERE e.tag = segment_latency.tag AND e.kind = 'grant'
		                              AND e.range_start = u.v) AS switch
		FROM unnest(vals, lats) AS u(v, lat)
		OFFSET 1)	-- the very first call waits for the tag's first grant (cold start)
	SELECT concat_ws('|',
		count(*) FILTER (WHERE switch),
		percentile_cont(0.5) WITHIN GROUP (ORDER BY lat) FILTER (WHERE switch),
		percentile_cont(0.999) WITHIN GROUP (ORDER BY lat) FILTER (WHERE switch),
		max(lat) FILTER (WHERE switch),
		percentile_cont(0.5) WITHIN GROUP (ORDER BY lat) FILTER (WHERE NOT switch),
		percentile_cont(0.999) WITHIN GROUP (ORDER BY lat) FILTER (WHERE NOT switch),
		max(lat) FILTER (WHERE NOT switch))
	INTO r FROM calls;
	RETURN r;
END
$$;
