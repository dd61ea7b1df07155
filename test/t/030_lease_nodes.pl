# Worker-id leases: a coordinator and several nodes, simultaneous first
# boots, and running out of worker ids.
#
#  - A coordinator with idgen's default settings leases a worker id from
#    itself (idgen.coordinator empty: zero configuration).  Three nodes with
#    idgen.coordinator pointing at it each hold a distinct id; every node's
#    IDs decode to its id; the coordinator's idgen.leases shows one live row
#    per node with the node's holder identity (system identifier/host:port),
#    renewed every third of the TTL; a clean shutdown releases the lease.
#  - Exhaustion, on a fresh coordinator (not preloaded: any server with
#    CREATE EXTENSION idgen will do) with idgen.worker_bits = 2 on every
#    node: four nodes boot at the same moment, while their acquisitions are
#    held up together on the coordinator, and still get four distinct ids;
#    the fourth acquisition warns that the id space is (over 80%) used and
#    idgen.bit_budget() shows the usage each node's acquisition counted.
#    A fifth node stays 'acquiring',
#    names the exhaustion in lease_error and refuses Snowflake IDs (IG005),
#    retrying with backoff; once a node shuts down, the fifth gets its id,
#    but only after the released id's quarantine, and issues above the time
#    floor the previous holder recorded.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use IdgenTest;
use Time::HiRes qw(usleep);

my $TTL = 6;
my $MARGIN = 1;    # max(1, ttl/10)

sub connstr_of
{
	my ($coord) = @_;
	return 'host=' . $coord->host . ' port=' . $coord->port . ' dbname=postgres';
}

# A node leasing its worker id from $coord.
sub new_node
{
	my ($name, $coord, $extra) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf(
		'postgresql.conf', "shared_preload_libraries = 'idgen'\n"
		  . "idgen.lease_ttl = $TTL\n"
		  . "idgen.coordinator = '"
		  . connstr_of($coord) . "'\n"
		  . ($extra // ''));
	return $node;
}

# Start a node with pg_ctl without waiting for it (simultaneous boots); see
# finish_start.
sub start_nowait
{
	my ($node) = @_;
	PostgreSQL::Test::Utils::system_or_bail('pg_ctl', '-W', '-D', $node->data_dir,
		'-l', $node->logfile, '-o', '--cluster-name=' . $node->name, 'start');
	return;
}

sub finish_start
{
	my ($node) = @_;
	$node->poll_query_until('postgres', 'SELECT 1', '1')
	  or BAIL_OUT('node ' . $node->name . ' did not start');
	$node->_update_pid(1);    # let the framework stop it
	return;
}

# Processes titled 'idgen lease worker' that are children of the node's
# postmaster.  (Looked up in /proc: in remote mode the worker connects to
# no database of its own and is not listed in pg_stat_activity.)
sub lease_worker_count
{
	my ($node) = @_;
	open(my $fh, '<', $node->data_dir . '/postmaster.pid') or return 0;
	my $pm = <$fh>;
	close $fh;
	chomp $pm;
	my $n = 0;
	for my $stat (glob '/proc/[0-9]*/stat')
	{
		open(my $sf, '<', $stat) or next;
		my $line = <$sf> // '';
		close $sf;
		my ($ppid) = $line =~ /\)\s+\S+\s+(\d+)/;
		next unless defined $ppid && $ppid == $pm;
		(my $cmd = $stat) =~ s/stat$/cmdline/;
		open(my $cf, '<', $cmd) or next;
		my $title = <$cf> // '';
		close $cf;
		$n++ if $title =~ /idgen lease worker/;
	}
	return $n;
}

sub wait_held
{
	my ($node, $timeout) = @_;
	return wait_state($node, 'held', $timeout);
}

# ===========================================================================
# Part 1: a zero-configuration coordinator and three nodes
# ===========================================================================

my $coord = PostgreSQL::Test::Cluster->new('coordinator');
$coord->init;
$coord->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'idgen'
idgen.lease_ttl = $TTL
});
$coord->start;
$coord->safe_psql('postgres', 'CREATE EXTENSION idgen');

