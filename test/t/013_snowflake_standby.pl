# The Snowflake time floor on a streaming standby and after its promotion.
#
# The primary WAL-logs every raise of its time floor; a standby replays the
# records into its shared memory and its own state file.  It issues no
# Snowflake IDs while in recovery.  Promoted after the primary crashed, with
# its clock behind the old primary's last IDs, it refuses (SQLSTATE IG002)
# until its clock passes the replayed floor, and then issues IDs above every
# ID the old primary issued -- even though the state file it inherited with
# its base backup holds a much older floor.
#
# Both servers run under libfaketime, each with its own offset file (re-read
# on every clock read; monotonic clock real).  The primary issues its first
# IDs with its clock 60 s behind, so the state file in the base backup holds
# a floor about 60 s old; it then steps forward to real time and issues IDs
# for over a second with idgen.time_floor_reserve = 100ms, so that many
# floor records stream to the standby.  At promotion the standby's clock is
# 30 s behind: past the stale floor of its base backup, but behind the
# floor that came through WAL.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use IdgenTest;
use Time::HiRes ();

require_libfaketime();

# The floor (Unix ms) recorded in a data directory's idgen_snowflake.state:
# magic, version, layout (4 x int32, int64 epoch), int64 floor_ms, ...
sub state_file_floor_ms
{
	my ($datadir) = @_;
	my $bytes = slurp_file("$datadir/idgen_snowflake.state");
	my ($magic, $version, @rest) = unpack('L L l l l l q q l L', $bytes);
	die sprintf('bad state file magic %08x', $magic) unless $magic == 0x49444746;
	return $rest[5];
}

# Unix ms of a timestamptz, as the server prints it.
sub ms_of
{
	my ($node, $ts) = @_;
	return $node->safe_psql('postgres',
		"SELECT (extract(epoch FROM '$ts'::timestamptz) * 1000)::bigint");
}

# ---------------------------------------------------------------------------
# Primary, clock 60 s behind: first IDs, base backup, standby.
# ---------------------------------------------------------------------------

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'idgen'
idgen.worker_id = 3
idgen.time_floor_reserve = 100ms
});
my $primary_clock = $primary->basedir . '/faketime_offset';
set_clock($primary_clock, '-60');
start_faked($primary, $primary_clock);
my $offset = server_clock_offset($primary);
ok($offset < -58 && $offset > -62, "primary clock 60 s behind ($offset s)");

$primary->safe_psql(
	'postgres', q{
CREATE EXTENSION idgen;
CREATE TABLE ids (ord bigserial PRIMARY KEY, phase text NOT NULL,
                  id bigint NOT NULL);
INSERT INTO ids (phase, id)
SELECT 'before backup', idgen.snowflake_next() FROM generate_series(1, 100);
});
my $stale_floor =
  $primary->safe_psql('postgres', 'SELECT time_floor FROM idgen.status');

$primary->backup('backup');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'backup', has_streaming => 1);
my $standby_clock = $standby->basedir . '/faketime_offset';
set_clock($standby_clock, '+0');
start_faked($standby, $standby_clock);
$primary->wait_for_catchup($standby, 'replay');

is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'),
	't', 'standby is in recovery');
is($standby->safe_psql('postgres', 'SELECT time_floor FROM idgen.status'),
	$stale_floor, 'standby starts with the floor of its base backup (60 s old)');

# ---------------------------------------------------------------------------
# Primary at real time issues IDs for > 1 s; floor records stream over.
# ---------------------------------------------------------------------------

set_clock($primary_clock, '+0');
{
	my $writes0 = snowflake_counter($primary, 'idgen_time_floor_writes_total');
	$primary->safe_psql(
		'postgres', q{
DO $$
BEGIN
	FOR r IN 1..30 LOOP
		INSERT INTO ids (phase, id)
		SELECT 'streamed', idgen.snowflake_next() FROM generate_series(1, 50);
		PERFORM pg_sleep(0.04);
	END LOOP;
END
$$;});
	my $writes = snowflake_counter($primary, 'idgen_time_floor_writes_total') - $writes0;
	ok($writes >= 4, "primary raised its floor many times ($writes floor writes)");
}
my $primary_max = $primary->safe_psql('postgres', 'SELECT max(id) FROM ids');
my $primary_count = $primary->safe_psql('postgres', 'SELECT count(*) FROM ids');
my $primary_floor =
  $primary->safe_psql('postgres', 'SELECT time_floor FROM idgen.status');
my $primary_last =
  $primary->safe_psql('postgres', 'SELECT last_issued_at FROM idgen.status');
