# The failover burn covers every range the old primary could have used,
# however fast auto-tuning grew the step (issue 9, item 8).
#
# A primary streams to a standby that holds a physical replication slot.
# The standby is stopped: the primary keeps the slot, so it knows the
# standby exists and what it has flushed.  A burst follows.  With
# idgen.segment_duration at its default, every grant doubles the step, so
# without a fence the old primary grants ranges far beyond what the
# standby's burn estimate covers (the issue saw 34,486 repeats; this test
# sees thousands on 1.0; idgen.segment_min_range = 0 leaves the growth to
# doubling, one grant at a time).  idgen.segment_burn_window = 0 keeps the headroom
# at idgen.segment_burn_steps (10) steps, so that the burst outruns it.
# With the fence, the primary uses a range only once the standby has a
# fence at or above its end, so the burst stops (IG011, "held back") once
# the fence the standby confirmed is used up.  The primary then crashes, the
# standby is promoted, and no number it hands out was handed out by the old
# primary: all are at or above the fence the standby had.
#
# Then the promoted standby, which has no standby or slot of its own:
# nothing to fence, a burst through many doubling grants runs through.
#
# Last, a standby without a slot whose walreceiver is paused: it stays
# connected, so the primary fences on its walsender's flush position.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use IdgenTest;
use Time::HiRes ();

my $t_start = Time::HiRes::time();

my $primary = PostgreSQL::Test::Cluster->new('burn_primary');
$primary->init(allows_streaming => 1);
$primary->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'idgen'
idgen.worker_id = 1
idgen.database = 'postgres'
idgen.segment_wait_timeout = 1500
idgen.segment_burn_window = 0
idgen.segment_min_range = 0
});
$primary->start;
$primary->safe_psql(
	'postgres', q{
CREATE EXTENSION idgen;
SELECT pg_create_physical_replication_slot('standby_slot', true);
CREATE TABLE issued (n bigint NOT NULL);
});
$primary->backup('bk');
my $standby = PostgreSQL::Test::Cluster->new('burn_standby');
$standby->init_from_backup($primary, 'bk', has_streaming => 1);
$standby->append_conf('postgresql.conf', "primary_slot_name = 'standby_slot'\n");
$standby->start;
$primary->wait_for_catchup($standby);
wait_for_worker($primary);

# Grants 1 and 2 (the first call, then the prefetch), then grant 3.
$primary->safe_psql('postgres', "SELECT idgen.segment_create('b', 1, 1000)");
$primary->safe_psql('postgres',
	"INSERT INTO issued SELECT idgen.segment_next('b') FROM generate_series(1, 150)");
$primary->poll_query_until('postgres',
	"SELECT ranges_buffered = 2 FROM idgen.segments WHERE tag = 'b'")
  or die "no prefetch";
$primary->safe_psql('postgres',
	"INSERT INTO issued SELECT idgen.segment_next('b') FROM generate_series(1, 1100)");
$primary->poll_query_until('postgres',
	"SELECT ranges_buffered = 2 AND grants = 3 FROM idgen.segments WHERE tag = 'b'")
  or die "no third grant";
is($primary->safe_psql('postgres',
		"SELECT string_agg((range_end - range_start)::text, ',' ORDER BY event_id) FROM idgen.segment_events WHERE tag = 'b' AND kind = 'grant'"),
	'1000,2000,4000', 'three grants, the step doubling');

# The standby has all of it (flushed: the slot's restart_lsn follows).
$primary->wait_for_catchup($standby, 'flush');
# (to_jsonb: the column does not exist before 1.1, where this test fails.)
my $seen = $standby->safe_psql('postgres',
	"SELECT next_value || '|' || coalesce(to_jsonb(a)->>'fence', '-1') FROM idgen.segment_alloc a WHERE tag = 'b'"
);
my ($seen_next, $seen_fence) = split /\|/, $seen;
is($seen_next, 7001, 'the standby has the row as of the third grant');
cmp_ok($seen_fence, '>', $seen_next, "and a fence above it ($seen_fence)");
$standby->stop;

# The burst: chunks of 5000 numbers, each committed, until a call fails.
my $burst_error = '';
for my $i (1 .. 60)
{
	my $r = try_sql($primary,
		"INSERT INTO issued SELECT idgen.segment_next('b') FROM generate_series(1, 5000)");
	if ($r->{ret} != 0)
	{
		$burst_error = $r->{stderr};
		last;
	}
}
my ($old_count, $old_max) = split /\|/,
  $primary->safe_psql('postgres', 'SELECT count(*), max(n) FROM issued');
note("the old primary issued $old_count numbers, up to $old_max");
like($burst_error, qr/IG011/, 'the burst stops with IG011 once the confirmed fence is used up');
like($burst_error, qr/held back until the standbys confirm its fence/,
	'and says the range is held back for the standbys');
cmp_ok($old_max, '<', $seen_fence,
	"every number the old primary issued ($old_max) is below the fence the standby has ($seen_fence)");
my $granted = $primary->safe_psql('postgres',
	"SELECT string_agg((range_end - range_start)::text, ',' ORDER BY event_id) FROM idgen.segment_events WHERE tag = 'b' AND kind = 'grant'");
