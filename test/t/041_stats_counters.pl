# idgen.stats counters move when the events they count happen, on real
# servers.
#
# On a preloaded node with a static worker id (idgen.time_floor_reserve =
# 100ms, idgen.segment_max_step = 10 so that every segment range holds 10
# numbers, probe schedule off):
#  - idgen_ids_issued_total{generator=uuidv7|snowflake|segment} grows by
#    exactly the IDs issued;
#  - idgen_waits_total{generator=snowflake, reason=sequence_exhausted}: 100k
#    Snowflake IDs in one statement use up whole ticks (4096 IDs each) and
#    wait for the next one; never more waits than full ticks;
#  - idgen_time_floor_writes_total: issuing IDs for over a second raises
#    the durable floor many times (about every half reserve), far fewer times
#    than IDs were issued;
#  - idgen_segment_grants_total, idgen_segment_prefetches_total and
#    idgen_waits_total{generator=segment, reason=buffers_empty}: the first
#    call on a new tag waits for a grant, once; consuming several ranges at
#    a steady pace is served by prefetched grants; the grants counter
#    matches the tag's grants and the outbox;
#  - idgen_probe_runs_total and idgen_probe_duplicates_total (per table and
#    column) move with each probe_run().
# On a node with idgen.worker_id = -1 whose idgen.database has no idgen
# extension (so no lease ever comes): snowflake_next() refuses with IG005
# and idgen_refusals_total{generator=snowflake, reason=no_worker_id} counts
# each refusal.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

# Value of the one idgen.stats row of $metric whose labels contain $labels.
sub counter
{
	my ($node, $metric, $labels) = @_;
	$labels //= '{}';
	my $out = $node->safe_psql('postgres',
		"SELECT count(*) || ':' || coalesce(max(value), -1) FROM idgen.stats WHERE metric = '$metric' AND labels @> '$labels'"
	);
	my ($n, $value) = split /:/, $out;
	die "expected one row of $metric $labels, got $n" unless $n == 1;
	return $value;
}

my %C = (
	uuidv7_issued => [ 'idgen_ids_issued_total', '{"generator": "uuidv7"}' ],
	snowflake_issued => [ 'idgen_ids_issued_total', '{"generator": "snowflake"}' ],
	segment_issued => [ 'idgen_ids_issued_total', '{"generator": "segment"}' ],
	sequence_waits => [
		'idgen_waits_total',
		'{"generator": "snowflake", "reason": "sequence_exhausted"}'
	],
	floor_writes => [ 'idgen_time_floor_writes_total', '{"generator": "snowflake"}' ],
	grants => [ 'idgen_segment_grants_total', '{}' ],
	prefetches => [ 'idgen_segment_prefetches_total', '{}' ],
	segment_waits => [
		'idgen_waits_total', '{"generator": "segment", "reason": "buffers_empty"}'
	],
	no_worker_refusals => [
		'idgen_refusals_total',
		'{"generator": "snowflake", "reason": "no_worker_id"}'
	],);

sub read_counters
{
	my ($node) = @_;
	return { map { $_ => counter($node, @{ $C{$_} }) } keys %C };
}

sub deltas
{
	my ($before, $after) = @_;
	return { map { $_ => $after->{$_} - $before->{$_} } keys %$before };
}

my $node = PostgreSQL::Test::Cluster->new('counters');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'idgen'
idgen.worker_id = 1
idgen.database = 'postgres'
idgen.time_floor_reserve = '100ms'
idgen.segment_max_step = 10
idgen.probe_interval = 0
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION idgen');

###########################################################################
# IDs issued per generator
###########################################################################

my $c0 = read_counters($node);
is($node->safe_psql('postgres', 'SELECT count(idgen.uuidv7()) FROM generate_series(1, 1234)'),
	'1234', 'issued 1234 UUIDv7');
is( $node->safe_psql(
		'postgres', 'SELECT count(idgen.snowflake_next()) FROM generate_series(1, 567)'),
	'567',
	'issued 567 Snowflake IDs');
