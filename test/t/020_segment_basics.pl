# idgen.segment_next() on real servers: concurrency, prefetch, step tuning,
# the tag limit and interleaving between independent primaries.
#
#  - Two backends drawing from one tag at once (pgbench, 2 clients, small
#    ranges so that they cross hundreds of range switches): no number twice,
#    each backend's numbers increasing, every number inside a granted range.
#  - The worker restarting (terminated): a call made meanwhile waits for the
#    new worker and gets its number.
#  - Prefetch: once warm, a caller consuming several full ranges at a steady
#    pace never waits for a grant: idgen_segment_prefetches_total grows by
#    about one per range while idgen_waits_total{generator=segment} stays
#    where the cold start left it.
#  - Step tuning (idgen.segment_duration = 1 s, idgen.segment_max_step =
#    800): fast consumption doubles the step 100, 200, 400, 800 and no
#    further; after more than twice the duration idle the next grant halves
#    it, and never below the tag's own step.
#  - The tag limit: with idgen.segment_max_tags = 3, three tags work and a
#    fourth fails with SQLSTATE 53400; dropping one frees its place.  Calls
#    for unknown tags take no place, even when they are cancelled while
#    they wait (here for a lock on idgen.segment_alloc).
#  - idgen.segment_interleave_index not below the count: the server
#    refuses to start, and says why.
#  - Interleaving: two independent servers with
#    idgen.segment_interleave_count = 2 and index 0 / 1, each with its own
#    tag start 1 step 10, take alternate blocks of 10 and never overlap.
#  - Databases: tags in a database other than idgen.database get a worker
#    of their own on the first call, even before idgen.database exists;
#    while that worker cannot grant (the tags' rows locked by another
#    session) a call gives up after idgen.segment_wait_timeout (IG011) and
#    counts a refusal; a waiting call can be cancelled, and neither leaves a
#    waiter counted in idgen.segment_buffers().  The same tag name in
#    idgen.database is another tag.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use IdgenTest;
use Time::HiRes ();

sub segment_waits
{
	my ($node) = @_;
	return stats_counter($node, 'idgen_waits_total',
		'{"generator": "segment", "reason": "buffers_empty"}');
}

# Grant sizes of a tag from the outbox, in order.
sub grant_sizes
{
	my ($node, $db, $tag, $after_event) = @_;
	$after_event //= 0;
	my $out = $node->safe_psql($db,
		"SELECT string_agg((range_end - range_start)::text, ',' ORDER BY event_id) "
		  . "FROM idgen.segment_events WHERE tag = '$tag' AND kind = 'grant' AND event_id > $after_event"
	);
	return [ split /,/, $out ];
}

my $t_start = Time::HiRes::time();

my $node = PostgreSQL::Test::Cluster->new('segment_basics');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'idgen'
idgen.worker_id = 1
idgen.database = 'postgres'
idgen.segment_max_step = 20
# grant sizes below follow doubling alone (026 covers sizing by rate)
idgen.segment_min_range = 0
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION idgen');
wait_for_worker($node, 'postgres');

########################################################################
# Two backends at once.
########################################################################

$node->safe_psql(
	'postgres', q{
SELECT idgen.segment_create('c', 1, 10);
CREATE TABLE conc (ord bigserial PRIMARY KEY, client int NOT NULL, n bigint NOT NULL);
});

# Each pgbench transaction takes 100 numbers; 2 clients x 100 transactions.
# The ranges stay at most 20 long (idgen.segment_max_step), so the clients
# cross some 1000 range switches, often both at once.
$node->pgbench(
	'--no-vacuum --client=2 --jobs=2 --transactions=100',
	0,
	[qr{processed: 200/200}],
	[qr{^$}],
	'two pgbench clients draw from one tag',
	{
		'020_segment_conc' => q{
INSERT INTO conc (client, n)
SELECT :client_id, idgen.segment_next('c') FROM generate_series(1, 100);
}
	});

