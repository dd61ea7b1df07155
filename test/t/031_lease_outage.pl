# Worker-id leases through outages: the coordinator down, and a node that
# crashes.
#
#  - The coordinator crashes, just after a node acquired its lease: the
#    nodes cannot renew and go 'fail-static'; they keep issuing Snowflake
#    IDs until their own deadline (the last renewal plus the TTL minus the
#    safety margin, so before the coordinator's expiry), then refuse with
#    IG005 and show 'expired', while uuidv7() keeps working.  The
#    coordinator returns: the leases are 'held' again, with the same worker
#    ids and holdings (the coordinator runs with synchronous_commit = off
#    and a 10 s WAL writer delay; lease writes are durable all the same),
#    and every node's new IDs are above its earlier ones.
#  - A node crashes (immediate stop: its lease is not released).  A node
#    started right after the crash gets another id: the crashed node's id is
#    not handed out before its expiry plus the margin.  With every other id
#    taken (worker_bits = 2), a further node waits ('acquiring', IG005) and
#    gets the crashed node's id only after that; it starts above the time
#    floor the crashed node recorded.  That node's clock runs 20 s behind
#    (libfaketime), so without the floor its IDs would fall below the
#    crashed node's: it refuses (IG002, clock behind the time floor) until
#    its clock passes the floor and then issues IDs above every ID the
#    crashed node issued.
#  - The coordinator hangs (its session serving a node is stopped): the
#    renewal call times out; the node issues until its deadline and no
#    further, and its status stops showing 'held' once it refuses; when the
#    coordinator answers again the node holds a lease again.
#  - idgen.audit_leases() finds no overlapping holdings.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use IdgenTest;
use IPC::Run ();
use Time::HiRes qw(usleep);

my $TTL = 6;
my $MARGIN = 1;    # max(1, ttl/10)

require_libfaketime();

my $coord = PostgreSQL::Test::Cluster->new('coordinator');
$coord->init;
# Preloaded with a static worker id and no coordinator: it leases nothing
# itself (and records no layout); its idgen schema serves the nodes.
# Asynchronous commit, flushed by the WAL writer only every 10 s: lease
# writes must be durable all the same (the lease worker commits them
# synchronously), so the coordinator's crash below loses none.
$coord->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'idgen'
idgen.worker_id = 7
synchronous_commit = off
wal_writer_delay = 10s
});
$coord->start;
$coord->safe_psql('postgres', 'CREATE EXTENSION idgen; CHECKPOINT');
is(status_of($coord, 'lease_state'), 'static',
	'coordinator with a static id and no coordinator leases nothing');
my $coordinator = 'host=' . $coord->host . ' port=' . $coord->port . ' dbname=postgres';

sub new_node
{
	my ($name) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'idgen'
idgen.lease_ttl = $TTL
idgen.coordinator = '$coordinator'
idgen.worker_bits = 2
idgen.sequence_bits = 20
});
	return $node;
}

# A node that issues until it is refused (or $max_s passes), every 10 ms:
# the time of its last ID and the refusal.
my $issue_until_refused = q{
CREATE FUNCTION issue_until_refused(max_s float8,
    OUT n bigint, OUT last_id bigint, OUT last_ok timestamptz,
    OUT refused_at timestamptz, OUT state text, OUT message text)
LANGUAGE plpgsql AS $$
DECLARE
    t0 timestamptz := clock_timestamp();
BEGIN
    n := 0;
    LOOP
        BEGIN
            last_id := idgen.snowflake_next();
            last_ok := clock_timestamp();
            n := n + 1;
        EXCEPTION WHEN OTHERS THEN
            refused_at := clock_timestamp();
            state := SQLSTATE;
            message := SQLERRM;
            RETURN;
        END;
        EXIT WHEN clock_timestamp() > t0 + make_interval(secs => max_s);
        PERFORM pg_sleep(0.01);
    END LOOP;
END $$;
};

my $n1 = new_node('node_1');
my $n2 = new_node('node_2');
my @nodes = ($n1, $n2);
my %max_id;