note("grants on the old primary: $granted");
my $old = $primary->safe_psql('postgres',
	"SELECT string_agg(n::text, ',') FROM issued");
my %old = map { $_ => 1 } split /,/, $old;
is(scalar(keys %old), $old_count, 'the old primary issued no number twice');
$primary->stop('immediate');

$standby->start;
$standby->promote;
$standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()')
  or die "standby did not leave recovery";
wait_for_worker($standby);
my $new = take($standby, 'b', 20000);
my @again = grep { $old{$_} } @$new;
is(scalar(@again), 0,
	'the promoted standby hands out none of the old primary\'s numbers ('
	  . scalar(@again) . ' repeated)');
cmp_ok($new->[0], '>=', $seen_fence,
	"its first number ($new->[0]) is at or above the fence it had ($seen_fence)");
my ($burn_start, $burn_end) = split /\|/, $standby->safe_psql('postgres',
	"SELECT range_start || '|' || range_end FROM idgen.segment_events WHERE tag = 'b' AND kind = 'burn'");
is($burn_start, $seen_next, 'the burn starts at the next number the standby knew');
cmp_ok($burn_end, '>=', $seen_fence, 'and reaches the fence');

# No standby and no slot: nothing to fence.  20 chunks of 5000, through
# several doubling grants, all succeed.
my $ok = 1;
for my $i (1 .. 20)
{
	my $r = try_sql($standby,
		"SELECT count(idgen.segment_next('b')) FROM generate_series(1, 5000)");
	$ok = 0 if $r->{ret} != 0;
}
ok($ok, 'without standbys a burst of 100000 numbers is not held back');

$standby->stop;

########################################################################
# A standby without a slot, connected but not confirming: its walreceiver
# is paused (SIGSTOP), so its walsender stays and reports the old flush
# position.  The burst stops at the fence that standby confirmed; after
# the primary crashes, the standby resumes and is promoted, and hands out
# none of the old primary's numbers.
########################################################################

my $p2 = PostgreSQL::Test::Cluster->new('burn_primary2');
$p2->init(allows_streaming => 1);
$p2->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'idgen'
idgen.worker_id = 1
idgen.database = 'postgres'
idgen.segment_wait_timeout = 1500
idgen.segment_burn_window = 0
idgen.segment_min_range = 0
});
$p2->start;
$p2->safe_psql('postgres', 'CREATE EXTENSION idgen; CREATE TABLE issued (n bigint NOT NULL)');
$p2->backup('bk2');
my $s2 = PostgreSQL::Test::Cluster->new('burn_standby2');
$s2->init_from_backup($p2, 'bk2', has_streaming => 1);
$s2->start;
$p2->wait_for_catchup($s2);
wait_for_worker($p2);
$p2->safe_psql('postgres', "SELECT idgen.segment_create('c', 1, 1000)");
$p2->safe_psql('postgres',
	"INSERT INTO issued SELECT idgen.segment_next('c') FROM generate_series(1, 150)");
$p2->poll_query_until('postgres',
	"SELECT ranges_buffered = 2 FROM idgen.segments WHERE tag = 'c'")
  or die "no prefetch";
$p2->wait_for_catchup($s2, 'flush');
my $s2_fence = $s2->safe_psql('postgres',
	"SELECT coalesce(to_jsonb(a)->>'fence', '-1') FROM idgen.segment_alloc a WHERE tag = 'c'");
my $walreceiver = $s2->safe_psql('postgres', 'SELECT pid FROM pg_stat_wal_receiver');
ok($walreceiver =~ /^\d+$/, "the standby's walreceiver runs (pid $walreceiver)");
kill 'STOP', $walreceiver;

$burst_error = '';
for my $i (1 .. 60)
{
	my $r = try_sql($p2,
		"INSERT INTO issued SELECT idgen.segment_next('c') FROM generate_series(1, 5000)");
	if ($r->{ret} != 0)
	{
		$burst_error = $r->{stderr};
		last;
	}
}
is($p2->safe_psql('postgres',
		'SELECT count(*) FROM pg_stat_replication'),
	'1', 'paused standby: its walsender is still connected');
like($burst_error, qr/held back until the standbys confirm its fence/,
	'paused standby: the burst stops at the fence the standby confirmed');
my %old2 = map { $_ => 1 } split /,/,
  $p2->safe_psql('postgres', "SELECT string_agg(n::text, ',') FROM issued");
$p2->stop('immediate');
kill 'CONT', $walreceiver;
$s2->promote;
$s2->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()')
  or die "standby 2 did not leave recovery";
wait_for_worker($s2);
my $new2 = take($s2, 'c', 5000);
@again = grep { $old2{$_} } @$new2;
is(scalar(@again), 0,
	'paused standby: promoted, it hands out none of the old primary\'s '
	  . scalar(keys %old2) . ' numbers (' . scalar(@again) . ' repeated)');
cmp_ok($new2->[0], '>=', $s2_fence,
	"paused standby: its first number ($new2->[0]) is at or above the fence it had confirmed ($s2_fence)");
$s2->stop;

note(sprintf('024_segment_burn_growth ran for %.1f s', Time::HiRes::time() - $t_start));
done_testing();