my $conc = $node->safe_psql(
	'postgres', q{
SELECT count(*), count(DISTINCT n), count(DISTINCT client) FROM conc;
});
is($conc, '20000|20000|2', 'two backends: 20000 numbers, all distinct, from both clients');

# In each backend, numbers increase in call order (ord is a serial, so it
# follows each backend's call order).
my $per_client = $node->safe_psql(
	'postgres', q{
SELECT count(*) FILTER (WHERE n <= prev)
FROM (SELECT n, lag(n) OVER (PARTITION BY client ORDER BY ord) AS prev FROM conc) s
WHERE prev IS NOT NULL;
});
is($per_client, '0', "two backends: each backend's numbers strictly increase");

# Every number lies in a range the outbox records as granted, the ranges
# do not overlap, and the backends really did interleave (both clients
# drew from the same range at least once).
my $in_ranges = $node->safe_psql(
	'postgres', q{
SELECT count(*) FROM conc
WHERE NOT EXISTS (SELECT 1 FROM idgen.segment_events e
                  WHERE e.tag = 'c' AND e.kind = 'grant'
                    AND conc.n >= e.range_start AND conc.n < e.range_end);
});
is($in_ranges, '0', 'two backends: every number lies in a granted range');
my $overlap = $node->safe_psql(
	'postgres', q{
SELECT count(*) FROM (
  SELECT range_start, lag(range_end) OVER (ORDER BY range_start) AS prev_end
  FROM idgen.segment_events WHERE tag = 'c' AND kind = 'grant') s
WHERE range_start < prev_end;
});
is($overlap, '0', 'two backends: granted ranges do not overlap');
my $shared = $node->safe_psql(
	'postgres', q{
SELECT count(*) FROM (
  SELECT e.event_id FROM conc
  JOIN idgen.segment_events e ON e.tag = 'c' AND e.kind = 'grant'
       AND conc.n >= e.range_start AND conc.n < e.range_end
  GROUP BY e.event_id HAVING count(DISTINCT conc.client) = 2) s;
});
cmp_ok($shared, '>', 0, 'two backends: both drew numbers from the same range');
my $grants_c = $node->safe_psql('postgres',
	"SELECT grants FROM idgen.segment_alloc WHERE tag = 'c'");
cmp_ok($grants_c, '>=', 20000 / 20, "two backends: at least 1000 grants ($grants_c)");

########################################################################
# The worker restarts: callers waiting meanwhile get their numbers.
########################################################################

my $wpid = $node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'idgen worker'");
$node->safe_psql('postgres', "SELECT idgen.segment_create('w', 1, 10)");
$node->safe_psql('postgres', "SELECT pg_terminate_backend($wpid)");
# The worker comes back within its restart interval (2 s), well inside
# idgen.segment_wait_timeout (10 s).
is($node->safe_psql('postgres', "SELECT idgen.segment_next('w')"), '1',
	'worker restart: a call made while the worker is down gets its number');
my $wpid2 = $node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'idgen worker'");
isnt($wpid2, $wpid, 'worker restart: a new worker serves the grants');
is($node->safe_psql('postgres',
		"SELECT min(n) > (SELECT max(n) FROM conc) FROM (SELECT idgen.segment_next('c') AS n FROM generate_series(1, 3)) s"
	),
	't', 'worker restart: tag c continues above its earlier numbers');

########################################################################
# Prefetch keeps callers from waiting.
########################################################################

$node->append_conf('postgresql.conf', "idgen.segment_max_step = 100\n");
$node->reload;
$node->poll_query_until('postgres',
	"SELECT current_setting('idgen.segment_max_step') = '100'")
  or die "reload did not take";

$node->safe_psql('postgres', "SELECT idgen.segment_create('p', 1, 100)");
my $waits0 = segment_waits($node);
# Cold start: nothing is buffered, so the first call waits for a grant.
is($node->safe_psql('postgres', "SELECT idgen.segment_next('p')"),
	'1', 'prefetch: first number of a new tag');
