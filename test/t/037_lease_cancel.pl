# pg_cancel_backend() on the lease worker is a cancel, not a shutdown.
#
# A cancel used to end the worker (an ERROR outside any call becomes FATAL
# in a background worker), which gave its lease back; the restarted worker
# then took a new holding.  Now the worker logs the cancel and goes on:
# same process, same holding (worker id and generation), the coordinator's
# row still live, Snowflake IDs still issued.  Checked for a
# self-coordinating server (the lease calls run in the worker's own
# session) and for a node leasing from it over libpq.

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


my $coord = PostgreSQL::Test::Cluster->new('coordinator');
$coord->init;
$coord->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'idgen'
idgen.lease_ttl = $TTL
});
$coord->start;
$coord->safe_psql('postgres', 'CREATE EXTENSION idgen');

my $node = PostgreSQL::Test::Cluster->new('node');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'idgen'\n"
	  . "idgen.lease_ttl = $TTL\n"
	  . "idgen.coordinator = 'host="
	  . $coord->host
	  . ' port='
	  . $coord->port
	  . " dbname=postgres'\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION idgen');

for my $n ($coord, $node)
{
	my $name = $n->name;
	ok(wait_state($n, 'held'), "$name: lease held");
	my $pid = lease_worker_pid($n);
	ok(defined $pid, "$name: lease worker running");
	my $gen = status_of($n, 'lease_generation');
	my $id = status_of($n, 'worker_id');
	my $holder = holder_of($n);

	# Several cancels, some while a renewal (every TTL/3) is likely in
	# flight; each one must be seen by the worker (its log line) before
	# the next.
	for my $i (1 .. 3)
	{
		my $offset = -s $n->logfile;
		is($n->safe_psql('postgres', "SELECT pg_cancel_backend($pid)"),
			't', "$name: cancel $i sent to the lease worker");
		ok( $n->wait_for_log(qr/ignoring a cancel request/, $offset),
			"$name: cancel $i: the worker logs that it keeps its lease");
		usleep(700_000);
	}

	is(lease_worker_pid($n), $pid, "$name: the same lease worker still runs");
	is(status_of($n, 'lease_state'), 'held', "$name: lease still held");
	is(status_of($n, 'lease_generation'), $gen,
		"$name: same holding (generation $gen)");
	is(status_of($n, 'worker_id'), $id, "$name: same worker id $id");
	is( $coord->safe_psql(
			'postgres', qq{
SELECT count(*) FROM idgen.leases
 WHERE holder = '$holder' AND worker_id = $id AND generation = $gen
   AND released_at IS NULL}),
		'1',
		"$name: the coordinator's row of the holding is still live");
	my ($ids, $workers) = issue_decoded($n, 10);
	is_deeply($workers, [$id], "$name: Snowflake IDs still carry worker id $id");
	ok(!$n->log_contains(qr/canceling statement due to user request|lease worker" \(PID \d+\) exited/,
			0),
		"$name: the worker neither failed on the cancel nor gave its lease back");
}

$node->stop;
$coord->stop;
done_testing();
