# The durable Snowflake time floor across restarts.
#
# Shared memory, and with it the last issued Snowflake position, is lost at
# every restart.  What keeps a restarted server from issuing an ID at or
# below one it issued before is the durable time floor: raised ahead of
# issued time (by idgen.time_floor_reserve) and made durable (WAL + state
# file) before an ID above it leaves snowflake_next().  After a restart with
# the clock behind the floor, calls refuse with SQLSTATE IG002 until the
# clock has passed it, then resume by themselves above every earlier ID.
#
# The server runs under libfaketime (offset file re-read on every clock
# read, monotonic clock real); clients and initdb run with the real clock.
# Cases: clean stop (the floor is lowered to the last issued tick at
# shutdown), immediate stop (crash recovery replays the floor's WAL
# records), and a backend crash right after a checkpoint (the postmaster
# re-initialises shared memory without stopping, and with no floor record
# to replay the floor comes from the state file alone), each with the clock
# 30 s behind while the server comes back.  Every ID issued is kept in a table;
# committed rows survive all three, so "min(new) > max(old)" is checked
# against everything issued before.

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

my $node = PostgreSQL::Test::Cluster->new('restart_floor');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'idgen'
idgen.worker_id = 3
idgen.time_floor_reserve = 500ms
restart_after_crash = on
});
my $clock = $node->basedir . '/faketime_offset';
set_clock($clock, '+0');
start_faked($node, $clock);
my $state_file = $node->data_dir . '/idgen_snowflake.state';

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION idgen;
CREATE TABLE ids (ord bigserial PRIMARY KEY, phase text NOT NULL,
                  id bigint NOT NULL);
});

ok(abs(server_clock_offset($node)) < 2, 'server clock real at +0');
is( $node->safe_psql(
		'postgres', 'SELECT last_issued_at IS NULL, time_floor IS NULL FROM idgen.status'),
	't|t',
	'fresh data directory: nothing issued, no floor');
ok(!-e $state_file, 'no state file before the first ID');

# Issue IDs as $phase for about $seconds seconds (batches of 50, 40 ms apart).
sub issue_for
{
	my ($phase, $seconds) = @_;
	my $rounds = int($seconds / 0.04);
	$node->safe_psql(
		'postgres', qq{
DO \$\$
BEGIN
	FOR r IN 1..$rounds LOOP
		INSERT INTO ids (phase, id)
		SELECT '$phase', idgen.snowflake_next() FROM generate_series(1, 50);
		PERFORM pg_sleep(0.04);
	END LOOP;
END
\$\$;});
	return;
}

# Every ID is above every ID issued before it, in issue order.
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

# ---------------------------------------------------------------------------
# The floor is reserved ahead of issued time and raised as time goes on.
# ---------------------------------------------------------------------------

{
	my $t0 = Time::HiRes::time();
	issue_for('first', 1.6);
	my $elapsed = Time::HiRes::time() - $t0;
	my $writes = snowflake_counter($node, 'idgen_time_floor_writes_total');
	my $n = $node->safe_psql('postgres', 'SELECT count(*) FROM ids');
	ok($writes >= 2,
		sprintf('issuing for %.1f s (> 500 ms reserve) raised the floor several times (%d writes)',
			$elapsed, $writes));
	ok($writes < $n / 10,
		"the floor is not written for every ID ($writes writes for $n IDs)");
	ok(-e $state_file, 'state file written');

	is( $node->safe_psql(
			'postgres', q{
SELECT time_floor > last_issued_at,
       time_floor <= last_issued_at + interval '500 ms',
       last_issued_at = (SELECT (idgen.snowflake_decode(max(id))).ts FROM ids)
  FROM idgen.status}),
		't|t|t',
		'time_floor is ahead of last_issued_at by at most the reserve; last_issued_at is the last ID\'s time'
	);

	# A second stretch: the floor keeps moving with issued time.
	my $floor0 = $node->safe_psql('postgres', 'SELECT time_floor FROM idgen.status');
	issue_for('second', 0.8);
	ok( snowflake_counter($node, 'idgen_time_floor_writes_total') > $writes,
		'the floor write counter went up while issuing for longer than the reserve');
	is( $node->safe_psql('postgres',
			"SELECT time_floor > '$floor0' AND time_floor > last_issued_at FROM idgen.status"),
		't', 'the floor moved on, still ahead of issued time');
	check_increasing('before any restart');
}

