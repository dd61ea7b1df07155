# A frozen node loses its worker id within the TTL (plus the margin).
#
# Two nodes lease the only two worker ids (worker_bits = 1) from a
# coordinator they reach over TCP loopback; their sessions there set the
# server-side limits derived from the TTL (seen in the coordinator's
# statement log).  One node is frozen with
# SIGSTOP (its postmaster and every child): its kernel still acknowledges
# TCP, so neither keepalives nor tcp_user_timeout end its idle coordinator
# session; only the server-side limits the lease worker sets on that
# session do.  A third node that starts after the freeze must get the frozen
# node's id once its lease has expired plus the margin (printed: the time it
# took), and issue IDs under it.  When the frozen node thaws it issues no
# Snowflake ID under its old id (its deadline has passed on its monotonic
# clock) and finds the id taken; idgen.audit_leases() finds no overlap.

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
my $MARGIN = 1;

my $coord = PostgreSQL::Test::Cluster->new('coordinator');
$coord->init;
$coord->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'idgen'
idgen.worker_id = 7
listen_addresses = '127.0.0.1'
log_statement = 'all'
});
$coord->start;
$coord->safe_psql('postgres', 'CREATE EXTENSION idgen');

sub new_node
{
	my ($name) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'idgen'
idgen.lease_ttl = $TTL
idgen.worker_bits = 1
idgen.sequence_bits = 21
idgen.coordinator = 'host=127.0.0.1 port=${\$coord->port} dbname=postgres'
});
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION idgen');
	return $node;
}

# The postmaster of $node and all its children.
sub server_pids
{
	my ($node) = @_;
	my $pm = $node->{_pid} or die 'node ' . $node->name . ' is not running';
	my @pids = ($pm);
	opendir(my $dh, '/proc') or die "could not read /proc: $!";
	for my $pid (grep { /^\d+$/ } readdir $dh)
	{
		open(my $fh, '<', "/proc/$pid/stat") or next;
		my $stat = <$fh>;
		close $fh;
		next unless defined $stat && $stat =~ /\)\s+\S+\s+(\d+)/;
		push @pids, $pid if $1 == $pm;
	}
	closedir $dh;
	return @pids;
}

my $a = new_node('node_a');
my $b = new_node('node_b');
ok(wait_state($a, 'held'), 'node_a holds a lease');
ok(wait_state($b, 'held'), 'node_b holds a lease');
# Every coordinator session of a lease worker sets its limits, derived
# from the TTL (6 s: call timeout 2 s), and search_path = pg_catalog.
{
	my $log = slurp_file($coord->logfile);
	my %want = (
		search_path => 'pg_catalog',
		statement_timeout => 1600,
		lock_timeout => 1000,
		idle_in_transaction_session_timeout => 2000,
		idle_session_timeout => 4000,
		tcp_keepalives_idle => 1,
		tcp_keepalives_interval => 1,
		tcp_keepalives_count => 3,
		tcp_user_timeout => 2000);
	for my $name (sort keys %want)
	{
		like($log, qr/set_config\('$name', '$want{$name}', false\)/,
			"lease worker sessions set $name = $want{$name}");
	}
}
my $wa = status_of($a, 'worker_id');
my $wb = status_of($b, 'worker_id');
isnt($wa, $wb, "node_a has id $wa, node_b id $wb: every id is taken");
my ($ids_a) = issue_decoded($a, 50);

# The postmaster first: stopped, it neither forks nor reaps, so a child
# that exits meanwhile stays a zombie that kill still reaches.
my @frozen = ($a->{_pid});
END { kill 'CONT', @frozen if @frozen; }
kill('STOP', @frozen);
@frozen = server_pids($a);
ok(kill('STOP', @frozen) == @frozen, 'node_a frozen (' . scalar(@frozen) . ' processes)');
my $t_freeze = Time::HiRes::time();

my $c = new_node('node_c');
my ($took, $state, $waited) = poll_until($c,
	"SELECT lease_state || '/' || worker_id FROM idgen.status", "held/$wa",
	3 * $TTL + 15);
$waited = Time::HiRes::time() - $t_freeze;
ok($took, "node_c took the frozen node's id $wa (last state: $state)");
diag(sprintf('node_c held the frozen node\'s id %.1f s after the freeze (TTL %d s + margin %d s)',
		$waited, $TTL, $MARGIN));
my ($ids_c, $workers_c) = issue_decoded($c, 50);
is_deeply($workers_c, [$wa], "node_c issues under worker id $wa");

kill('CONT', @frozen);
@frozen = ();
# Whatever it does now, node_a must not issue under its old id: its
# deadline passed while it was frozen.
my $r = try_sql($a, 'SELECT idgen.snowflake_next()');
is($r->{sqlstate}, 'IG005', 'node_a, thawed, refuses Snowflake IDs');
ok(wait_state($a, 'acquiring', 3 * $TTL), 'node_a, thawed, finds its lease gone');
is(status_of($b, 'worker_id'), $wb, 'node_b kept its id throughout');

my %seen;
my $dups = grep { $seen{$_}++ } (@$ids_a, @$ids_c);
is($dups, 0, 'no ID issued twice');
is($coord->safe_psql('postgres', 'SELECT count(*) FROM idgen.audit_leases()'),
	'0', 'audit_leases(): no overlapping holdings');

done_testing();