$n1->start;
$n1->safe_psql('postgres', 'CREATE EXTENSION idgen');
$n1->safe_psql('postgres', $issue_until_refused);
ok(wait_state($n1, 'held'), 'node_1: lease held');
{
	my ($ids) = issue_decoded($n1, 100);
	$max_id{node_1} = $ids->[-1];
}

# ===========================================================================
# The coordinator crashes (immediate stop)
# ===========================================================================

# node_1 issues every 10 ms, from before the coordinator stops until it is
# refused: it keeps issuing up to its deadline, which lies the margin
# before the coordinator's expiry.
my ($loop_out, $loop_err) = ('', '');
my $loop = IPC::Run::start(
	[
		'psql', '-XAtq', '-d', $n1->connstr('postgres'), '-c',
		"SELECT n, last_id, last_ok, state, message, refused_at IS NOT NULL FROM issue_until_refused(${\($TTL + 12)})"
	],
	'>', \$loop_out, '2>', \$loop_err);

# node_2 boots, and the coordinator crashes as soon as node_2 holds its
# lease: long before its WAL writer (every 10 s) would have written an
# asynchronous commit of the acquisition.
$n2->start;
$n2->safe_psql('postgres', 'CREATE EXTENSION idgen');
$n2->safe_psql('postgres', $issue_until_refused);
my ($held2) = poll_until($n2, 'SELECT lease_state FROM idgen.status', 'held', 15);
$coord->stop('immediate');
ok($held2, 'node_2: lease held (then the coordinator crashed)');
$max_id{node_2} = 0;

my %id_of = map { $_->name => status_of($_, 'worker_id') } @nodes;
isnt($id_of{node_1}, $id_of{node_2}, "distinct worker ids $id_of{node_1} and $id_of{node_2}");
my %gen_of = map { $_->name => status_of($_, 'lease_generation') } @nodes;

# Both nodes go fail-static within a renewal interval, for about two
# thirds of the TTL; poll them in turn and check each at once.
{
	my %seen;
	my $deadline = Time::HiRes::time() + $TTL;
	while (keys %seen < 2 && Time::HiRes::time() < $deadline)
	{
		for my $node (@nodes)
		{
			my $name = $node->name;
			next if $seen{$name};
			next unless status_of($node, 'lease_state') eq 'fail-static';
			$seen{$name} = 1;
			my ($ids, $workers) = issue_decoded($node, 20);
			is_deeply($workers, [ $id_of{$name} ],
				"$name: fail-static, still issuing under worker id $id_of{$name}");
			cmp_ok($ids->[0], '>', $max_id{$name}, "$name: fail-static IDs above the earlier ones");
			$max_id{$name} = $ids->[-1];
			like(status_of($node, 'lease_error'), qr/connect|coordinator|server/i,
				"$name: lease_error says why renewal fails");
		}
		usleep(50_000);
	}
	ok($seen{ $_->name }, $_->name . ': fail-static once renewal fails') for @nodes;
}

$loop->finish;
chomp $loop_out;
is($loop_err, '', 'node_1 issuing loop ran without error');
{
	my $expires = status_of($n1, 'lease_expires_at');
	my ($n, $last_id, $last_ok, $state, $message, $refused) = split /\|/, $loop_out;
	my $before_expiry = $n1->safe_psql('postgres',
		"SELECT extract(epoch FROM '$expires'::timestamptz - '$last_ok'::timestamptz)");
	ok($refused eq 't', "node_1: refused after issuing $n IDs");
	is($state, 'IG005', 'node_1: refused with IG005');
	like($message, qr/lease has expired|no worker id lease/, "node_1: refusal message: $message");
	cmp_ok($before_expiry, '>=', $MARGIN - 0.05,
		"node_1: last ID at least the margin before the coordinator's expiry ($before_expiry s)");
	cmp_ok($before_expiry, '<=', $MARGIN + 1,
		"node_1: kept issuing until close to its deadline ($before_expiry s before the expiry)");
	cmp_ok($last_id, '>=', $max_id{node_1}, 'node_1: fail-static IDs increase');
	$max_id{node_1} = $last_id if $last_id > $max_id{node_1};
}

