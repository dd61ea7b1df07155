# idgen.segment_next() across failover.
#
# Asynchronous standby: the standby is stopped, the primary then grants
# several more ranges the standby never sees and hands out numbers from
# them, and crashes.  The standby is promoted: its copy of the tag's row is
# behind what the old primary issued, so without the failover burn it would
# grant the same ranges again.  Every number it hands out must be above
# everything the old primary issued; the outbox records the burn on the new
# timeline, and idgen_segment_burns_total counts it.  The same holds for a
# tag the standby saw created but never granted: the old primary granted
# its first ranges after the standby stopped, the first one
# idgen.segment_max_step long (a new tag's first range), more than the
# minimum burn of idgen.segment_burn_steps steps.
#
# Synchronous standby (synchronous_standby_names = '*'): every grant waits
# for the standby.  With the standby stopped, the worker's grant cannot
# complete, so once the buffered ranges are used up callers time out
# (IG011) instead of getting numbers the standby may not have; once the
# standby is back, numbers flow again.  After a crash of the primary the
# promoted standby's row already covers every number the primary issued
# (before any grant of its own), and numbers continue above them.
#
# A standby runs no idgen worker: segment_next() there hands out nothing.

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

my $conf = q{
shared_preload_libraries = 'idgen'
idgen.worker_id = 1
idgen.database = 'postgres'
idgen.segment_max_step = 100
};

sub max_of { my $m; for (@_) { $m = $_ if !defined $m || $_ > $m } return $m; }

########################################################################
# Asynchronous standby.
########################################################################

my $primary = PostgreSQL::Test::Cluster->new('segment_primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', $conf);
$primary->start;
$primary->safe_psql(
	'postgres', q{
CREATE EXTENSION idgen;
SELECT idgen.segment_create('f', 1, 100);
SELECT idgen.segment_create('g', 1, 100);
});
wait_for_worker($primary);

my @issued = @{ take($primary, 'f', 150) };
is_deeply([ @issued[ 0 .. 2 ] ], [ 1, 2, 3 ], 'async: the primary hands out 1, 2, 3...');

$primary->backup('bk');
my $standby = PostgreSQL::Test::Cluster->new('segment_standby');
$standby->init_from_backup($primary, 'bk', has_streaming => 1);
$standby->append_conf('postgresql.conf', "idgen.segment_wait_timeout = 300\n");
$standby->start;
$primary->wait_for_catchup($standby);

# What the standby knows of the tag.
my $standby_next = $standby->safe_psql('postgres',
	"SELECT next_value FROM idgen.segment_alloc WHERE tag = 'f'");
# Tag g: the standby has seen it created, never granted.
is($standby->safe_psql('postgres',
		"SELECT next_value || '|' || last_timeline || '|' || grants FROM idgen.segment_alloc WHERE tag = 'g'"),
	'1|1|0', 'async: the standby knows tag g as created on timeline 1, never granted');
cmp_ok($standby_next, '>', max_of(@issued), "async: the standby has the grants so far (next_value $standby_next)");

# No numbers on a standby: it runs no worker, so a call waits for
# idgen.segment_wait_timeout and fails.
is($standby->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'idgen worker'"),
	'0', 'standby: no idgen worker');
my $r = try_sql($standby, "SELECT idgen.segment_next('f')");
isnt($r->{ret}, 0, "standby: segment_next() fails ($r->{sqlstate})");
is($r->{stdout}, '', 'standby: and hands out no number');

$standby->stop;

# The primary goes on alone: with steps of 100 (idgen.segment_max_step)
# 350 more numbers take three more grants (the last a prefetch), all past
# what the standby saw.
my $more = take($primary, 'f', 350);
push @issued, @$more;
my $old_max = max_of(@issued);
my $primary_next = $primary->safe_psql('postgres',
	"SELECT next_value FROM idgen.segment_alloc WHERE tag = 'f'");
cmp_ok($old_max, '>', $standby_next,
	"async: the old primary issued numbers the standby never saw granted ($old_max >= $standby_next)");
my $unseen = $primary->safe_psql('postgres',
	"SELECT count(*) FROM idgen.segment_events WHERE tag = 'f' AND kind = 'grant' AND range_start >= $standby_next");
