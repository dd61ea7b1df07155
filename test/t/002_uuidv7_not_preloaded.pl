# idgen on a server WITHOUT shared_preload_libraries (a managed server where
# only CREATE EXTENSION is possible).
#
# idgen.uuidv7() must work per backend: version 7, strictly increasing within
# a backend, unique across backends through its random bits.  Everything that
# needs shared memory (Snowflake, bit_budget, status) must refuse cleanly
# with SQLSTATE 55000 (object_not_in_prerequisite_state) and a hint naming
# shared_preload_libraries, without breaking the session.  idgen.stats must
# say that its counters are this backend's own (scope 'backend').

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('uuidv7_not_preloaded');
$node->init;
# Nothing idgen-specific: no shared_preload_libraries, no idgen.* settings.
$node->start;

is($node->safe_psql('postgres', 'SHOW shared_preload_libraries'),
	'', 'shared_preload_libraries is empty');

my ($ret, $out, $err) = $node->psql('postgres', 'CREATE EXTENSION idgen');
is($ret, 0, 'CREATE EXTENSION idgen works without preloading');
is($err, '', 'CREATE EXTENSION idgen: no error or warning');

# --- uuidv7()
my $u = $node->safe_psql('postgres', 'SELECT idgen.uuidv7()');
like($u, qr/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
	"uuidv7() returns a version 7, RFC 9562 variant UUID ($u)");

is( $node->safe_psql(
		'postgres', q{
SELECT count(*) FILTER (WHERE substr(u::text, 15, 1) <> '7'
                           OR substr(u::text, 20, 1) NOT IN ('8', '9', 'a', 'b')),
       count(DISTINCT u),
       count(*) FILTER (WHERE u <= prev)
  FROM (SELECT u, lag(u) OVER (ORDER BY g) AS prev
          FROM (SELECT g, idgen.uuidv7() AS u FROM generate_series(1, 10000) g) s) s
}),
	'0|10000|0',
	'10k IDs in one backend: all version 7, all distinct, strictly increasing');

# Strictly increasing across statements of the same backend as well.
{
	my $s = $node->background_psql('postgres');
	$s->query_safe('CREATE TEMP TABLE seq (n serial, u uuid)');
	for my $i (1 .. 20)
	{
		$s->query_safe(
			'INSERT INTO seq (u) SELECT idgen.uuidv7() FROM generate_series(1, 50)');
	}
	is( $s->query_safe(
			q{SELECT count(*), count(*) FILTER (WHERE u <= prev)
		        FROM (SELECT u, lag(u) OVER (ORDER BY n) AS prev FROM seq) s}),
		'1000|0',
		'one backend, 20 statements: 1000 IDs strictly increasing');
	$s->quit;
}

# In a parallel worker (uuidv7() is PARALLEL SAFE) it works just the same.
# (PostgreSQL 16 renamed force_parallel_mode to debug_parallel_query.)
my $debug_parallel =
  $node->pg_version >= 16 ? 'debug_parallel_query' : 'force_parallel_mode';
is( $node->safe_psql(
		'postgres', qq{
SET $debug_parallel = on;
SET parallel_setup_cost = 0;
SELECT count(*), count(DISTINCT u), count(*) FILTER (WHERE substr(u::text, 15, 1) = '7')
  FROM (SELECT idgen.uuidv7() AS u FROM generate_series(1, 1000)) s;
}),
	'1000|1000|1000',
	'uuidv7() under force_parallel_mode: 1000 distinct version 7 IDs');

# --- uuidv7_time(), uuidv7(timestamptz)
is( $node->safe_psql(
		'postgres', q{
SELECT idgen.uuidv7_time(u) BETWEEN t0 - interval '1 ms' AND clock_timestamp() + interval '1 ms'
  FROM (SELECT clock_timestamp() AS t0) a, LATERAL (SELECT idgen.uuidv7() AS u OFFSET 0) b
}),
	't',
	'uuidv7_time(uuidv7()) is the current time');
is( $node->safe_psql(
		'postgres', q{
SET TimeZone = 'UTC';
SELECT idgen.uuidv7_time(idgen.uuidv7('2024-05-06 07:08:09.123456+00'))
}),
	'2024-05-06 07:08:09.123456+00',
	'uuidv7_time(uuidv7(ts)) gives back ts to the microsecond');
is( $node->safe_psql(
		'postgres',
		q{SELECT idgen.uuidv7_time('7d444840-9dc0-11d1-b245-5ffdce74fad2') IS NULL}),
	't',
	'uuidv7_time() of a version 1 UUID is NULL');

