# Worker-id leasing and the roles on the coordinator: least privilege, no
# way to block leasing, no leaked password.
#
#  - Nodes connect to the coordinator as roles that have EXECUTE on the
#    three lease functions and nothing else (the README's recipe): they
#    lease and renew; the functions are SECURITY DEFINER with a pinned
#    search_path; the node roles cannot read or write idgen's lease tables.
#  - One node's credentials cannot renew or release another node's lease,
#    even when passed that node's worker id, generation and holder
#    identity, nor raise its floor.
#  - A role that can merely connect to the coordinator takes the advisory
#    locks leasing used to rely on (7535,0 and 7534,N), and grabs a node's
#    key the moment that node's coordinator session is cut: the node still
#    renews with the same id, and a new node still leases.
#  - A superuser session that holds the acquisition lock delays a new node
#    by at most the lock timeout each time, and idgen.status.lease_error
#    names what blocks it.
#  - A malformed idgen.coordinator (a URI or a keyword string with a
#    password) and a well-formed one that fails: the password appears
#    neither in idgen.status (readable by every role) nor in the server log.

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
idgen.worker_id = 7
});
$coord->start;
$coord->safe_psql(
	'postgres', q{
CREATE EXTENSION idgen;
CREATE ROLE node_a LOGIN;
CREATE ROLE node_b LOGIN;
CREATE ROLE intruder LOGIN;
GRANT EXECUTE ON FUNCTION idgen.lease_acquire, idgen.lease_renew, idgen.lease_release
   TO node_a, node_b;
});

sub new_node
{
	my ($name, $user) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'idgen'
idgen.lease_ttl = $TTL
idgen.worker_bits = 2
idgen.sequence_bits = 20
idgen.coordinator = 'host=${\$coord->host} port=${\$coord->port} dbname=postgres user=$user'
});
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION idgen');
	return $node;
}

# ===========================================================================
# Nodes with EXECUTE only
# ===========================================================================

my $n1 = new_node('node_1', 'node_a');
my $n2 = new_node('node_2', 'node_b');
ok(wait_state($n1, 'held'), 'node_1 (role node_a, EXECUTE only) holds a lease');
ok(wait_state($n2, 'held'), 'node_2 (role node_b, EXECUTE only) holds a lease');
my ($w1, $w2) = map { status_of($_, 'worker_id') } ($n1, $n2);
my ($g1, $g2) = map { status_of($_, 'lease_generation') } ($n1, $n2);
my ($h1, $h2) = map { holder_of($_) } ($n1, $n2);
isnt($w1, $w2, "distinct worker ids $w1 and $w2");

is( $coord->safe_psql(
		'postgres', q{
SELECT string_agg(format('%s %s %s', p.proname, p.prosecdef,
                         'search_path=pg_catalog, pg_temp' = ANY (p.proconfig)), ', '
                  ORDER BY p.proname)
  FROM pg_proc p
 WHERE p.pronamespace = 'idgen'::regnamespace AND p.proname LIKE 'lease\_%'}),
	'lease_acquire t t, lease_release t t, lease_renew t t',
	'the lease functions are SECURITY DEFINER with search_path pinned');

for my $sql (
	'SELECT * FROM idgen.leases',
	'SELECT * FROM idgen.lease_layout',
	"INSERT INTO idgen.lease_history VALUES (3, 1, 'x', now(), now(), now())",
	"UPDATE idgen.leases SET time_floor_ms = 0 WHERE worker_id = $w2",
	'DELETE FROM idgen.lease_layout',
	'LOCK TABLE idgen.leases')
{
	is(try_sql($coord, "BEGIN; $sql; ROLLBACK", user => 'node_a')->{sqlstate},
		'42501', "node role cannot: $sql");
}

# ===========================================================================
# One node's credentials cannot act on another node's lease
# ===========================================================================

my $floor_before = $coord->safe_psql('postgres',
	"SELECT time_floor_ms FROM idgen.leases WHERE worker_id = $w2");
my $r = try_sql($coord,
	"SELECT * FROM idgen.lease_renew($w2, $g2, '$h2', 3600, 9000000000000000)",
	user => 'node_a');
is($r->{sqlstate}, 'IG007',
	"node_a cannot renew node_2's lease with its id, generation and holder");
$r = try_sql($coord, "SELECT idgen.lease_release($w2, $g2, '$h2', 0)",
	user => 'node_a');
is($r->{sqlstate}, 'IG007', "node_a cannot release node_2's lease");
is( $coord->safe_psql(
		'postgres',
		"SELECT released_at IS NULL, time_floor_ms <= $floor_before + 3600000 FROM idgen.leases WHERE worker_id = $w2"
	),
	't|t',
	"node_2's lease is still live and its floor was not raised by node_a");
ok(wait_state($n2, 'held'), 'node_2 still holds its lease');
is(status_of($n2, 'lease_generation'), $g2, 'node_2: same generation');

# ===========================================================================
# An unprivileged role cannot block leasing
# ===========================================================================

