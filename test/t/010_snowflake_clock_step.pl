# idgen.snowflake_next() while the wall clock steps at run time, and
# sequence overflow inside one tick.
#
# The server runs under libfaketime with FAKETIME_NO_CACHE, so rewriting the
# offset file steps the wall clock (CLOCK_REALTIME) of every server process
# at once; FAKETIME_DONT_FAKE_MONOTONIC keeps the monotonic clock real, so
# idgen's bounded waits are measured on real time.  The psql clients and
# initdb run without libfaketime.
#
#  - A step back within idgen.max_clock_wait (reloadable, set to 1s) is
#    waited out: the call succeeds, above every earlier ID, and the
#    clock_step_back wait counter goes up.  With the default (10 ms) a 0.5 s
#    step is refused.
#  - A step back beyond it is refused with SQLSTATE IG001, a detail saying
#    how far back, and the clock_step_back refusal counter; the state is not
#    reset, and once the clock is back IDs resume by themselves (no restart)
#    above everything issued before.
#  - Sequence overflow: with 2 sequence bits (4 IDs per ms) a statement that
#    asks for thousands of IDs waits for the next tick instead of borrowing
#    future ticks or repeating an ID; with the default layout 200,000 IDs in
#    one statement are unique, strictly increasing and densely sequenced.

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

sub wait_counter { snowflake_counter($_[0], 'idgen_waits_total', $_[1]) }
sub refusal_counter { snowflake_counter($_[0], 'idgen_refusals_total', $_[1]) }

# ---------------------------------------------------------------------------
# A server whose wall clock we control.
# ---------------------------------------------------------------------------

my $node = PostgreSQL::Test::Cluster->new('clock_step');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'idgen'
idgen.worker_id = 3
});
my $clock = $node->basedir . '/faketime_offset';
set_clock($clock, '+0');
start_faked($node, $clock);

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION idgen;
CREATE TABLE ids (ord bigserial PRIMARY KEY, phase text NOT NULL,
                  id bigint NOT NULL);
});

# Insert $n IDs as $phase, one statement, in generation order.
sub issue
{
	my ($phase, $n) = @_;
	$node->safe_psql('postgres',
		"INSERT INTO ids (phase, id) SELECT '$phase', idgen.snowflake_next() FROM generate_series(1, $n)"
	);
	return;
}

# All IDs in generation order are strictly increasing.
sub check_increasing
{
	my ($what) = @_;
	is( $node->safe_psql(
			'postgres', q{
SELECT count(*) FROM (SELECT id, lag(id) OVER (ORDER BY ord) AS prev FROM ids) s
 WHERE id <= prev}),
		'0',
		"$what: every ID is above every ID issued before it");
	return;
}

# The harness: the server's clock follows the file, the client's does not.
my $offset = server_clock_offset($node);
ok(abs($offset) < 2, "server clock is real at +0 (offset $offset s)");
set_clock($clock, '-30');
$offset = server_clock_offset($node);
ok($offset < -28 && $offset > -32,
	"offset file steps the server clock back ($offset s)");
set_clock($clock, '+0');

issue('warm-up', 1000);
is($node->safe_psql('postgres', 'SELECT count(DISTINCT id) FROM ids'),
	'1000', 'warm-up: 1000 distinct IDs');

# ---------------------------------------------------------------------------
# A 0.5 s step back with the default idgen.max_clock_wait (10 ms): refused.
# ---------------------------------------------------------------------------

is($node->safe_psql('postgres', 'SHOW idgen.max_clock_wait'),
	'10ms', 'default idgen.max_clock_wait is 10ms');
{
	my $refused0 = refusal_counter($node, 'clock_step_back');
	issue('before-default-step', 10);
	set_clock($clock, '-0.5');
	my $r = try_sql($node, 'SELECT idgen.snowflake_next()');
	set_clock($clock, '+0');
	is($r->{sqlstate}, 'IG001',
		'0.5 s step back, max_clock_wait 10ms: refused with IG001')
	  or diag("stdout: $r->{stdout}\nstderr: $r->{stderr}");
	is(refusal_counter($node, 'clock_step_back'),
		$refused0 + 1, 'refusal counter clock_step_back went up by one');
}