for my $node (@nodes)
{
	my $name = $node->name;
	ok(wait_state($node, 'expired', $TTL), "$name: lease_state expired after the deadline");
	my $r = try_sql($node, 'SELECT idgen.snowflake_next()');
	is($r->{sqlstate}, 'IG005', "$name: snowflake_next() refused with IG005 once expired");
	like($node->safe_psql('postgres', 'SELECT idgen.uuidv7()'),
		qr/^[0-9a-f]{8}-[0-9a-f]{4}-7/, "$name: uuidv7() keeps working");
	ok($node->log_contains(qr/WARNING:.*worker id lease \d+ expired on this node/),
		"$name: expiry logged");
}

# ===========================================================================
# The coordinator returns
# ===========================================================================

$coord->start;
my $back_at = $coord->safe_psql('postgres', 'SELECT pg_postmaster_start_time()');
for my $node (@nodes)
{
	my $name = $node->name;
	ok(wait_state($node, 'held', 15), "$name: lease held again after the coordinator returned");
	is(status_of($node, 'worker_id'), $id_of{$name}, "$name: kept worker id $id_of{$name}");
	is(status_of($node, 'lease_generation'), $gen_of{$name},
		"$name: same lease generation");
	is( $coord->safe_psql(
			'postgres', qq{
SELECT acquired_at < pg_postmaster_start_time() AND generation = $gen_of{$name}
  FROM idgen.leases WHERE worker_id = $id_of{$name}}),
		't',
		"$name: its lease, acquired before the crash, survived the coordinator's crash");
	ok(!$node->log_contains(qr/lost the lease/), "$name: never lost its lease");
	my ($ids, $workers) = issue_decoded($node, 50);
	is_deeply($workers, [ $id_of{$name} ], "$name: IDs decode to its worker id");
	cmp_ok($ids->[0], '>', $max_id{$name}, "$name: new IDs above every earlier one");
	$max_id{$name} = $ids->[-1];
	is( $coord->safe_psql(
			'postgres',
			"SELECT renewed_at > '$back_at' AND expires_at > now() FROM idgen.leases WHERE worker_id = $id_of{$name}"
		),
		't',
		"$name: lease renewed on the returned coordinator");
}

# ===========================================================================
# A node crashes
# ===========================================================================

# The victim leases with a longer TTL (12 s: expiry 8 to 12 s after the
# crash), which leaves time to start two nodes while its id is quarantined.
my $VICTIM_TTL = 12;
my $victim = new_node('victim');
$victim->append_conf('postgresql.conf', "idgen.lease_ttl = $VICTIM_TTL\n");
$victim->start;
$victim->safe_psql('postgres', 'CREATE EXTENSION idgen');
ok(wait_state($victim, 'held'), 'victim: lease held');
my $crashed_id = status_of($victim, 'worker_id');

my $n4 = new_node('node_4');    # started right after the crash
my $n5 = new_node('node_5');    # clock 20 s behind, waits for the crashed id

my $victim_max;
{
	my ($ids, $workers) = issue_decoded($victim, 100);
	is_deeply($workers, [$crashed_id], "victim: IDs decode to worker id $crashed_id");
	$victim_max = $ids->[-1];
}
$victim->stop('immediate');
# The time floor the crashed node's renewals recorded: nothing it issued
# lies above it.
my $floor_ms;

$n4->start;
$n4->safe_psql('postgres', 'CREATE EXTENSION idgen');
ok(wait_state($n4, 'held', 10), 'node_4 (started right after the crash): lease held');
my $id4 = status_of($n4, 'worker_id');
isnt($id4, $crashed_id, "node_4 did not get the crashed node's worker id $crashed_id (got $id4)");
cmp_ok($crashed_id, '<', $id4,
	'(the crashed id comes first in the order ids are tried)');
is( $coord->safe_psql(
		'postgres', qq{
SELECT (SELECT acquired_at FROM idgen.leases WHERE worker_id = $id4)
     < expires_at + interval '$MARGIN s'
  FROM idgen.leases WHERE worker_id = $crashed_id}),
	't',
	'node_4 acquired while the crashed id was still live or in its quarantine');