my $d = deltas($c0, read_counters($node));
is($d->{uuidv7_issued}, 1234, 'idgen_ids_issued_total{uuidv7} +1234');
is($d->{snowflake_issued}, 567, 'idgen_ids_issued_total{snowflake} +567');
is($d->{segment_issued}, 0, 'idgen_ids_issued_total{segment} unchanged');
is($d->{no_worker_refusals}, 0, 'no refusals');

###########################################################################
# Snowflake sequence waits
###########################################################################

$c0 = read_counters($node);
is( $node->safe_psql(
		'postgres', 'SELECT count(idgen.snowflake_next()) FROM generate_series(1, 100000)'),
	'100000',
	'issued 100000 Snowflake IDs in one statement');
$d = deltas($c0, read_counters($node));
is($d->{snowflake_issued}, 100000, 'idgen_ids_issued_total{snowflake} +100000');
cmp_ok($d->{sequence_waits}, '>', 0,
	'idgen_waits_total{snowflake, sequence_exhausted} counts waits for the next tick');
cmp_ok($d->{sequence_waits}, '<=', int(100000 / 4096),
	'at most one wait per full tick of 4096 IDs');
note("sequence waits: $d->{sequence_waits}");

###########################################################################
# Time-floor writes
###########################################################################

is($node->safe_psql('postgres', 'SHOW idgen.time_floor_reserve'), '100ms', 'reserve is 100ms');
$c0 = read_counters($node);
my $issued = $node->safe_psql(
	'postgres', q{
DO $$
DECLARE t0 timestamptz := clock_timestamp();
BEGIN
    WHILE clock_timestamp() < t0 + interval '1.2 s' LOOP
        PERFORM idgen.snowflake_next();
    END LOOP;
END $$;
SELECT value FROM idgen.stats WHERE metric = 'idgen_ids_issued_total' AND labels @> '{"generator": "snowflake"}'});
$d = deltas($c0, read_counters($node));
my $ids = $issued - $c0->{snowflake_issued};
note("issued $ids IDs in 1.2 s; time-floor writes: $d->{floor_writes}");
cmp_ok($d->{floor_writes}, '>=', 8,
	'idgen_time_floor_writes_total: the floor was raised again and again over 1.2 s');
cmp_ok($d->{floor_writes}, '<=', 1.2 / 0.05 * 2 + 5,
	'about once per half reserve, not once per ID');
cmp_ok($d->{floor_writes} * 100, '<', $ids, 'far fewer floor writes than IDs');

###########################################################################
# Segment grants, prefetches and caller waits
###########################################################################

$node->safe_psql('postgres', "SELECT idgen.segment_create('cnt', 1, 10)");
$c0 = read_counters($node);
is($node->safe_psql('postgres', "SELECT idgen.segment_next('cnt')"), '1', 'first number of a new tag');
$d = deltas($c0, read_counters($node));
is($d->{segment_waits}, 1,
	'idgen_waits_total{segment, buffers_empty}: the first call on a new tag waited for a grant');
cmp_ok($d->{grants}, '>=', 1, 'idgen_segment_grants_total counts that grant');
is($d->{segment_issued}, 1, 'idgen_ids_issued_total{segment} +1');

# Several ranges at a steady pace (one number every 30 ms, a range of 10 in
# about 300 ms): served by prefetched grants, no caller waits.
my $c1 = read_counters($node);
$node->safe_psql(
	'postgres', q{
DO $$
BEGIN
    FOR i IN 1..54 LOOP
        PERFORM idgen.segment_next('cnt');
        PERFORM pg_sleep(0.03);
    END LOOP;
END $$;});
# Let a grant requested by the last call land.
usleep(500_000);
my $c2 = read_counters($node);
$d = deltas($c1, $c2);
is($d->{segment_issued}, 54, 'idgen_ids_issued_total{segment} +54');
cmp_ok($d->{grants}, '>=', 5, "idgen_segment_grants_total: $d->{grants} grants for 5+ ranges");
cmp_ok($d->{prefetches}, '>=', 4,
	"idgen_segment_prefetches_total: $d->{prefetches} of them ahead of need");