# --- Functions that need shared memory: SQLSTATE 55000 and a hint
my @needs_preload = (
	[ 'snowflake_next()', 'SELECT idgen.snowflake_next()' ],
	[ 'snowflake_decode(1)', 'SELECT * FROM idgen.snowflake_decode(1)' ],
	[ 'snowflake_min(now())', 'SELECT idgen.snowflake_min(now())' ],
	[ 'bit_budget()', 'SELECT * FROM idgen.bit_budget()' ],
	[ 'idgen.status', 'SELECT * FROM idgen.status' ],);
for my $case (@needs_preload)
{
	my ($name, $sql) = @$case;
	my ($rc, $stdout, $stderr) = $node->psql(
		'postgres',
		"\\set VERBOSITY verbose\n$sql;\nSELECT 'still alive';",
		on_error_stop => 0);
	like($stderr, qr/ERROR:\s+55000:/,
		"$name: fails with SQLSTATE 55000 (object_not_in_prerequisite_state)");
	like($stderr, qr/HINT:.*shared_preload_libraries/,
		"$name: hint mentions shared_preload_libraries");
	like($stdout, qr/still alive/,
		"$name: the session survives the error");
}

# The same error and hint with the default verbosity.
{
	my ($rc, $stdout, $stderr) =
	  $node->psql('postgres', 'SELECT idgen.snowflake_next()');
	isnt($rc, 0, 'snowflake_next() fails (psql exit status)');
	like(
		$stderr,
		qr/ERROR:.*shared_preload_libraries.*\n.*DETAIL:.*\n.*HINT:\s+Add idgen to shared_preload_libraries/,
		'snowflake_next(): message, detail and hint as documented');
}

# uuidv7() keeps working in a session after such an error.
is( $node->safe_psql(
		'postgres', q{
DO $$ BEGIN PERFORM idgen.snowflake_next(); EXCEPTION WHEN object_not_in_prerequisite_state THEN NULL; END $$;
SELECT substr(idgen.uuidv7()::text, 15, 1);
}),
	'7',
	'after a refused snowflake_next(), uuidv7() still works in the same session');

# --- idgen.stats: per-backend
is($node->safe_psql('postgres', "SELECT string_agg(DISTINCT scope, ',') FROM idgen.stats"),
	'backend', 'idgen.stats scope is backend');
my $stat_sql = q{
SELECT value FROM idgen.stats
 WHERE metric = 'idgen_ids_issued_total' AND labels = '{"generator": "uuidv7"}'
};
is( $node->safe_psql(
		'postgres',
		"SELECT count(idgen.uuidv7()) FROM generate_series(1, 123);\n$stat_sql"),
	"123\n123",
	'idgen.stats counts this backend\'s own IDs (123)');
is($node->safe_psql('postgres', $stat_sql),
	'0', 'a new backend starts its own count at 0');

# --- Two concurrent backends: unique IDs (uniqueness only)
$node->safe_psql('postgres',
	'CREATE TABLE shared_ids (client int, u uuid NOT NULL)');

# Two sessions kept open, interleaving their inserts.
{
	my $a = $node->background_psql('postgres');
	my $b = $node->background_psql('postgres');
	isnt($a->query_safe('SELECT pg_backend_pid()'),
		$b->query_safe('SELECT pg_backend_pid()'),
		'two distinct backends');
	for my $i (1 .. 10)
	{
		$a->query_safe(
			'INSERT INTO shared_ids SELECT 1, idgen.uuidv7() FROM generate_series(1, 500)');
		$b->query_safe(
			'INSERT INTO shared_ids SELECT 2, idgen.uuidv7() FROM generate_series(1, 500)');
	}
	$a->quit;
	$b->quit;
}

# And truly concurrent clients with pgbench: 4 backends at once.
$node->pgbench(
	'--no-vacuum --client=4 --jobs=2 --transactions=50',
	0,
	[qr{processed: 200/200}],
	[qr{^$}],
	'pgbench: 4 concurrent backends generating IDs',
	{
		'002_idgen_ids' => q{
INSERT INTO shared_ids SELECT 3, idgen.uuidv7() FROM generate_series(1, 100);
}
	},
	'postgres');

is( $node->safe_psql(
		'postgres', 'SELECT count(*), count(DISTINCT u) FROM shared_ids'),
	'30000|30000',
	'IDs from concurrent backends without preload: 30000 IDs, all distinct');
is( $node->safe_psql(
		'postgres',
		q{SELECT count(DISTINCT substr(replace(u::text, '-', ''), 20)) FROM shared_ids}),
	'30000',
	'their 52-bit random tails are all distinct too');

$node->stop;
done_testing();