my $waits1 = segment_waits($node);
cmp_ok($waits1 - $waits0, '>=', 1, 'prefetch: the cold start waited');

# Warm up: use 10% of the range, which has the worker prefetch the next.
$node->safe_psql('postgres',
	"SELECT idgen.segment_next('p') FROM generate_series(1, 20)");
$node->poll_query_until('postgres',
	"SELECT ranges_buffered = 2 FROM idgen.segments WHERE tag = 'p'")
  or die "no prefetch after warm-up";

my $prefetch0 = stats_counter($node, 'idgen_segment_prefetches_total');
my $grants0 = stats_counter($node, 'idgen_segment_grants_total');
$waits1 = segment_waits($node);

# Ten full ranges of 100 at a steady pace: about 2 ms per number, so the
# worker has some 180 ms per range to grant the next after the 10% mark.
my $steady = $node->safe_psql(
	'postgres', q{
SELECT count(DISTINCT n), min(n), max(n), bool_and(n > prev)
FROM (SELECT n, lag(n) OVER (ORDER BY i) AS prev
      FROM (SELECT i, idgen.segment_next('p') AS n, pg_sleep(0.002)
            FROM generate_series(1, 1000) i) s) s;
});
is($steady, '1000|22|1021|t', 'prefetch: 1000 numbers at a steady pace, dense and increasing');

my $prefetch1 = stats_counter($node, 'idgen_segment_prefetches_total');
my $grants1 = stats_counter($node, 'idgen_segment_grants_total');
my $waits2 = segment_waits($node);
cmp_ok($prefetch1 - $prefetch0, '>=', 9,
	'prefetch: idgen_segment_prefetches_total grew by a range each ('
	  . ($prefetch1 - $prefetch0) . ')');
# One wait is tolerated for a worker starved by a busy test machine; if
# prefetch did not work there would be one per range (10).
cmp_ok($waits2 - $waits1, '<=', 1,
	'prefetch: callers did not wait once warm (waits grew by '
	  . ($waits2 - $waits1) . ')');
# A grant is a prefetch unless a caller was waiting for it.
cmp_ok(($grants1 - $grants0) - ($prefetch1 - $prefetch0), '<=', $waits2 - $waits1,
	'prefetch: every grant of the steady phase nobody waited for counts as a prefetch');
is(stats_counter($node, 'idgen_refusals_total',
		'{"generator": "segment", "reason": "wait_timeout"}'),
	'0', 'no call timed out so far');

# The issued counter counts every number handed out.
my $issued = stats_counter($node, 'idgen_ids_issued_total', '{"generator": "segment"}');
is($issued, 20000 + 1 + 3 + 1 + 20 + 1000, 'idgen_ids_issued_total{generator=segment} counts every number');

########################################################################
# Step tuning.
########################################################################

$node->append_conf('postgresql.conf',
	"idgen.segment_duration = 1\nidgen.segment_max_step = 800\n");
$node->reload;
$node->poll_query_until('postgres',
	"SELECT current_setting('idgen.segment_max_step') = '800' AND current_setting('idgen.segment_duration') = '1s'"
) or die "reload did not take";

$node->safe_psql(
	'postgres', q{
SELECT idgen.segment_create('s', 1, 100);
SELECT idgen.segment_create('f', 1, 100);
});

# Fast consumption: every range lasts far less than 1 s.
$node->safe_psql('postgres',
	"SELECT idgen.segment_next('s') FROM generate_series(1, 3000)");
is($node->safe_psql('postgres', "SELECT idgen.segment_next('f')"), '1',
	'tuning: tag f issued its first number');
$node->poll_query_until('postgres',
	"SELECT ranges_buffered = 2 FROM idgen.segments WHERE tag = 's'")
  or die "no prefetch for tag s";