ok(wait_held($coord), 'coordinator with default settings leases its own worker id');
my $coord_id = status_of($coord, 'worker_id');
my ($cids, $cworkers) = issue_decoded($coord, 10);
is_deeply($cworkers, [$coord_id],
	"coordinator's own IDs decode to its leased worker id $coord_id");

my @nodes;
for my $name (qw(node_a node_b node_c))
{
	my $node = new_node($name, $coord);
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION idgen');
	push @nodes, $node;
}

my %id_of;
for my $node (@nodes)
{
	my $name = $node->name;
	ok(wait_held($node), "$name: lease held");
	$id_of{$name} = status_of($node, 'worker_id');
	cmp_ok($id_of{$name}, '>=', 0, "$name: status shows worker id $id_of{$name}");
	is(lease_worker_count($node), 1, "$name: one idgen lease worker process runs");
}

my %distinct = map { $_ => 1 } (values %id_of, $coord_id);
is(scalar keys %distinct, 4,
	'coordinator and three nodes hold four distinct worker ids: '
	  . join(', ', map { "$_=$id_of{$_}" } sort keys %id_of)
	  . ", coordinator=$coord_id");

for my $node (@nodes)
{
	my $name = $node->name;
	my ($ids, $workers) = issue_decoded($node, 200);
	is_deeply($workers, [ $id_of{$name} ],
		"$name: 200 IDs all decode to worker id $id_of{$name}");
	my @sorted = sort { $a <=> $b } @$ids;
	is_deeply($ids, \@sorted, "$name: IDs increase");
}

# The coordinator's table of leases.
my %holder = map { $_->name => holder_of($_) } @nodes;
is( $coord->safe_psql(
		'postgres',
		q{SELECT count(*) FROM idgen.leases
		   WHERE released_at IS NULL AND expires_at > now()}),
	'4',
	'coordinator: four live leases (three nodes and itself)');
for my $node (@nodes)
{
	my $name = $node->name;
	my $row = $coord->safe_psql(
		'postgres', qq{
SELECT worker_id, generation,
       expires_at > now() AND expires_at <= now() + interval '$TTL s'
  FROM idgen.leases
 WHERE holder = '$holder{$name}' AND released_at IS NULL});
	my $gen = status_of($node, 'lease_generation');
	is($row, "$id_of{$name}|$gen|t",
		"$name: live lease row for holder $holder{$name} with its worker id and generation"
	);
}
is( $coord->safe_psql(
		'postgres',
		q{SELECT count(*) FROM pg_stat_activity
		   WHERE application_name = 'idgen lease worker' AND backend_type = 'client backend'}),
	'3',
	"coordinator: one session per node's lease worker");

# Node status agrees with the coordinator's expiry, and renewal moves it on.
{
	my $node = $nodes[0];
	my $name = $node->name;
	my $before = $coord->safe_psql('postgres',
		"SELECT renewed_at FROM idgen.leases WHERE worker_id = $id_of{$name}");
	my ($ok) = poll_until(
		$coord,
		"SELECT renewed_at > '$before' FROM idgen.leases WHERE worker_id = $id_of{$name}",
		't', $TTL);
	ok($ok, "$name: lease renewed within the TTL ($TTL s)");
	my ($ok2, $diff) = poll_until(
		$node, q{SELECT lease_deadline_ms > 0 FROM idgen.status}, 't', 5);
	ok($ok2, "$name: positive lease_deadline_ms");
	my $exp = status_of($node, 'lease_expires_at');
	my $dt = $coord->safe_psql(
		'postgres', qq{
SELECT abs(extract(epoch FROM expires_at - '$exp'::timestamptz)) <= $TTL / 3.0 + 1
  FROM idgen.leases WHERE worker_id = $id_of{$name}});
	is($dt, 't', "$name: status lease_expires_at ($exp) matches the coordinator's");
}

# A clean shutdown releases the lease.
{
	my $node = pop @nodes;
	my $name = $node->name;
	$node->stop;
	is( $coord->safe_psql(
			'postgres', qq{
SELECT released_at IS NOT NULL AND expires_at <= now()
  FROM idgen.leases WHERE holder = '$holder{$name}'}),
		't',
		"$name: clean shutdown released its lease");
}

$_->stop for @nodes;
$coord->stop;

# ===========================================================================
# Part 2: worker_bits = 2 (four ids), simultaneous boots and exhaustion
# ===========================================================================