cmp_ok($d->{prefetches}, '<=', $d->{grants}, 'prefetches are grants');
is($d->{segment_waits}, 0, 'no caller waited once the tag was warm');
my $total_grants = $c2->{grants} - $c0->{grants};
is( $node->safe_psql(
		'postgres',
		"SELECT grants || ':' || (SELECT count(*) FROM idgen.segment_events WHERE tag = 'cnt' AND kind = 'grant') FROM idgen.segment_alloc WHERE tag = 'cnt'"
	),
	"$total_grants:$total_grants",
	'the grants counter matches the tag\'s grants and its outbox events');
is( $node->safe_psql('postgres', "SELECT current_step FROM idgen.segment_alloc WHERE tag = 'cnt'"),
	'10', 'ranges of 10 (segment_max_step)');

###########################################################################
# Probe runs and duplicates
###########################################################################

$node->safe_psql(
	'postgres', q{
CREATE TABLE pt (id bigint DEFAULT idgen.snowflake_next());
CREATE INDEX ON pt (id);
INSERT INTO pt SELECT FROM generate_series(1, 100);
INSERT INTO pt SELECT id FROM pt ORDER BY id LIMIT 2;
SELECT idgen.probe_register('pt', 'id');});
my $labels = '{"table": "pt", "column": "id"}';
is(counter($node, 'idgen_probe_runs_total', $labels), 0, 'idgen_probe_runs_total{pt,id} starts at 0');
is(counter($node, 'idgen_probe_duplicates_total', $labels),
	0, 'idgen_probe_duplicates_total{pt,id} starts at 0');
$c0 = read_counters($node);
$node->safe_psql('postgres',
	'SET client_min_messages = error; SELECT count(*) FROM idgen.probe_run()');
is(counter($node, 'idgen_probe_runs_total', $labels), 1, 'a run: idgen_probe_runs_total 1');
is(counter($node, 'idgen_probe_duplicates_total', $labels),
	2, 'idgen_probe_duplicates_total 2 (two IDs repeated)');
is(counter($node, 'idgen_probe_ids_checked', $labels), 100, 'idgen_probe_ids_checked 100');
$node->safe_psql('postgres',
	'SET client_min_messages = error; SELECT count(*) FROM idgen.probe_run()');
is(counter($node, 'idgen_probe_runs_total', $labels), 2, 'another run: 2');
is(counter($node, 'idgen_probe_duplicates_total', $labels),
	4, 'duplicates are summed over runs: 4');
$d = deltas($c0, read_counters($node));
is(join(',', map { "$_=$d->{$_}" } grep { $d->{$_} != 0 } sort keys %$d),
	'', 'probe runs move no generator counter');

$node->stop;

###########################################################################
# Refusals: no worker id
###########################################################################

my $nolease = PostgreSQL::Test::Cluster->new('no_lease');
$nolease->init;
$nolease->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'idgen'
idgen.worker_id = -1
idgen.database = 'noext'
idgen.probe_interval = 0
});
$nolease->start;
$nolease->safe_psql('postgres', 'CREATE DATABASE noext; CREATE EXTENSION idgen;');
isnt($nolease->safe_psql('postgres', 'SELECT lease_state FROM idgen.status'),
	'held', 'no lease is held');
$c0 = read_counters($nolease);
for my $i (1 .. 3)
{
	my ($stdout, $stderr) = ('', '');
	$nolease->psql(
		'postgres', "\\set VERBOSITY verbose\nSELECT idgen.snowflake_next()",
		stdout => \$stdout,
		stderr => \$stderr);
	like($stderr, qr/ERROR:  IG005: refusing to generate Snowflake IDs/,
		"call $i refused with IG005");
}
is($nolease->safe_psql('postgres', 'SELECT idgen.uuidv7() IS NOT NULL'),
	't', 'UUIDv7 needs no worker id');
$d = deltas($c0, read_counters($nolease));
is($d->{no_worker_refusals}, 3,
	'idgen_refusals_total{snowflake, no_worker_id} counts each refusal');
is($d->{snowflake_issued}, 0, 'refused calls issued nothing');
is($d->{uuidv7_issued}, 1, 'the UUIDv7 was counted');
isnt($nolease->safe_psql('postgres', 'SELECT lease_state FROM idgen.status'),
	'held', 'still no lease');
$nolease->stop;

done_testing();