cmp_ok($unseen, '>=', 2, "async: $unseen grants the standby never saw");
my %seen = map { $_ => 1 } @issued;
is(scalar(keys %seen), 500, 'async: 500 distinct numbers from the old primary');
# Tag g gets its first grants now, which the standby never sees.  With
# idgen.segment_max_step above its step (as on the standby, for its
# promotion), the first range of g is idgen.segment_max_step long: the old
# primary hands out more of it than the minimum burn of
# idgen.segment_burn_steps (10) steps of 100, so the promoted standby must
# burn past the whole first range of a tag it knows as never granted.
$primary->append_conf('postgresql.conf', "idgen.segment_max_step = 2000\n");
$primary->restart;
$standby->append_conf('postgresql.conf', "idgen.segment_max_step = 2000\n");
wait_for_worker($primary);
my $g_old = take($primary, 'g', 1500);
my $g_old_max = max_of(@$g_old);
is($g_old->[0], 1, 'async: tag g starts at 1 on the old primary');
is( $primary->safe_psql('postgres',
		"SELECT range_start || ':' || range_end FROM idgen.segment_events WHERE tag = 'g' AND kind = 'grant' ORDER BY event_id LIMIT 1"),
	'1:2001', 'async: its first range is idgen.segment_max_step (2000), beyond 10 steps of 100');

$primary->stop('immediate');

$standby->start;
$standby->promote;
$standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()')
  or die "standby did not leave recovery";
wait_for_worker($standby);

is($standby->safe_psql('postgres',
		"SELECT next_value FROM idgen.segment_alloc WHERE tag = 'f'"),
	$standby_next, 'async: before its first grant the promoted standby is behind the old primary');

my $new = take($standby, 'f', 300);
my @below = grep { $_ <= $old_max } @$new;
is(scalar(@below), 0,
	"async: every number of the promoted standby is above the old primary's maximum ($new->[0] > $old_max)");
my @sorted = sort { $a <=> $b } @$new;
is_deeply($new, \@sorted, 'async: and they increase');
my @again = grep { $seen{$_} } @$new;
is(scalar(@again), 0, 'async: no number handed out twice');

# The outbox: a burn on timeline 2 from where the standby's row was, then
# grants above it.
my $burn = $standby->safe_psql('postgres',
	"SELECT range_start, range_end, timeline FROM idgen.segment_events WHERE tag = 'f' AND kind = 'burn'");
my ($burn_start, $burn_end, $burn_tli) = split /\|/, $burn;
ok(defined $burn_tli, "async: the outbox has a burn event ($burn)");
is($burn_start, $standby_next, 'async: the burn starts at the next number the standby knew');
cmp_ok($burn_end, '>', $old_max, 'async: the burn reaches past everything the old primary issued');
cmp_ok($burn_end - $burn_start, '>=', 10 * 100, 'async: at least idgen.segment_burn_steps (10) steps burned');
is($burn_tli, '2', 'async: the burn is on the new timeline');
my $last_tli = $standby->safe_psql('postgres',
	"SELECT max(timeline) FROM idgen.segment_events WHERE tag = 'f' AND kind = 'grant' AND event_id < (SELECT event_id FROM idgen.segment_events WHERE tag = 'f' AND kind = 'burn')"
);
cmp_ok($burn_tli, '>', $last_tli, "async: higher than the timeline of the grants before ($last_tli)");
my $first_after = $standby->safe_psql('postgres',
	"SELECT range_start || '|' || timeline FROM idgen.segment_events WHERE tag = 'f' AND kind = 'grant' AND event_id > (SELECT event_id FROM idgen.segment_events WHERE tag = 'f' AND kind = 'burn') ORDER BY event_id LIMIT 1"
);
is($first_after, "$burn_end|2", 'async: the first grant after the burn starts where the burn ended');
is($new->[0], $burn_end, 'async: and the first number is that range start');
is($standby->safe_psql('postgres',
		"SELECT last_timeline FROM idgen.segment_alloc WHERE tag = 'f'"),
	'2', 'async: segment_alloc.last_timeline is 2');
is(stats_counter($standby, 'idgen_segment_burns_total'), '1', 'async: idgen_segment_burns_total is 1 (tag f)');
ok($standby->log_contains(qr/burned \d+ numbers/), 'async: the burn is logged');

# Tag g: the promoted standby's row says "never granted" (last_timeline 0),
# but the old primary granted and issued numbers from it after the standby
# stopped.  Those must not come out again either.
my $g_new = take($standby, 'g', 100);
my @g_below = grep { $_ <= $g_old_max } @$g_new;
is(scalar(@g_below), 0,
	"async: a tag first granted after the standby stopped does not repeat the old primary's numbers ($g_new->[0] > $g_old_max)"
);
is( $standby->safe_psql('postgres',
		"SELECT range_start || ':' || range_end FROM idgen.segment_events WHERE tag = 'g' AND kind = 'burn'"),
	'1:2001', 'async: for a tag never granted the burn covers a first range of idgen.segment_max_step');

# A second batch on the same timeline burns nothing more.
my $burns = stats_counter($standby, 'idgen_segment_burns_total');
take($standby, 'f', 300);
is(stats_counter($standby, 'idgen_segment_burns_total'), $burns, 'async: later grants on timeline 2 burn nothing');
is($standby->safe_psql('postgres',
		"SELECT count(*) FROM idgen.segment_events WHERE tag = 'f' AND kind = 'burn'"),
	'1', 'async: one burn event only');