is( $primary->safe_psql(
		'postgres', "SELECT '$primary_floor'::timestamptz > '$stale_floor'::timestamptz + interval '50 s'"),
	't', 'the primary\'s floor is now far above the one in the base backup');

$primary->wait_for_catchup($standby, 'replay', $primary->lsn('flush'));

is($standby->safe_psql('postgres', 'SELECT time_floor FROM idgen.status'),
	$primary_floor, 'standby\'s floor equals the primary\'s after catch-up');
is(state_file_floor_ms($standby->data_dir),
	ms_of($standby, $primary_floor),
	'standby wrote the replayed floor to its own state file');
is($standby->safe_psql('postgres', 'SELECT count(*), max(id) FROM ids'),
	"$primary_count|$primary_max", 'standby has every ID the primary issued');
{
	my $r = try_sql($standby, 'SELECT idgen.snowflake_next()');
	is($r->{sqlstate}, '25006',
		'standby: snowflake_next() refuses during recovery (read-only SQLSTATE 25006)')
	  or diag("stdout: $r->{stdout}\nstderr: $r->{stderr}");
	like($r->{stderr}, qr/cannot generate Snowflake IDs during recovery/,
		'standby: the error says why');
}
is($standby->safe_psql('postgres', 'SELECT last_issued_at IS NULL FROM idgen.status'),
	't', 'standby has issued nothing');

# ---------------------------------------------------------------------------
# Primary crashes; the standby, clock 30 s behind, is promoted.
# ---------------------------------------------------------------------------

$primary->stop('immediate');
set_clock($standby_clock, '-30');
$offset = server_clock_offset($standby);
ok($offset < -28 && $offset > -32, "standby clock now 30 s behind ($offset s)");
ok( $standby->safe_psql('postgres',
		"SELECT clock_timestamp() > '$stale_floor'::timestamptz + interval '20 s'"
		  . " AND clock_timestamp() < '$primary_last'::timestamptz - interval '10 s'") eq 't',
	'standby clock is past the base backup\'s floor but behind the primary\'s last IDs');

$standby->promote;
$standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()')
  or die 'standby was not promoted';

is($standby->safe_psql('postgres', 'SELECT time_floor FROM idgen.status'),
	$primary_floor, 'promoted standby keeps the replayed floor');
{
	my $refused0 = snowflake_counter($standby, 'idgen_refusals_total', 'time_floor');
	for my $i (1 .. 2)
	{
		my $r = try_sql($standby,
			"INSERT INTO ids (phase, id) VALUES ('promoted, clock behind', idgen.snowflake_next())");
		is($r->{sqlstate}, 'IG002',
			"promoted standby, clock 30 s behind: call $i refused with IG002 (time floor)")
		  or diag("stdout: $r->{stdout}\nstderr: $r->{stderr}");
		my ($behind) = $r->{detail} =~ /clock is (\d+) ms behind/;
		ok(defined $behind && $behind > 15000 && $behind <= 31000,
			"call $i: the detail says how far behind (" . ($behind // 'none') . ' ms)')
		  or diag("detail: $r->{detail}");
	}
	is(snowflake_counter($standby, 'idgen_refusals_total', 'time_floor'),
		$refused0 + 2, 'refusal counter time_floor went up by two');
	is($standby->safe_psql('postgres', 'SELECT count(*) FROM ids'),
		$primary_count, 'nothing issued while refusing');
}

# Clock back to real time: IDs resume, above everything the old primary did.
set_clock($standby_clock, '+0');
$standby->safe_psql('postgres',
	"INSERT INTO ids (phase, id) SELECT 'promoted', idgen.snowflake_next() FROM generate_series(1, 1000)"
);
is( $standby->safe_psql(
		'postgres',
		"SELECT count(*), count(DISTINCT id), min(id) > $primary_max FROM ids WHERE phase = 'promoted'"
	),
	'1000|1000|t',
	'promoted standby, clock back: IDs above every ID the old primary issued');
is( $standby->safe_psql(
		'postgres', q{
SELECT count(*) FROM (SELECT id, lag(id) OVER (ORDER BY ord) AS prev FROM ids) s
 WHERE id <= prev}),
	'0', 'every ID, old primary then promoted standby, strictly increasing');
is( $standby->safe_psql(
		'postgres',
		"SELECT (idgen.snowflake_decode(min(id))).ts > '$primary_last' FROM ids WHERE phase = 'promoted'"
	),
	't', 'the promoted standby\'s IDs carry times after the old primary\'s last');

$standby->stop;
done_testing();