is( $coord->safe_psql(
		'postgres',
		qq{SELECT count(*) FROM idgen.leases WHERE expires_at + interval '$MARGIN s' > now()}),
	'4',
	'all four worker ids are now taken or quarantined');
$floor_ms = $coord->safe_psql('postgres',
	"SELECT time_floor_ms FROM idgen.leases WHERE worker_id = $crashed_id");
is( $n4->safe_psql('postgres',
		"SELECT extract(epoch FROM (idgen.snowflake_decode($victim_max)).ts) * 1000 < $floor_ms"),
	't',
	"the crashed node's recorded time floor ($floor_ms) is above its last ID");

# node_5, its clock 20 s behind (more than the time from the crash to the
# takeover): no free id until the crashed one's expiry.  (libfaketime, as
# observed here, does not reach the background workers, which the
# postmaster forks from a signal handler: the lease worker's clock is
# right, the backends' clocks, which stamp the IDs, are behind.)
my $clock5 = $n5->basedir . '/faketime_offset';
set_clock($clock5, '-20');
start_faked($n5, $clock5);
$n5->safe_psql('postgres', 'CREATE EXTENSION idgen');
my $skew = $n5->safe_psql('postgres',
	"SELECT round(extract(epoch FROM clock_timestamp() - '"
	  . $coord->safe_psql('postgres', 'SELECT clock_timestamp()')
	  . "'::timestamptz))");
ok($skew <= -19 && $skew >= -21, "node_5 clock about 20 s behind ($skew s)");

my $expiry = $coord->safe_psql('postgres',
	"SELECT expires_at FROM idgen.leases WHERE worker_id = $crashed_id");
my ($waiting) = poll_until($n5,
	q{SELECT lease_state = 'acquiring' AND lease_error ~ 'no free worker id' FROM idgen.status},
	't', 5);
my $r5 = try_sql($n5, 'SELECT idgen.snowflake_next()');
my $still_quarantined = $coord->safe_psql('postgres',
	"SELECT now() < '$expiry'::timestamptz + interval '$MARGIN s'");
ok($still_quarantined eq 't', 'node_5 checked while the crashed id was still quarantined');
ok($waiting, 'node_5: acquiring, lease_error names the exhaustion');
is($r5->{sqlstate}, 'IG005', 'node_5: no lease yet, snowflake_next() refused with IG005');

ok(wait_state($n5, 'held', $VICTIM_TTL + 10), 'node_5: lease held after the crashed id expired');
is(status_of($n5, 'worker_id'), $crashed_id, "node_5 took the crashed node's worker id $crashed_id");
my $takeover = $coord->safe_psql(
	'postgres', qq{
SELECT n.acquired_at >= o.expires_at + interval '$MARGIN s'
  FROM idgen.lease_history o
  JOIN idgen.lease_history n ON n.worker_id = o.worker_id AND n.generation = o.generation + 1
 WHERE o.worker_id = $crashed_id
 ORDER BY o.generation DESC LIMIT 1});
is($takeover, 't', "crashed id handed over only after its expiry plus the $MARGIN s margin");

# The floor inherited from the crashed node lies ahead of node_5's clock:
# without it, node_5's IDs would fall below the crashed node's.
my $r = try_sql($n5, 'SELECT idgen.snowflake_next()');
is($r->{sqlstate}, 'IG002',
	'node_5: refuses while its clock is behind the time floor the crashed node recorded');
is( $n5->safe_psql('postgres',
		"SELECT idgen.snowflake_min(clock_timestamp()) < $victim_max"),
	't',
	"node_5's clock is behind the crashed node's last ID");
my ($issued) = poll_until($n5, 'SELECT idgen.snowflake_next() > 0', 't', 30);
ok($issued, 'node_5: issues once its clock passes the inherited floor');
{
	my ($ids, $workers) = issue_decoded($n5, 50);
	is_deeply($workers, [$crashed_id], "node_5: IDs decode to worker id $crashed_id");
	cmp_ok($ids->[0], '>', $victim_max,
		"node_5: first IDs above every ID the crashed node issued ($ids->[0] > $victim_max)");
	is( $n5->safe_psql('postgres',
			"SELECT $ids->[0] > idgen.snowflake_min(to_timestamp(($floor_ms + 1) / 1000.0))"),
		't',
		"node_5: first IDs above the crashed node's recorded time floor");
}