my $sizes = grant_sizes($node, 'postgres', 's');
is_deeply([ @$sizes[ 0 .. 3 ] ], [ 100, 200, 400, 800 ],
	'tuning: fast consumption doubles the step: 100, 200, 400, 800');
ok(@$sizes >= 5 && !grep({ $_ != 800 } @$sizes[ 4 .. $#$sizes ]),
	'tuning: and no further than idgen.segment_max_step (' . join(',', @$sizes) . ')');
is($node->safe_psql('postgres',
		"SELECT current_step FROM idgen.segment_alloc WHERE tag = 's'"),
	'800', 'tuning: segment_alloc.current_step is 800');
is($node->safe_psql('postgres', "SELECT step FROM idgen.segments WHERE tag = 's'"),
	'800', 'tuning: idgen.segments shows the step in use');

# Idle for more than twice the duration (2 s) since the last grant of
# either tag.  Nothing grants meanwhile: both tags have their next range
# buffered (s) or have used less than 10% of the current one (f).
my $last_event = $node->safe_psql('postgres',
	"SELECT max(event_id) FROM idgen.segment_events");
$node->poll_query_until('postgres',
	"SELECT bool_and(clock_timestamp() - last_grant_at > interval '2.2 s') FROM idgen.segment_alloc WHERE tag IN ('s', 'f')"
) or die "idle wait failed";
is($node->safe_psql('postgres',
		"SELECT count(*) FROM idgen.segment_events WHERE event_id > $last_event"),
	'0', 'tuning: no grant while idle');

# Use up the current range of s and 10% of its buffered one: one grant,
# half the step.  For f, a grant after the idle time stays at the tag's
# step (100), not 50.
$node->safe_psql('postgres',
	"SELECT idgen.segment_next('s') FROM generate_series(1, 1000)");
$node->safe_psql('postgres',
	"SELECT idgen.segment_next('f') FROM generate_series(1, 100)");
$node->poll_query_until('postgres',
	"SELECT count(*) = 2 FROM (SELECT DISTINCT tag FROM idgen.segment_events WHERE event_id > $last_event) s"
) or die "no grants after idle";
my $after = grant_sizes($node, 'postgres', 's', $last_event);
is($after->[0], 400, 'tuning: after idling over twice the duration the step halves (800 -> 400)');
$after = grant_sizes($node, 'postgres', 'f', $last_event);
is($after->[0], 100, "tuning: halving stops at the tag's step (100)");

########################################################################
# Interleaving between two independent primaries.
########################################################################

# Node a also checks databases: idgen.database is segdb, created only after
# tags of database postgres have been used.
my @inodes;
for my $k (0, 1)
{
	my $n = PostgreSQL::Test::Cluster->new("segment_interleave_$k");
	$n->init;
	$n->append_conf(
		'postgresql.conf', qq{
shared_preload_libraries = 'idgen'
idgen.worker_id = 1
idgen.database = 'segdb'
idgen.segment_interleave_count = 2
idgen.segment_interleave_index = $k
idgen.segment_wait_timeout = 500
});
	$n->start;
	push @inodes, $n;
}

# No database segdb yet; the first call in postgres starts postgres's own
# worker, whose grants wait for the tags' rows, locked here: a call waits
# idgen.segment_wait_timeout, then gives up with IG011.
$inodes[0]->safe_psql('postgres', q{
CREATE EXTENSION idgen;
SELECT idgen.segment_create('i');
SELECT idgen.segment_create('i2');
});
my $rowlock = $inodes[0]->background_psql('postgres');
$rowlock->query_safe(
	"BEGIN; SELECT tag FROM idgen.segment_alloc WHERE tag IN ('i', 'i2') FOR UPDATE");
my $t0 = Time::HiRes::time();
my $r = try_sql($inodes[0], "SELECT idgen.segment_next('i')");
my $elapsed = Time::HiRes::time() - $t0;
is($r->{sqlstate}, 'IG011', 'no grant: the call times out with IG011');
like($r->{stderr}, qr/timed out waiting for a range for segment tag "i"/,
	'no grant: the message names the tag');
cmp_ok($elapsed, '>=', 0.45, sprintf('no grant: it waited the timeout (%.2f s)', $elapsed));
is(stats_counter($inodes[0], 'idgen_refusals_total',
		'{"generator": "segment", "reason": "wait_timeout"}'),
	'1', 'no grant: the timeout is counted');
# A waiting call can be cancelled, and leaves no waiter behind.
$r = try_sql($inodes[0],
	"SET statement_timeout = '100ms';\nSELECT idgen.segment_next('i2');");
is($r->{sqlstate}, '57014', 'no grant: a waiting call can be cancelled (statement_timeout)');
is($inodes[0]->safe_psql('postgres',
		"SELECT string_agg(tag || ':' || waiters, ',' ORDER BY tag) FROM idgen.segment_buffers()"),
	'i:0,i2:0', 'no grant: neither the timed-out nor the cancelled call is still counted as waiting');
is($inodes[0]->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'idgen worker' AND datname = 'postgres'"),
	'1', 'database postgres got a worker of its own on its first call');
$rowlock->query_safe('ROLLBACK');
$rowlock->quit;

for my $k (0, 1)
{
	my $n = $inodes[$k];
	$n->safe_psql('postgres', 'CREATE DATABASE segdb');
	$n->safe_psql('segdb', 'CREATE EXTENSION idgen');
	wait_for_worker($n, 'segdb');
	$n->safe_psql('segdb', "SELECT idgen.segment_create('i', 1, 10)");
}

# With the rows free, postgres's tag i hands out its first block (start 1,
# step 1000, block 0 of this node); segdb's tag i is another tag.
is($inodes[0]->safe_psql('postgres', "SELECT idgen.segment_next('i')"), '1',
	'database postgres: its tag i hands out its own numbers');

my %seen;
my @per_node;
for my $k (0, 1)
{
	my $out = $inodes[$k]->safe_psql('segdb',
		"SELECT string_agg(n::text, ',' ORDER BY i) FROM (SELECT i, idgen.segment_next('i') AS n FROM generate_series(1, 35) i) s"
	);
	my @nums = split /,/, $out;
	push @per_node, \@nums;
	$seen{$_}++ for @nums;
}
is(scalar(keys %seen), 70, 'interleave: the union of both nodes has no overlap');
is_deeply([ @{ $per_node[0] }[ 0 .. 11 ] ], [ 1 .. 10, 21, 22 ],
	'interleave: node a starts 1..10, then 21');
is_deeply([ @{ $per_node[1] }[ 0 .. 11 ] ], [ 11 .. 20, 31, 32 ],
	'interleave: node b starts 11..20, then 31');
for my $k (0, 1)
{
	my @wrong = grep { int(($_ - 1) / 10) % 2 != $k } @{ $per_node[$k] };
	is(scalar(@wrong), 0, "interleave: every number of node $k is in a block with index $k mod 2");
	my $events = $inodes[$k]->safe_psql('segdb',
		"SELECT string_agg(format('[%s,%s)', range_start, range_end), ' ' ORDER BY event_id) FROM idgen.segment_events WHERE tag = 'i' AND kind = 'grant'"
	);
	my @ranges = split / /, $events;
	my $expected = join ' ',
	  map { my $s = 1 + 10 * (2 * $_ + $k); "[$s," . ($s + 10) . ')' } 0 .. $#ranges;
	is($events, $expected, "interleave: node $k granted blocks $k, "
		  . ($k + 2) . ', ' . ($k + 4) . '... of 10 (no tuning)');
	cmp_ok(scalar(@ranges), '>=', 4, "interleave: node $k made at least 4 grants");
}
$_->stop for @inodes;

########################################################################
# The tag limit.
########################################################################

$node->append_conf('postgresql.conf', "idgen.segment_max_tags = 3\n");
$node->restart;
wait_for_worker($node, 'postgres');
is($node->safe_psql('postgres', 'SHOW idgen.segment_max_tags'), '3', 'limit: max_tags is 3');
$node->safe_psql('postgres',
	"SELECT idgen.segment_create(t) FROM unnest(ARRAY['t1', 't2', 't3', 't4']) t");
for my $t (qw(t1 t2 t3))
{
	is($node->safe_psql('postgres', "SELECT idgen.segment_next('$t')"), '1',
		"limit: tag $t in use");
}
is($node->safe_psql('postgres', "SELECT count(*) FROM idgen.segment_buffers()"),
	'3', 'limit: three tags buffered');
$r = try_sql($node, "SELECT idgen.segment_next('t4')");
is($r->{sqlstate}, '53400', 'limit: the fourth tag fails with 53400 (configuration_limit_exceeded)');
like($r->{stderr}, qr/too many segment tags in use/, 'limit: message');
like($r->{stderr}, qr/at most 3 tags \(idgen.segment_max_tags\)/, 'limit: detail names the setting');
# Tags already in use keep working.
is($node->safe_psql('postgres', "SELECT idgen.segment_next('t1')"), '2',
	'limit: tags in use still work');
# Dropping a tag frees its place.
$node->safe_psql('postgres', "SELECT idgen.segment_drop('t2')");
is($node->safe_psql('postgres', "SELECT idgen.segment_next('t4')"), '1',
	'limit: after a drop the fourth tag fits');
$r = try_sql($node, "SELECT idgen.segment_next('t2')");
is($r->{sqlstate}, '42704', 'limit: the dropped tag is unknown');

# Calls for unknown tags take no place: not when they fail at once, and not
# when they are cancelled while they wait (here for the lock that the check
# whether the tag exists needs).
$node->safe_psql('postgres', "SELECT idgen.segment_drop('t3'), idgen.segment_drop('t4')");
$r = try_sql($node, "SELECT idgen.segment_next('junk0')");
is($r->{sqlstate}, '42704', 'unknown tag: 42704 at once');
my $locker = $node->background_psql('postgres');
$locker->query_safe('BEGIN; LOCK TABLE idgen.segment_alloc IN ACCESS EXCLUSIVE MODE');
for my $t (qw(junk1 junk2))
{
	$r = try_sql($node,
		"SET statement_timeout = '300ms';\nSELECT idgen.segment_next('$t');");
	is($r->{sqlstate}, '57014', "unknown tag: a waiting call for $t is cancelled");
}
$locker->query_safe('ROLLBACK');
$locker->quit;
is($node->safe_psql('postgres', "SELECT string_agg(tag, ',') FROM idgen.segment_buffers()"),
	't1', 'unknown tags: no slot kept for them');
$node->safe_psql('postgres', "SELECT idgen.segment_create('t5'), idgen.segment_create('t6')");
is($node->safe_psql('postgres',
		"SELECT idgen.segment_next('t5') || ',' || idgen.segment_next('t6')"),
	'1,1', 'unknown tags: the two free places go to real tags');

$node->stop;

# idgen.segment_interleave_index must be below the count: the server
# refuses to start, and the log says why and what to do.
$node->append_conf('postgresql.conf',
	"idgen.segment_interleave_count = 2\nidgen.segment_interleave_index = 2\n");
my $log_offset = -s $node->logfile;
ok(!$node->start(fail_ok => 1), 'interleave index 2 of 2: the server does not start');
like(slurp_file($node->logfile, $log_offset),
	qr/FATAL:  idgen.segment_interleave_index 2 is not below idgen.segment_interleave_count 2.*\n.*DETAIL:  .*\n.*HINT:  Give each of the N primaries a different index from 0 to N - 1\./,
	'interleave index 2 of 2: FATAL with a hint');

my $t_total = Time::HiRes::time() - $t_start;
note(sprintf('020_segment_basics ran for %.1f s', $t_total));

done_testing();