$standby->stop;

########################################################################
# Synchronous standby.
########################################################################

my $sprimary = PostgreSQL::Test::Cluster->new('segment_sync_primary');
$sprimary->init(allows_streaming => 1);
$sprimary->append_conf('postgresql.conf', $conf . "idgen.segment_wait_timeout = 1000\n");
$sprimary->start;
$sprimary->safe_psql(
	'postgres', q{
CREATE EXTENSION idgen;
SELECT idgen.segment_create('s', 1, 100);
});
$sprimary->backup('sbk');
my $sstandby = PostgreSQL::Test::Cluster->new('segment_sync_standby');
$sstandby->init_from_backup($sprimary, 'sbk', has_streaming => 1);
$sstandby->start;
$sprimary->append_conf('postgresql.conf', "synchronous_standby_names = '*'\n");
$sprimary->reload;
$sprimary->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_replication WHERE sync_state = 'sync'")
  or die "standby did not become synchronous";
wait_for_worker($sprimary);

my @sissued = @{ take($sprimary, 's', 350) };
is(scalar(@sissued), 350, 'sync: 350 numbers with a synchronous standby');

# Let a due prefetch finish, then stop the standby: the numbers still
# buffered can be handed out, the next grant cannot complete.
$sprimary->poll_query_until('postgres',
	"SELECT ranges_buffered = 2 OR current_next - current_start <= (current_end - current_start) * 10 / 100 FROM idgen.segments WHERE tag = 's'"
) or die "prefetch did not finish";
my $buffered = $sprimary->safe_psql('postgres',
	"SELECT (current_end - current_next) + coalesce(next_end - next_start, 0) FROM idgen.segments WHERE tag = 's'");
$sstandby->stop;
push @sissued, @{ take($sprimary, 's', $buffered) };
is(scalar(@sissued), 350 + $buffered, "sync: with the standby down the $buffered buffered numbers are handed out");
$r = try_sql($sprimary, "SELECT idgen.segment_next('s')");
is($r->{sqlstate}, 'IG011',
	'sync: with the standby down, the next number waits for the grant and times out');
is($r->{stdout}, '', 'sync: no number handed out without the standby');
my $worker_wait = $sprimary->safe_psql('postgres',
	"SELECT wait_event FROM pg_stat_activity WHERE backend_type = 'idgen worker'");
is($worker_wait, 'SyncRep', 'sync: the worker waits for the synchronous standby');

# Standby back: the grant completes and numbers flow again.
$sstandby->start;
$sprimary->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_replication WHERE sync_state = 'sync'")
  or die "standby did not come back as synchronous";
my $resumed = take($sprimary, 's', 100);
cmp_ok($resumed->[0], '>', max_of(@sissued), 'sync: with the standby back, numbers resume above the earlier ones');
push @sissued, @$resumed;

# More numbers, then the primary crashes; the standby is not waited for.
push @sissued, @{ take($sprimary, 's', 250) };
my $smax = max_of(@sissued);
my %sseen = map { $_ => 1 } @sissued;
is(scalar(keys %sseen), scalar(@sissued), 'sync: no number handed out twice on the primary');
$sprimary->stop('immediate');

$sstandby->promote;
$sstandby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()')
  or die "sync standby did not leave recovery";

# Before any grant of its own (no caller has asked it for one), the
# promoted standby's row and outbox already cover every number issued.
my $snext = $sstandby->safe_psql('postgres',
	"SELECT next_value FROM idgen.segment_alloc WHERE tag = 's'");
cmp_ok($snext, '>', $smax,
	"sync: the promoted standby's next_value ($snext) is above every number the primary issued ($smax)");
my $ranges = $sstandby->safe_psql('postgres',
	"SELECT string_agg(range_start || ':' || range_end, ',') FROM idgen.segment_events WHERE tag = 's' AND kind = 'grant'"
);
my @granted = map { [ split /:/ ] } split /,/, $ranges;
my @uncovered = grep { my $v = $_; !grep { $v >= $_->[0] && $v < $_->[1] } @granted } @sissued;
is(scalar(@uncovered), 0, "sync: the standby's outbox has the grant of every number issued");

wait_for_worker($sstandby);
my $snew = take($sstandby, 's', 200);
my @sbelow = grep { $_ <= $smax } @$snew;
is(scalar(@sbelow), 0, "sync: after promotion numbers continue above the old maximum ($snew->[0] > $smax)");
is(stats_counter($sstandby, 'idgen_segment_burns_total'), '1', 'sync: the promotion burned once (new timeline)');
$sstandby->stop;

note(sprintf('022_segment_failover ran for %.1f s', Time::HiRes::time() - $t_start));
done_testing();