my $free = join(',', grep { $_ != $w1 && $_ != $w2 } 0 .. 3);
my $squat = $coord->background_psql('postgres', extra_params => [ '-U', 'intruder' ]);
$squat->query_safe(
	"SELECT pg_advisory_lock(7535, 0), pg_advisory_lock(7534, k) FROM unnest('{$free}'::int[]) k"
);
# A second intruder session waits for node_1's key, and gets it as soon as
# node_1's coordinator session is gone.
my $grab = $coord->background_psql('postgres', extra_params => [ '-U', 'intruder' ]);
$grab->query_until(qr/start/, "\\echo start\nSELECT pg_advisory_lock(7534, $w1);\n");

my $t_cut = $coord->safe_psql('postgres', 'SELECT now()');
is( $coord->safe_psql(
		'postgres', q{
SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
 WHERE application_name = 'idgen lease worker' AND usename = 'node_a'}),
	'1',
	"node_1's coordinator session is cut");

my ($renewed) = poll_until(
	$coord,
	"SELECT renewed_at > '$t_cut' FROM idgen.leases WHERE worker_id = $w1 AND generation = $g1",
	't', 3 * $TTL);
ok($renewed, 'node_1 renews its lease in a new session, whatever the intruder holds');
ok(wait_state($n1, 'held'), 'node_1 holds its lease');
is(status_of($n1, 'worker_id') . '/' . status_of($n1, 'lease_generation'),
	"$w1/$g1", 'node_1 kept its worker id and generation');

my $n3 = new_node('node_3', 'node_a');
ok(wait_state($n3, 'held', 3 * $TTL),
	'a new node leases while the intruder holds the advisory keys');
my $w3 = status_of($n3, 'worker_id');
ok($w3 ne $w1 && $w3 ne $w2, "node_3 got a free worker id ($w3)");
$squat->quit;
$grab->quit;

# ===========================================================================
# A blocked acquisition is bounded and says what blocks it
# ===========================================================================

my $blocker = $coord->background_psql('postgres');
$blocker->query_safe('BEGIN');
$blocker->query_safe('SELECT idgen._lease_acquisition_lock()');
my $blocker_pid = $blocker->query_safe('SELECT pg_backend_pid()');
my $n4 = new_node('node_4', 'node_b');
my ($named) = poll_until(
	$n4,
	"SELECT lease_state = 'acquiring' AND lease_error ~ 'blocked' AND lease_error ~ 'pid $blocker_pid' AND lease_error ~ 'role postgres' FROM idgen.status",
	't', 20);
ok($named, 'a blocked acquisition shows in idgen.status with the blocking pid and role');
note('lease_error: ' . status_of($n4, 'lease_error'));
$blocker->query_safe('COMMIT');
$blocker->quit;
ok(wait_state($n4, 'held', 3 * $TTL), 'node_4 leases once the blocker lets go');

is($coord->safe_psql('postgres', 'SELECT count(*) FROM idgen.audit_leases()'),
	'0', 'audit_leases(): no overlapping holdings');
$_->stop for ($n1, $n2, $n3, $n4);

# ===========================================================================
# The coordinator's password never shows
# ===========================================================================

my $bad = PostgreSQL::Test::Cluster->new('bad_conninfo');
$bad->init;
$bad->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'idgen'
idgen.lease_ttl = $TTL
});
$bad->start;
$bad->safe_psql('postgres', 'CREATE EXTENSION idgen; CREATE ROLE reader LOGIN');

my @cases = (
	[ 'malformed URI', 'postgresql://node_a:PASSWORD1x@[::1', 'PASSWORD1x' ],
	[
		'malformed keyword string', "password=Top SecretPW3 host=${\$coord->host}",
		'SecretPW3'
	],
	[
		'keyword string with an unterminated quote',
		"host=${\$coord->host} password='Qu0tedPW",
		'Qu0tedPW'
	],
	[
		'well-formed, unreachable',
		'host=127.0.0.1 port=1 user=node_a password=Sekr1tXYZ dbname=postgres',
		'Sekr1tXYZ'
	],
	[
		'well-formed URI, no such database',
		"postgresql://node_a:UriPW9@/nosuchdb?host=${\$coord->host}&port=${\$coord->port}",
		'UriPW9'
	]);
for my $case (@cases)
{
	my ($what, $conninfo, $secret) = @$case;
	(my $quoted = $conninfo) =~ s/'/''/g;
	$bad->append_conf('postgresql.conf', "idgen.coordinator = '$quoted'\n");
	my $log_offset = -s $bad->logfile;
	$bad->restart;
	poll_until($bad, q{SELECT lease_error <> '' FROM idgen.status}, 't', 15);
	my $seen = try_sql($bad, 'SELECT lease_state, lease_error FROM idgen.status',
		user => 'reader');
	is($seen->{ret}, 0, "$what: an ordinary role reads idgen.status");
	like($seen->{stdout}, qr/acquiring\|\S/, "$what: acquiring, with a lease_error");
	unlike($seen->{stdout}, qr/\Q$secret\E/, "$what: lease_error does not show the password");
	note("lease_error: $seen->{stdout}");
	my $log = slurp_file($bad->logfile, $log_offset);
	like($log, qr/could not acquire a worker id lease/, "$what: the failure is logged");
	unlike($log, qr/\Q$secret\E/, "$what: the server log does not show the password");
}

done_testing();