# After a restart with the clock 30 s behind: refusals with IG002 counted as
# time_floor refusals and nothing issued; then back to real time, IDs resume
# above $max_old without another restart.
sub check_refuses_then_resumes
{
	my ($what, $max_old, $last_old) = @_;

	my $offset = server_clock_offset($node);
	ok($offset < -28 && $offset > -32,
		"$what: server came back with its clock 30 s behind ($offset s)");
	is( $node->safe_psql(
			'postgres', "SELECT time_floor >= '$last_old' FROM idgen.status"),
		't',
		"$what: the floor after the restart is at or above the last issued time before it"
	);
	my $refused0 = snowflake_counter($node, 'idgen_refusals_total', 'time_floor');
	my $count0 = $node->safe_psql('postgres', 'SELECT count(*) FROM ids');
	for my $i (1 .. 2)
	{
		my $r = try_sql($node,
			"INSERT INTO ids (phase, id) VALUES ('$what: refused', idgen.snowflake_next())");
		is($r->{sqlstate}, 'IG002', "$what: call $i refused with IG002 (time floor)")
		  or diag("stdout: $r->{stdout}\nstderr: $r->{stderr}");
		my ($behind) = $r->{detail} =~ /clock is (\d+) ms behind/;
		ok(defined $behind && $behind > 20000 && $behind <= 31000,
			"$what: call $i: the detail says how far behind the floor ("
			  . ($behind // 'none') . ' ms)')
		  or diag("detail: $r->{detail}");
	}
	is(snowflake_counter($node, 'idgen_refusals_total', 'time_floor'),
		$refused0 + 2, "$what: refusal counter time_floor went up by two");
	is($node->safe_psql('postgres', 'SELECT count(*) FROM ids'),
		$count0, "$what: nothing was issued while refusing");

	set_clock($clock, '+0');
	# After a crash the floor can still be up to the reserve (500 ms) ahead
	# of a correct clock: wait (bounded) for the first ID before the batch.
	my ($resumed) = poll_until($node, 'SELECT idgen.snowflake_next() > 0', 't', 10);
	ok($resumed, "$what: Snowflake IDs resume once the clock is right again");
	$node->safe_psql('postgres',
		"INSERT INTO ids (phase, id) SELECT '$what: resumed', idgen.snowflake_next() FROM generate_series(1, 1000)"
	);
	is( $node->safe_psql(
			'postgres',
			"SELECT count(*), count(DISTINCT id), min(id) > $max_old FROM ids WHERE phase = '$what: resumed'"
		),
		'1000|1000|t',
		"$what: clock back, IDs resume without a restart, all above every ID issued before");
	check_increasing($what);
	return;
}

# ---------------------------------------------------------------------------
# Clean stop, clock 30 s back, start.
# ---------------------------------------------------------------------------

{
	my $max_old = $node->safe_psql('postgres', 'SELECT max(id) FROM ids');
	my $last_old =
	  $node->safe_psql('postgres', 'SELECT last_issued_at FROM idgen.status');
	$node->stop('fast');
	set_clock($clock, '-30');
	start_faked($node, $clock);
	# At clean shutdown the floor is lowered to the last issued tick.
	is($node->safe_psql('postgres', 'SELECT time_floor FROM idgen.status'),
		$last_old, 'clean stop: the floor is the last issued tick');
	check_refuses_then_resumes('clean stop', $max_old, $last_old);
}

# ---------------------------------------------------------------------------
# Immediate stop (crash recovery at start), clock 30 s back, start.
# ---------------------------------------------------------------------------

{
	issue_for('before immediate stop', 0.8);
	my $max_old = $node->safe_psql('postgres', 'SELECT max(id) FROM ids');
	my $count_old = $node->safe_psql('postgres', 'SELECT count(*) FROM ids');
	my $last_old =
	  $node->safe_psql('postgres', 'SELECT last_issued_at FROM idgen.status');
	$node->stop('immediate');
	set_clock($clock, '-30');
	start_faked($node, $clock);
	is($node->safe_psql('postgres', 'SELECT count(*) FROM ids'),
		$count_old, 'immediate stop: every committed ID survived');
	check_refuses_then_resumes('immediate stop', $max_old, $last_old);
}

# ---------------------------------------------------------------------------
# A backend crash: the postmaster resets shared memory and runs crash
# recovery while the clock is 30 s behind.
# ---------------------------------------------------------------------------

{
	issue_for('before backend crash', 0.8);
	# With a checkpoint after the last floor record, crash recovery replays
	# none: the floor must come from the state file alone.
	$node->safe_psql('postgres', 'CHECKPOINT');
	my $max_old = $node->safe_psql('postgres', 'SELECT max(id) FROM ids');
	my $count_old = $node->safe_psql('postgres', 'SELECT count(*) FROM ids');
	my $last_old =
	  $node->safe_psql('postgres', 'SELECT last_issued_at FROM idgen.status');
	my $started = $node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()');

	set_clock($clock, '-30');
	# Before the crash the clock step is a run-time step: IG001.
	my $r = try_sql($node, 'SELECT idgen.snowflake_next()');
	is($r->{sqlstate}, 'IG001', 'backend crash: before it, the step back is refused with IG001');

	my $bg = $node->background_psql('postgres', on_error_stop => 0);
	my $pid = $bg->query_safe('SELECT pg_backend_pid()');
	ok(kill('KILL', $pid), "SIGKILL backend $pid");
	$bg->quit;
	$node->poll_query_until('postgres',
		"SELECT pg_postmaster_start_time() = '$started'"
		  . ' AND NOT pg_is_in_recovery()'
		  . " AND (SELECT count(*) FROM pg_stat_activity WHERE pid = $pid) = 0")
	  or die 'server did not come back after the backend crash';
	ok($node->log_contains(qr/terminated by signal 9/),
		'backend crash: the postmaster reinitialised after the crash');
	is($node->safe_psql('postgres', 'SELECT count(*) FROM ids'),
		$count_old, 'backend crash: every committed ID survived');
	check_refuses_then_resumes('backend crash', $max_old, $last_old);
}

my $log = slurp_file($node->logfile);
unlike($log, qr/PANIC|idgen redo/, 'no PANIC and no idgen redo complaint in the log');

$node->stop;
done_testing();