my $coord2 = PostgreSQL::Test::Cluster->new('coordinator2');
$coord2->init;    # no shared_preload_libraries: only CREATE EXTENSION
$coord2->start;
$coord2->safe_psql('postgres', 'CREATE EXTENSION idgen');

my $small = "idgen.worker_bits = 2\nidgen.sequence_bits = 20\n";
my @four = map { new_node("small_$_", $coord2, $small) } 1 .. 4;

# Hold up every acquisition on the coordinator (lease_acquire locks rows of
# these tables) while the four nodes boot, so that all four are in flight at
# once; lease calls time out after 5 s, so let go well before.
my $blocker = $coord2->background_psql('postgres');
$blocker->query_safe('BEGIN');
$blocker->query_safe(
	'LOCK TABLE idgen.lease_layout, idgen.leases IN EXCLUSIVE MODE');

start_nowait($_) for @four;
my $t0 = Time::HiRes::time();
my ($waiting, $most, $first_seen) = (0, 0, undef);
while (Time::HiRes::time() - $t0 < 20)
{
	$waiting = $coord2->safe_psql(
		'postgres', q{
SELECT count(*) FROM pg_stat_activity
 WHERE application_name = 'idgen lease worker' AND wait_event_type = 'Lock'});
	$most = $waiting if $waiting > $most;
	$first_seen //= Time::HiRes::time() if $waiting > 0;
	last if $waiting >= 4;
	last if defined $first_seen && Time::HiRes::time() - $first_seen > 3;
	usleep(50_000);
}
$blocker->query_safe('COMMIT');
$blocker->quit;
cmp_ok($most, '>=', 2,
	"simultaneous boots: $most acquisitions in flight at the same time");

finish_start($_) for @four;
$_->safe_psql('postgres', 'CREATE EXTENSION idgen') for @four;

my %small_id;
for my $node (@four)
{
	ok(wait_held($node), $node->name . ': lease held after a simultaneous boot');
	$small_id{ $node->name } = status_of($node, 'worker_id');
}
is_deeply(
	[ sort { $a <=> $b } values %small_id ],
	[ 0, 1, 2, 3 ],
	'four nodes booted at the same moment hold the four distinct ids');
for my $node (@four)
{
	my ($ids, $workers) = issue_decoded($node, 50);
	is_deeply($workers, [ $small_id{ $node->name } ],
		$node->name . ': IDs decode to its worker id');
}
is( $coord2->safe_psql(
		'postgres',
		q{SELECT timestamp_bits || '/' || worker_bits || '/' || sequence_bits FROM idgen.lease_layout}),
	'41/2/20',
	'coordinator recorded the nodes\' layout');

# The acquisition that filled the id space warned, and bit_budget() shows
# the usage.
my @warned = grep {
	$_->log_contains(qr/WARNING:.*idgen: \d of 4 worker ids are leased/)
} @four;
cmp_ok(scalar @warned, '>=', 1, 'a WARNING about the used-up id space in a node\'s log');
my ($last) = grep { $_->log_contains(qr/holding worker id \d \(generation \d+, 4 of 4 ids in use\)/) } @four;
ok($last, 'one acquisition saw all four ids in use');
$last //= $four[-1];
is( $last->safe_psql(
		'postgres', 'SELECT workers_in_use || \'/\' || worker_capacity FROM idgen.bit_budget()'),
	'4/4',
	$last->name . ': bit_budget() shows 4 of 4 worker ids in use');
is(status_of($last, 'workers_in_use'), '4', $last->name . ': status shows 4 in use');