# ---------------------------------------------------------------------------
# Reload idgen.max_clock_wait = 1s; a 0.8 s step back is then waited out.
# ---------------------------------------------------------------------------

$node->append_conf('postgresql.conf', "idgen.max_clock_wait = '1s'\n");
$node->reload;
$node->poll_query_until('postgres', 'SHOW idgen.max_clock_wait', '1s')
  or die 'idgen.max_clock_wait = 1s was not picked up by reload';

{
	# One session, so that the step comes right after the last ID.
	my $bg = $node->background_psql('postgres');
	is($bg->query_safe('SHOW idgen.max_clock_wait'),
		'1s', 'session sees idgen.max_clock_wait = 1s');
	my $waits0 = wait_counter($node, 'clock_step_back');
	my $refused0 = refusal_counter($node, 'clock_step_back');
	# The last ID before the step, then at once the step and the next call:
	# the clock reads about 0.8 s behind the last ID, within max_clock_wait.
	my $max_before = $bg->query_safe(
		"WITH n AS (INSERT INTO ids (phase, id) SELECT 'before-small-step', idgen.snowflake_next() FROM generate_series(1, 100) RETURNING id) SELECT max(id) FROM n"
	);
	set_clock($clock, '-0.8');
	my $t0 = Time::HiRes::time();
	my $id = $bg->query_safe(
		"WITH n AS (INSERT INTO ids (phase, id) VALUES ('after-small-step', idgen.snowflake_next()) RETURNING id) SELECT id FROM n"
	);
	my $elapsed = Time::HiRes::time() - $t0;
	$bg->quit;

	like($id, qr/^\d+$/, '0.8 s step back: snowflake_next() succeeded');
	is( $node->safe_psql('postgres',
			"SELECT max(id) FROM ids WHERE phase <> 'after-small-step'"),
		$max_before, 'the last ID before the step is the highest before it');
	ok($id > $max_before,
		"ID after the step ($id) is above every earlier ID ($max_before)");
	ok($elapsed >= 0.3 && $elapsed < 5,
		sprintf('the call waited for the clock to catch up (%.3f s)', $elapsed));
	is(wait_counter($node, 'clock_step_back'),
		$waits0 + 1, 'wait counter clock_step_back went up by one');
	is(refusal_counter($node, 'clock_step_back'),
		$refused0, 'a step within max_clock_wait is not counted as a refusal');

	# The clock is still 0.8 s behind real time, but past the last ID now.
	issue('behind-by-0.8s', 1000);
	check_increasing('clock 0.8 s behind, caught up');
}

# ---------------------------------------------------------------------------
# A 30 s step back: refused with IG001 until the clock is back.
# ---------------------------------------------------------------------------

