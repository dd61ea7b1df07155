# idgen.uuidv7() on a preloaded server across restarts and crashes.
#
# With shared_preload_libraries the last issued position lives in shared
# memory, which a restart (clean or after a crash) starts afresh.  Ordering
# across a restart then rests on the clock: the first IDs after the restart
# must still sort above every ID issued before it, and the time they embed
# must be the current time, not a time carried over or invented.  (With a
# clock that runs forward; nothing persists the UUIDv7 position, so a clock
# set back while the server was down is not covered here.)
#
# Also the idgen.stats issued counter: it is server-wide (every session adds
# to the same counter); a session sees its own uncommitted IDs at once; IDs
# of aborted and of prepared transactions are counted too.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $N = 1000;

my $node = PostgreSQL::Test::Cluster->new('uuidv7_restart');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'idgen'
idgen.worker_id = 1
restart_after_crash = on
max_prepared_transactions = 2
});
$node->start;

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION idgen;
CREATE TABLE ids (batch int NOT NULL, n int NOT NULL, u uuid NOT NULL,
                  PRIMARY KEY (batch, n));
-- t0, an ID and t1, read one after the other, n times.
CREATE FUNCTION probe(n int)
RETURNS TABLE (t0 timestamptz, u uuid, t1 timestamptz)
LANGUAGE plpgsql AS $$
BEGIN
	FOR i IN 1..n LOOP
		t0 := clock_timestamp();
		u := idgen.uuidv7();
		t1 := clock_timestamp();
		RETURN NEXT;
	END LOOP;
END
$$;
});

# Generate $N IDs as batch $batch, in one statement, in generation order.
sub generate_batch
{
	my ($batch) = @_;
	$node->safe_psql('postgres',
		"INSERT INTO ids SELECT $batch, g, idgen.uuidv7() FROM generate_series(1, $N) g"
	);
}

# Checks on one batch: well-formed, unique, strictly increasing.
sub check_batch
{
	my ($batch, $what) = @_;

	is( $node->safe_psql(
			'postgres',
			"SELECT count(*), count(DISTINCT u) FROM ids WHERE batch = $batch"),
		"$N|$N",
		"$what: $N IDs, all distinct");
	is( $node->safe_psql(
			'postgres', qq{
SELECT count(*) FROM ids
 WHERE batch = $batch
   AND (substr(u::text, 15, 1) <> '7' OR substr(u::text, 20, 1) NOT IN ('8', '9', 'a', 'b'))
}),
		'0',
		"$what: every ID has version 7 and the RFC 9562 variant");
	is( $node->safe_psql(
			'postgres', qq{
SELECT count(*) FROM (
	SELECT u, lag(u) OVER (ORDER BY n) AS prev FROM ids WHERE batch = $batch
) s WHERE u <= prev
}),
		'0',
		"$what: IDs strictly increasing in generation order");
}

# Every ID of $batch sorts above every ID of the earlier batches, and the
# first ID after the restart above the last one before it.  (uuid has no
# min()/max() aggregates before PostgreSQL 16, hence ORDER BY ... LIMIT 1.)
sub check_after
{
	my ($batch, $what) = @_;

	my ($old_max, $new_min) = split /\|/,
	  $node->safe_psql(
		'postgres', qq{
SELECT (SELECT u FROM ids WHERE batch < $batch ORDER BY u DESC LIMIT 1),
       (SELECT u FROM ids WHERE batch = $batch ORDER BY u LIMIT 1)
});
	note "$what: max before $old_max, min after $new_min";
	is( $node->safe_psql(
			'postgres', qq{
SELECT (SELECT u FROM ids WHERE batch = $batch ORDER BY u LIMIT 1)
     > (SELECT u FROM ids WHERE batch < $batch ORDER BY u DESC LIMIT 1)
}),
		't',
		"$what: every new ID sorts above every earlier ID");
	is( $node->safe_psql(
			'postgres', qq{
SELECT (SELECT u FROM ids WHERE batch = $batch AND n = 1)
     > (SELECT u FROM ids WHERE batch = $batch - 1 AND n = $N)
}),
		't',
		"$what: first ID after > last ID before");
	is( $node->safe_psql(
			'postgres', qq{
SELECT count(*) FROM ids a JOIN ids b ON a.u = b.u AND (a.batch, a.n) <> (b.batch, b.n)
}),
		'0',
		"$what: no ID repeats across batches");
}

# The time a fresh ID embeds is the clock's time: between a clock reading
# just before and one just after (1 ms of slack for rounding), and typically
# within a few ms of the reading before it (median: a backend preempted
# between the two readings on a busy machine must not fail the test).
sub check_embedded_time
{
	my ($what) = @_;

	my ($outside, $worst_outside_us, $median_us, $nulls, $outside_min) = split /\|/,
	  $node->safe_psql(
		'postgres', q{
SELECT count(*) FILTER (WHERE e NOT BETWEEN t0 - interval '1 ms' AND t1 + interval '1 ms'),
       round(max(greatest(extract(epoch FROM t0 - e), extract(epoch FROM e - t1), 0)) * 1e6),
       round((percentile_cont(0.5) WITHIN GROUP (ORDER BY abs(extract(epoch FROM e - t0))) * 1e6)::numeric),
       count(*) FILTER (WHERE e IS NULL),
       count(*) FILTER (WHERE u < idgen.uuidv7_min(t0)
                           OR u >= idgen.uuidv7_min(t1 + interval '1 ms'))
  FROM (SELECT t0, u, t1, idgen.uuidv7_time(u) AS e FROM probe(200)) s
});
	note "$what: embedded time vs clock: median |e - t0| = $median_us us, "
	  . "worst distance outside [t0, t1] = $worst_outside_us us";
	is($nulls, '0', "$what: uuidv7_time() decodes every fresh ID");
	is($outside, '0',
		"$what: embedded time within 1 ms of clock_timestamp() around the call"
	);
	is($outside_min, '0',
		"$what: uuidv7_min(t0) <= ID < uuidv7_min(t1 + 1 ms) for every fresh ID");
	cmp_ok($median_us, '<', 5000,
		"$what: embedded time a few ms at most from clock_timestamp() (median)");
}

