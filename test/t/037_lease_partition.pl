# A node partitioned from its coordinator for longer than a call timeout
# keeps its worker id and holding once the partition heals.
#
# The node reaches the coordinator over TCP through a relay in this test.
# Right after a renewal the relay partitions every connection it carries:
# it stops forwarding in either direction and never closes them, as when
# packets are lost (the coordinator's session stays, idle, holding the
# node's worker-id lock).  The next renewal times out; the node goes
# fail-static and gives up on its session.  Then the partition heals for
# new connections: the node reconnects while its old session is still
# alive on the coordinator.  Its renewal in the new session must end that
# stale session of its own and renew the same worker id and generation,
# without refusing a Snowflake ID and without taking another id (one is
# free: taking it would show).

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use IdgenTest;
use IO::Select;
use IO::Socket::INET;
use Time::HiRes qw(usleep);

my $TTL = 30;

my $coord = PostgreSQL::Test::Cluster->new('coordinator');
$coord->init;
$coord->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'idgen'
idgen.worker_id = 7
listen_addresses = '127.0.0.1'
});
$coord->start;
$coord->safe_psql('postgres', 'CREATE EXTENSION idgen');

# The relay: forwards 127.0.0.1:$relay_port to the coordinator.  While the
# file $cut exists it accepts nothing and marks every connection it
# carries as partitioned: never serviced (nor closed) again.
my $relay_port = PostgreSQL::Test::Cluster::get_free_port();
my $cut = $coord->basedir . '/partition';
my $relay_pid = fork();
die "fork: $!" unless defined $relay_pid;
if ($relay_pid == 0)
{
	my $listener = IO::Socket::INET->new(
		LocalAddr => '127.0.0.1',
		LocalPort => $relay_port,
		Listen => 16,
		ReuseAddr => 1) or die "relay: cannot listen: $!";
	my (@pairs, @lost);
	for (;;)
	{
		if (-e $cut)
		{
			push @lost, @pairs;
			@pairs = ();
			usleep(20_000);
			next;
		}
		my $sel = IO::Select->new($listener, map { @$_ } @pairs);
		for my $fh ($sel->can_read(0.05))
		{
			if ($fh == $listener)
			{
				my $client = $listener->accept or next;
				my $server = IO::Socket::INET->new(
					PeerAddr => '127.0.0.1',
					PeerPort => $coord->port);
				if ($server) { push @pairs, [ $client, $server ]; }
				else { close $client; }
				next;
			}
			my ($pair) = grep { $_->[0] == $fh || $_->[1] == $fh } @pairs;
			next unless $pair;
			my $to = $pair->[0] == $fh ? $pair->[1] : $pair->[0];
			my $n = sysread($fh, my $buf, 65536);
			if (!$n)
			{
				close $_ for @$pair;
				@pairs = grep { $_ != $pair } @pairs;
				next;
			}
			syswrite($to, $buf);
		}
	}
}
END { kill 'KILL', $relay_pid if $relay_pid; }

my $node = PostgreSQL::Test::Cluster->new('node');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'idgen'
idgen.lease_ttl = $TTL
idgen.worker_bits = 1
idgen.sequence_bits = 21
idgen.coordinator = 'host=127.0.0.1 port=$relay_port dbname=postgres'
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION idgen');
ok(wait_state($node, 'held', $TTL), 'node holds a lease through the relay');
my $w = status_of($node, 'worker_id');
my $g = status_of($node, 'lease_generation');

# Partition right after a renewal.
my $r0 = $coord->safe_psql('postgres', "SELECT renewed_at FROM idgen.leases WHERE worker_id = $w");
my ($renewed) = poll_until($coord,
	"SELECT renewed_at > '$r0' FROM idgen.leases WHERE worker_id = $w", 't', $TTL);
ok($renewed, 'node renews');
open(my $fh, '>', $cut) or die "could not create $cut: $!";
close $fh;
my $stale_pid = $coord->safe_psql('postgres',
	q{SELECT pid FROM pg_stat_activity WHERE application_name = 'idgen lease worker'});
like($stale_pid, qr/^\d+$/, "the node's coordinator session: pid $stale_pid");

# The next renewal (a third of the TTL later) times out: fail-static.
ok(wait_state($node, 'fail-static', $TTL), 'partitioned: the node goes fail-static');
note('lease_error: ' . status_of($node, 'lease_error'));
is( $coord->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE pid = $stale_pid"),
	'1',
	"the node's old session is still alive on the coordinator");

# Heal: new connections go through again.
unlink $cut or die "could not remove $cut: $!";
ok(wait_state($node, 'held', $TTL), 'healed: the node holds a lease again');
is(status_of($node, 'worker_id') . '/' . status_of($node, 'lease_generation'),
	"$w/$g", 'healed: same worker id and generation (renewed, not lost)');
is( $coord->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE pid = $stale_pid"),
	'0',
	"the node's stale session was ended");
my (undef, $workers) = issue_decoded($node, 10);
is_deeply($workers, [$w], "IDs still carry worker id $w");
is($coord->safe_psql('postgres', 'SELECT count(*) FROM idgen.audit_leases()'),
	'0', 'audit_leases(): no overlapping holdings');

done_testing();