{
	my $last_issued_at =
	  $node->safe_psql('postgres', 'SELECT last_issued_at FROM idgen.status');
	my $max_before = $node->safe_psql('postgres', 'SELECT max(id) FROM ids');
	my $count_before = $node->safe_psql('postgres', 'SELECT count(*) FROM ids');
	my $refused0 = refusal_counter($node, 'clock_step_back');
	my $waits0 = wait_counter($node, 'clock_step_back');
	my $started = $node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()');

	set_clock($clock, '-30');
	for my $i (1 .. 3)
	{
		my $r = try_sql($node,
			"INSERT INTO ids (phase, id) VALUES ('step-30s', idgen.snowflake_next())");
		is($r->{sqlstate}, 'IG001', "30 s step back, call $i: refused with IG001")
		  or diag("stdout: $r->{stdout}\nstderr: $r->{stderr}");
		my ($behind) = $r->{detail} =~ /clock is (\d+) ms behind/;
		ok(defined $behind && $behind > 20000 && $behind <= 30500,
			"call $i: the detail says how far back the clock is ("
			  . ($behind // 'none') . ' ms)')
		  or diag("detail: $r->{detail}");
		like($r->{detail}, qr/max_clock_wait \(1000 ms\)/,
			"call $i: the detail names idgen.max_clock_wait");
	}
	is(refusal_counter($node, 'clock_step_back'),
		$refused0 + 3, 'refusal counter clock_step_back went up by three');
	# Its help text: "Times snowflake_next() found the wall clock behind the
	# last issued tick" -- both the steps waited out and the ones refused.
	is( snowflake_counter($node, 'idgen_clock_step_back_total'),
		refusal_counter($node, 'clock_step_back') +
		  wait_counter($node, 'clock_step_back'),
		'idgen_clock_step_back_total = clock_step_back waits + refusals');

	# Partly forward, still behind: still refused, nothing reset.
	set_clock($clock, '-10');
	my $r = try_sql($node, 'SELECT idgen.snowflake_next()');
	is($r->{sqlstate}, 'IG001', 'clock still 10 s behind: refused with IG001');
	is($node->safe_psql('postgres', 'SELECT last_issued_at FROM idgen.status'),
		$last_issued_at, 'the refusals did not reset the last issued time');
	is($node->safe_psql('postgres', 'SELECT count(*) FROM ids'),
		$count_before, 'no ID was issued while the clock was behind');
	is(wait_counter($node, 'clock_step_back'),
		$waits0, 'refusals are not counted as waits');

	# Back to real time: IDs resume by themselves.
	set_clock($clock, '+0');
	issue('after-30s-step', 1000);
	is( $node->safe_psql(
			'postgres',
			"SELECT count(*), count(DISTINCT id), min(id) > $max_before FROM ids WHERE phase = 'after-30s-step'"
		),
		'1000|1000|t',
		'clock back: 1000 distinct IDs, all above every ID before the step');
	is($node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()'),
		$started, 'the server was not restarted');
	check_increasing('after the 30 s step');
	ok( $node->safe_psql('postgres',
			'SELECT last_issued_at > ' . "'$last_issued_at'" . ' FROM idgen.status') eq 't',
		'last issued time moved on past the time before the step');
}

is( $node->safe_psql(
		'postgres', q{
SELECT count(*) FROM ids
 WHERE id < 0 OR (id >> 12) & 1023 <> 3}),
	'0', 'every ID is positive and carries worker id 3');

# ---------------------------------------------------------------------------
# Default layout (41/10/12), real clock: 200,000 IDs in one statement.
# ---------------------------------------------------------------------------

$node->restart;    # no libfaketime now: clock reads at full speed
ok(abs(server_clock_offset($node)) < 2, 'restarted with the real clock');
{
	my $max_before = $node->safe_psql('postgres', 'SELECT max(id) FROM ids');
	my $waits0 = wait_counter($node, 'sequence_exhausted');
	$node->safe_psql(
		'postgres', q{
CREATE TABLE bulk AS
SELECT g AS ord, idgen.snowflake_next() AS id FROM generate_series(1, 200000) g;
});
	is( $node->safe_psql(
			'postgres',
			"SELECT count(*), count(DISTINCT id), min(id) > $max_before FROM bulk"),
		'200000|200000|t',
		'200,000 IDs in one statement: all distinct, above all earlier IDs');
	# Decoded by hand: tick = id >> 22, worker = bits 12..21, seq = bits 0..11.
	is( $node->safe_psql(
			'postgres', q{
WITH d AS (SELECT ord, id >> 22 AS tick, (id >> 12) & 1023 AS worker,
                  id & 4095 AS seq FROM bulk),
     l AS (SELECT *, lag(tick) OVER w AS ptick, lag(seq) OVER w AS pseq,
                  lag(ord) OVER w AS pord
             FROM d WINDOW w AS (ORDER BY ord))
SELECT count(*) FILTER (WHERE worker <> 3),
       count(*) FILTER (WHERE pord IS NOT NULL AND tick < ptick),
       count(*) FILTER (WHERE tick = ptick AND seq <> pseq + 1),
       count(*) FILTER (WHERE tick > ptick AND seq <> 0),
       max(seq) <= 4095
  FROM l}),
		'0|0|0|0|t',
		'worker id 3 everywhere; ticks never go back; in a tick the sequence counts 0, 1, 2, ... and stays within 4095'
	);
	is( $node->safe_psql(
			'postgres',
			'SELECT max(n) <= 4096 FROM (SELECT count(*) AS n FROM bulk GROUP BY id >> 22) s'
		),
		't',
		'at most 4096 IDs in one 1 ms tick');
	ok( $node->safe_psql('postgres',
			'SELECT (idgen.snowflake_decode(max(id))).ts <= clock_timestamp() FROM bulk') eq
		  't',
		'the last ID does not carry a time in the future');
	diag('default layout: sequence_exhausted waits during 200,000 IDs: '
		  . (wait_counter($node, 'sequence_exhausted') - $waits0));
}

$node->stop;

# ---------------------------------------------------------------------------
# 2 sequence bits (41/20/2): 4 IDs per ms, so a statement overflows the
# sequence of nearly every tick it touches.
# ---------------------------------------------------------------------------

my $small = PostgreSQL::Test::Cluster->new('sequence_overflow');
$small->init;
$small->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'idgen'
idgen.worker_id = 3
idgen.timestamp_bits = 41
idgen.worker_bits = 20
idgen.sequence_bits = 2
});
$small->start;
$small->safe_psql(
	'postgres', q{
CREATE EXTENSION idgen;
CREATE TABLE ids (ord bigserial PRIMARY KEY, id bigint NOT NULL);
});
is($small->safe_psql('postgres', 'SELECT ids_per_second_per_worker FROM idgen.bit_budget()'),
	'4000', '41/20/2 layout: 4000 IDs per second per worker');
{
	my $n = 4000;
	my $waits0 = wait_counter($small, 'sequence_exhausted');
	my $t0 = Time::HiRes::time();
	$small->safe_psql('postgres',
		"INSERT INTO ids (id) SELECT idgen.snowflake_next() FROM generate_series(1, $n)");
	my $elapsed = Time::HiRes::time() - $t0;
	my $waits = wait_counter($small, 'sequence_exhausted') - $waits0;

	is($small->safe_psql('postgres', 'SELECT count(*), count(DISTINCT id) FROM ids'),
		"$n|$n", "$n IDs in one statement, all distinct");
	ok($waits > 0, "sequence_exhausted wait counter went up ($waits waits)");
	# tick = id >> 22, worker = bits 2..21, seq = bits 0..1
	is( $small->safe_psql(
			'postgres', q{
WITH d AS (SELECT ord, id, id >> 22 AS tick, (id >> 2) & 1048575 AS worker,
                  id & 3 AS seq FROM ids),
     l AS (SELECT *, lag(id) OVER w AS pid, lag(tick) OVER w AS ptick,
                  lag(seq) OVER w AS pseq
             FROM d WINDOW w AS (ORDER BY ord))
SELECT count(*) FILTER (WHERE worker <> 3),
       count(*) FILTER (WHERE id <= pid),
       count(*) FILTER (WHERE tick = ptick AND seq <> pseq + 1),
       count(*) FILTER (WHERE tick > ptick AND seq <> 0),
       max(seq)
  FROM l}),
		'0|0|0|0|3',
		'strictly increasing, worker id 3, sequence 0..3 counted densely per tick');
	is( $small->safe_psql(
			'postgres',
			'SELECT max(n) FROM (SELECT count(*) AS n FROM ids GROUP BY id >> 22) s'),
		'4', 'at most (and, with overflow, exactly) 4 IDs in a tick');
	# No borrowing of future ticks: $n IDs at 4 per tick span >= $n/4 ticks of
	# real time, and the last one's time is not ahead of the clock.
	is( $small->safe_psql(
			'postgres',
			"SELECT (max(id) >> 22) - (min(id) >> 22) >= $n / 4 - 1 FROM ids"),
		't', 'the IDs span at least n/4 ticks (no borrowed ticks)');
	ok($elapsed >= ($n / 4 - 1) / 1000,
		sprintf('the statement took at least n/4 ms (%.3f s)', $elapsed));
	is( $small->safe_psql('postgres',
			'SELECT (idgen.snowflake_decode(max(id))).ts <= clock_timestamp() FROM ids'),
		't', 'the last ID does not carry a time in the future');
}
$small->stop;

done_testing();