# ===========================================================================
# The coordinator hangs (its session serving node_1 is stopped with
# SIGSTOP, as in a network partition): the renewal call times out, node_1
# issues up to its deadline and no further, and its status does not claim
# a lease it no longer issues under.
# ===========================================================================

my $hung_pid;
END { kill 'CONT', $hung_pid if $hung_pid; }
{
	my $id1 = $id_of{node_1};
	my $r0 = $coord->safe_psql('postgres',
		"SELECT renewed_at FROM idgen.leases WHERE worker_id = $id1");
	my ($fresh) = poll_until($coord,
		"SELECT renewed_at > '$r0' FROM idgen.leases WHERE worker_id = $id1", 't', $TTL);
	ok($fresh, 'node_1 renews');
	$hung_pid = $coord->safe_psql(
		'postgres', qq{
SELECT a.pid FROM pg_locks l JOIN pg_stat_activity a USING (pid)
 WHERE l.locktype = 'advisory' AND l.objid = $id1 AND l.granted
   AND a.application_name = 'idgen lease worker'});
	like($hung_pid, qr/^\d+$/, "coordinator session serving node_1: pid $hung_pid");
	kill 'STOP', $hung_pid;
	my $t_hang = Time::HiRes::time();

	my $expires = status_of($n1, 'lease_expires_at');
	my $row = $n1->safe_psql(
		'postgres', qq{
SELECT extract(epoch FROM '$expires'::timestamptz - last_ok), state,
       refused_at IS NOT NULL, last_id
  FROM issue_until_refused(${\($TTL + 5)})});
	my ($before_expiry, $state, $refused, $last_id) = split /\|/, $row;
	# idgen.status follows within a second of the refusal.
	my ($not_held, $state_then) = poll_until($n1,
		q{SELECT lease_state <> 'held' FROM idgen.status}, 't', 1);
	$state_then = status_of($n1, 'lease_state');
	$max_id{node_1} = $last_id if $last_id;
	ok($refused eq 't', 'hung coordinator: node_1 refused after its deadline');
	is($state, 'IG005', 'hung coordinator: refused with IG005');
	cmp_ok($before_expiry, '>=', $MARGIN - 0.05,
		"hung coordinator: last ID at least the margin before the expiry ($before_expiry s)");
	cmp_ok($before_expiry, '<=', $MARGIN + 1,
		'hung coordinator: kept issuing until close to its deadline');
	ok($not_held,
		"hung coordinator: lease_state no longer 'held' within 1 s of refusing (it is '$state_then')");

	# Every coordinator call has a timeout: the worker gives up on the hung
	# session.
	my ($gave_up) = poll_until($n1,
		q{SELECT lease_error ~ 'did not answer|timed out' FROM idgen.status}, 't', 10);
	ok($gave_up, sprintf('hung coordinator: the lease worker gave up on the call (%.1f s after the hang)',
			Time::HiRes::time() - $t_hang));
	note('lease_error: ' . status_of($n1, 'lease_error'));

	kill 'CONT', $hung_pid;
	$hung_pid = undef;
	ok(wait_state($n1, 'held', 15), 'node_1: lease held again once the coordinator answers');
	my $now_id = status_of($n1, 'worker_id');
	my ($ids, $workers) = issue_decoded($n1, 20);
	is_deeply($workers, [$now_id], "node_1: IDs decode to its worker id $now_id");
	cmp_ok($ids->[0], '>', $max_id{node_1}, 'node_1: IDs above every earlier one');
}

is($coord->safe_psql('postgres', 'SELECT count(*) FROM idgen.audit_leases()'),
	'0', 'audit_leases(): no overlapping holdings of any worker id');

$_->stop for ($n1, $n2, $n4, $n5);
$coord->stop;

done_testing();