# --- Before any restart
generate_batch(1);
check_batch(1, 'initial');
check_embedded_time('initial');

# --- Clean restart
$node->restart;
generate_batch(2);
check_batch(2, 'after clean restart');
check_after(2, 'after clean restart');
check_embedded_time('after clean restart');

# --- Crash: immediate shutdown (no shutdown checkpoint), then start
$node->stop('immediate');
$node->start;
is($node->safe_psql('postgres', 'SELECT count(*) FROM ids'),
	2 * $N, 'committed IDs survive the immediate shutdown');
generate_batch(3);
check_batch(3, 'after immediate stop');
check_after(3, 'after immediate stop');
check_embedded_time('after immediate stop');

# --- Crash of a backend: the postmaster reinitialises shared memory
# (restart_after_crash) without itself restarting.
{
	my $victim = $node->background_psql('postgres');
	my $pid = $victim->query_safe('SELECT pg_backend_pid()');
	$victim->query_safe('SELECT idgen.uuidv7()');
	ok(kill('KILL', $pid), "SIGKILL backend $pid");
	# psql notices the lost connection; do not let that fail the test.
	eval { $victim->quit; };
	ok( $node->poll_query_until(
			'postgres', 'SELECT count(*) > 0 FROM ids'),
		'server is back after crash recovery');
	like(
		slurp_file($node->logfile),
		qr/all server processes terminated; reinitializing/,
		'postmaster reinitialised after the backend crash');
}
generate_batch(4);
check_batch(4, 'after backend crash');
check_after(4, 'after backend crash');
check_embedded_time('after backend crash');

# --- idgen.stats: one server-wide issued counter
my $stat_sql = q{
SELECT value FROM idgen.stats
 WHERE metric = 'idgen_ids_issued_total' AND labels = '{"generator": "uuidv7"}'
};
is( $node->safe_psql(
		'postgres', "SELECT string_agg(DISTINCT scope, ',') FROM idgen.stats"),
	'server',
	'idgen.stats scope is server on a preloaded server');
is($node->safe_psql('postgres', "SELECT count(*) FROM ($stat_sql) s"),
	'1', 'exactly one uuidv7 issued counter row');

my $base = $node->safe_psql('postgres', $stat_sql);
cmp_ok($base, '>=', $N,
	'issued counter counts IDs issued since the last start (at least one batch)');

my $s1 = $node->background_psql('postgres');
my $s2 = $node->background_psql('postgres');
isnt($s1->query_safe('SELECT pg_backend_pid()'),
	$s2->query_safe('SELECT pg_backend_pid()'),
	'two sessions with distinct backends');

is($s1->query_safe('SELECT count(idgen.uuidv7()) FROM generate_series(1, 300)'),
	'300', 'session 1 issues 300 IDs');
is($s2->query_safe('SELECT count(idgen.uuidv7()) FROM generate_series(1, 200)'),
	'200', 'session 2 issues 200 IDs');
is($node->safe_psql('postgres', $stat_sql),
	$base + 500, 'a third session sees both sessions\' IDs: base + 300 + 200');
is($s1->query_safe($stat_sql), $base + 500, 'session 1 sees the sum too');
is($s2->query_safe($stat_sql), $base + 500, 'session 2 sees the sum too');

# Within an open transaction a session sees its own IDs at once; IDs of a
# transaction that aborts were issued all the same and stay counted.
$s1->query_safe('BEGIN');
$s1->query_safe('SELECT count(idgen.uuidv7()) FROM generate_series(1, 1000)');
is($s1->query_safe($stat_sql),
	$base + 1500, 'session sees its own uncommitted IDs in the counter');
$s1->query_safe('ROLLBACK');
is($node->safe_psql('postgres', $stat_sql),
	$base + 1500, 'IDs of a rolled-back transaction stay counted');

# Interleaved small calls from both sessions still add up exactly.
for my $i (1 .. 10)
{
	$s1->query_safe('SELECT idgen.uuidv7()');
	$s2->query_safe('SELECT idgen.uuidv7(), idgen.uuidv7()');
}
is($node->safe_psql('postgres', $stat_sql),
	$base + 1530, 'interleaved single calls from two sessions add up (30 more)');

# IDs of a transaction that is prepared, and whose session then ends
# without running another transaction, are counted at PREPARE.
$s2->query_safe('BEGIN');
$s2->query_safe('SELECT count(idgen.uuidv7()) FROM generate_series(1, 100)');
$s2->query_safe("PREPARE TRANSACTION 'idgen_stats'");
$s2->quit;
is($node->safe_psql('postgres', $stat_sql),
	$base + 1630, 'IDs of a prepared transaction are counted when its session has gone');
$node->safe_psql('postgres', "COMMIT PREPARED 'idgen_stats'");
is($node->safe_psql('postgres', $stat_sql),
	$base + 1630, 'COMMIT PREPARED does not count them a second time');

$s1->quit;

$node->stop;
done_testing();