# The usage is counted at acquisition only (a renewal costs the same
# whatever the number of holders): every node shows what its own
# acquisition counted, after renewals too.
for my $node (@four)
{
	my ($counted) = slurp_file($node->logfile)
	  =~ /.*holding worker id \d \(generation \d+, (\d) of 4 ids in use\)/s;
	my ($ok, $out) = poll_until($node, 'SELECT workers_in_use FROM idgen.bit_budget()',
		$counted // 'none logged', $TTL);
	ok($ok, $node->name . ": bit_budget().workers_in_use is what its acquisition counted ($out)");
}

# A fifth node: no free id.
my $fifth = new_node('small_5', $coord2, $small);
$fifth->start;
$fifth->safe_psql('postgres', 'CREATE EXTENSION idgen');
my ($err_ok, $err) = poll_until($fifth,
	q{SELECT lease_error ~ 'no free worker id' FROM idgen.status}, 't', 15);
ok($err_ok, 'fifth node: lease_error names the exhaustion');
is(status_of($fifth, 'lease_state'), 'acquiring', 'fifth node: lease_state acquiring');
is(status_of($fifth, 'worker_id'), '-1', 'fifth node: no worker id');
my $r = try_sql($fifth, 'SELECT idgen.snowflake_next()');
is($r->{sqlstate}, 'IG005', 'fifth node: snowflake_next() refused with IG005');
like($r->{stderr}, qr/no worker id lease is held/, 'fifth node: refusal explains why');
like($fifth->safe_psql('postgres', 'SELECT idgen.uuidv7()'),
	qr/^[0-9a-f]{8}-[0-9a-f]{4}-7/, 'fifth node: uuidv7() works without a lease');
ok($fifth->log_contains(qr/could not acquire a worker id lease: no free worker id/),
	'fifth node: exhaustion logged');

# While it waits, the fifth node retries with backoff (capped at a sixth of
# the TTL, with jitter), neither giving up nor hammering the coordinator.
{
	my $holder5 = holder_of($fifth);
	my $log_at = -s $coord2->logfile;
	my $t_from = Time::HiRes::time();
	usleep(4_000_000);
	my $window = Time::HiRes::time() - $t_from;
	my $log = slurp_file($coord2->logfile, $log_at);
	my $calls = () = $log =~ /[Pp]arameters: \$1 = '\Q$holder5\E'/g;
	cmp_ok($calls, '>=', 2, "fifth node keeps retrying ($calls attempts in ${\sprintf('%.1f', $window)} s)");
	cmp_ok($calls, '<=', 3 * $window + 2, 'fifth node retries with backoff, not in a tight loop');
}

# One node leaves cleanly: the fifth gets its id, after the quarantine,
# and starts above the time floor the leaver recorded.
my $leaver = $four[1];
my $freed = $small_id{ $leaver->name };
my ($leaver_ids) = issue_decoded($leaver, 10);
$leaver->stop;
my $released_floor = $coord2->safe_psql('postgres',
	"SELECT time_floor_ms FROM idgen.leases WHERE worker_id = $freed AND released_at IS NOT NULL");
like($released_floor, qr/^\d+$/, "leaver released worker id $freed with time floor $released_floor");
ok(wait_held($fifth, 20), 'fifth node: lease held once a node has left');
is(status_of($fifth, 'worker_id'), $freed, "fifth node took the freed worker id $freed");
# The fifth node may refuse (clock behind the inherited floor) for a moment.
my ($first_ok, $first_id) = poll_until($fifth,
	'SELECT idgen.snowflake_next() > 0', 't', 10);
ok($first_ok, 'fifth node: issues Snowflake IDs under the freed id');
is( $fifth->safe_psql(
		'postgres', qq{
SELECT min(id) > idgen.snowflake_min(to_timestamp(($released_floor + 1) / 1000.0))
  FROM (SELECT idgen.snowflake_next() AS id FROM generate_series(1, 5)) s}),
	't',
	'fifth node: IDs above the time floor recorded by the id\'s previous holder');
is( $coord2->safe_psql(
		'postgres', qq{
SELECT n.acquired_at >= o.released_at + interval '$MARGIN s'
  FROM idgen.lease_history o JOIN idgen.lease_history n USING (worker_id)
 WHERE worker_id = $freed AND n.generation = o.generation + 1
   AND n.holder = '} . holder_of($fifth) . q{'}),
	't',
	'fifth node acquired the released id only after its quarantine');
my ($fifth_ids, $fifth_workers) = issue_decoded($fifth, 10);
is_deeply($fifth_workers, [$freed], 'fifth node: IDs decode to the freed id');
cmp_ok($fifth_ids->[0], '>', $leaver_ids->[-1],
	'fifth node: first ID above the last ID of the id\'s previous holder');

$_->stop for ($fifth, @four[0, 2, 3]);
$coord2->stop;

done_testing();
