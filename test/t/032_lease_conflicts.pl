# Worker-id leases: conflicts, layout mismatches and privileges.
#
#  - With a coordinator configured, a static idgen.worker_id is claimed
#    through the lease table.  A free one is 'held' (and its IDs decode to
#    it); one that a live lease holds puts the node in 'conflict':
#    snowflake_next() refuses (IG005) and lease_error names the holder.  Once
#    the holder has left and the quarantine has passed, the static node gets
#    its id and issues above the previous holder's IDs.
#  - A node whose Snowflake layout (here idgen.epoch) differs from the one the
#    coordinator recorded is refused: 'conflict', lease_error about the
#    layout, IG005.
#  - On the coordinator, the lease tables and functions are not readable,
#    writable or callable by an ordinary role; a node can lease through a
#    non-superuser role that the DBA granted EXECUTE on the lease functions.
#  - idgen.coordinator may hold a password: an ordinary role cannot SHOW it,
#    read it with current_setting(), or find it in pg_settings or SHOW ALL.

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
$coord->start;
$coord->safe_psql(
	'postgres', q{
CREATE EXTENSION idgen;
CREATE ROLE alice LOGIN;
-- the role a node leases through: EXECUTE on the lease functions only
CREATE ROLE idgen_node LOGIN;
GRANT EXECUTE ON FUNCTION idgen.lease_acquire, idgen.lease_renew, idgen.lease_release
    TO idgen_node;
});
my $coordinator = 'host=' . $coord->host . ' port=' . $coord->port . ' dbname=postgres';

sub new_node
{
	my ($name, $extra, $conninfo) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf',
		"shared_preload_libraries = 'idgen'\n"
		  . "idgen.lease_ttl = $TTL\n"
		  . "idgen.coordinator = '"
		  . ($conninfo // $coordinator) . "'\n"
		  . ($extra // ''));
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION idgen');
	return $node;
}

# ---------------------------------------------------------------------------
# A leased node; its connection string carries a password (ignored under
# trust authentication) that must stay hidden.
# ---------------------------------------------------------------------------
my $secret = 'Sesame-4711';
my $leased = new_node('leased', '', "$coordinator password=$secret");
ok(wait_state($leased, 'held'), 'leased node: lease held');
my $taken = status_of($leased, 'worker_id');
my $leased_holder = holder_of($leased);
my ($leased_ids) = issue_decoded($leased, 20);

# ---------------------------------------------------------------------------
# A static id that no one holds: claimed through the lease table.
# ---------------------------------------------------------------------------
my $free_static = 5;
my $static_ok = new_node('static_free', "idgen.worker_id = $free_static\n");
ok(wait_state($static_ok, 'held'), "static id $free_static, free: lease held");
is(status_of($static_ok, 'worker_id'), $free_static, "static node: worker id $free_static");
{
	my ($ids, $workers) = issue_decoded($static_ok, 20);
	is_deeply($workers, [$free_static], "static node: IDs decode to $free_static");
}
is( $coord->safe_psql('postgres',
		"SELECT holder FROM idgen.leases WHERE worker_id = $free_static AND released_at IS NULL"),
	holder_of($static_ok),
	'static node: its claim is a lease row on the coordinator');

# ---------------------------------------------------------------------------
# A static id that a live lease holds: conflict.
# ---------------------------------------------------------------------------
my $clash = new_node('static_clash', "idgen.worker_id = $taken\n");
my ($conflict) = poll_until($clash, 'SELECT lease_state FROM idgen.status', 'conflict', 15);
ok($conflict, "static id $taken held by the leased node: lease_state conflict");
is(status_of($clash, 'worker_id'), '-1', 'conflicting node: no worker id in use');
my $clash_error = status_of($clash, 'lease_error');
like($clash_error, qr/worker id $taken is held by another node/,
	'conflicting node: lease_error says the id is held');
like($clash_error, qr/\Q$leased_holder\E/, 'conflicting node: lease_error names the holder');
{
	my $r = try_sql($clash, 'SELECT idgen.snowflake_next()');
	is($r->{sqlstate}, 'IG005', 'conflicting node: snowflake_next() refused with IG005');
	like($r->{stderr}, qr/conflict/, 'conflicting node: refusal shows the conflict state');
}
ok($clash->log_contains(qr/WARNING:.*could not acquire a worker id lease: worker id $taken is held by another node/),
	'conflicting node: WARNING in its log');
is( $coord->safe_psql('postgres',
		"SELECT holder FROM idgen.leases WHERE worker_id = $taken"),
	$leased_holder,
	'the coordinator still gives the id to its first holder');
is(status_of($leased, 'lease_state'), 'held', 'leased node unaffected by the conflict');

# ---------------------------------------------------------------------------
# A node with another layout: refused.
# ---------------------------------------------------------------------------
my $other = new_node('other_epoch', "idgen.epoch = '2023-01-01'\n");
my ($refused) = poll_until($other, 'SELECT lease_state FROM idgen.status', 'conflict', 15);
ok($refused, 'node with another epoch: lease_state conflict');
like(status_of($other, 'lease_error'), qr/layout differs/i,
	'node with another epoch: lease_error names the layout');
{
	my $r = try_sql($other, 'SELECT idgen.snowflake_next()');
	is($r->{sqlstate}, 'IG005', 'node with another epoch: snowflake_next() refused with IG005');
}
is( $coord->safe_psql('postgres',
		q{SELECT count(*) FROM idgen.leases WHERE holder = '} . holder_of($other) . q{'}),
	'0',
	'node with another epoch: no lease row');
is( $coord->safe_psql('postgres', q{SELECT to_timestamp(epoch_ms / 1000.0) AT TIME ZONE 'UTC' FROM idgen.lease_layout}),
	'2024-01-01 00:00:00',
	'coordinator kept the first layout');
$other->stop;

# ---------------------------------------------------------------------------
# The holder leaves: after the quarantine the static node gets its id.
# ---------------------------------------------------------------------------
$leased->stop;
ok(wait_state($clash, 'held', 15), 'static node: lease held once the holder left');
is(status_of($clash, 'worker_id'), $taken, "static node: worker id $taken");
is( $coord->safe_psql(
		'postgres', qq{
SELECT n.acquired_at >= o.released_at + interval '$MARGIN s'
  FROM idgen.lease_history o JOIN idgen.lease_history n USING (worker_id)
 WHERE worker_id = $taken AND n.generation = o.generation + 1}),
	't',
	'static node took the id only after the quarantine');
my ($clash_ok) = poll_until($clash, 'SELECT idgen.snowflake_next() > 0', 't', 10);
ok($clash_ok, 'static node issues IDs');
{
	my ($ids, $workers) = issue_decoded($clash, 20);
	is_deeply($workers, [$taken], "static node: IDs decode to $taken");
	cmp_ok($ids->[0], '>', $leased_ids->[-1], "static node: IDs above the previous holder's");
}
$clash->stop;

# ---------------------------------------------------------------------------
# A node leasing through a granted non-superuser role.
# ---------------------------------------------------------------------------
my $granted = new_node('granted_role', '', "$coordinator user=idgen_node");
ok(wait_state($granted, 'held'), 'node leasing as a granted non-superuser role: lease held');
is( $coord->safe_psql('postgres',
		q{SELECT usename FROM pg_stat_activity WHERE application_name = 'idgen lease worker' AND usename <> current_user}),
	'idgen_node',
	'its coordinator session runs as idgen_node');
$granted->stop;

# ---------------------------------------------------------------------------
# Privileges on the coordinator.
# ---------------------------------------------------------------------------
my @denied = (
	[ 'UPDATE idgen.leases', q{UPDATE idgen.leases SET expires_at = now()} ],
	[ 'DELETE FROM idgen.leases', q{DELETE FROM idgen.leases} ],
	[ 'INSERT INTO idgen.leases',
		q{INSERT INTO idgen.leases VALUES (9, 'x', 1, 1, now(), now(), now() + interval '1 h')} ],
	[ 'SELECT idgen.leases', q{SELECT * FROM idgen.leases} ],
	[ 'UPDATE idgen.lease_layout', q{UPDATE idgen.lease_layout SET worker_bits = 3} ],
	[ 'DELETE FROM idgen.lease_history', q{DELETE FROM idgen.lease_history} ],
	[ 'idgen.lease_acquire()',
		q{SELECT * FROM idgen.lease_acquire('x', 1, 41, 10, 12, 1, 1704067200000, 6, 1, -1, -1, 0)} ],
	[ 'idgen.lease_renew()', q{SELECT idgen.lease_renew(0, 1, 'x', 6, 0)} ],
	[ 'idgen.lease_release()', q{SELECT idgen.lease_release(0, 1, 'x', 0)} ]);
for my $case (@denied)
{
	my ($what, $sql) = @$case;
	my $r = try_sql($coord, $sql, user => 'alice');
	is($r->{sqlstate}, '42501', "ordinary role: $what denied");
	like($r->{stderr}, qr/permission denied/, "ordinary role: $what says permission denied");
}
is($coord->safe_psql('postgres', 'SELECT count(*) FROM idgen.leases WHERE holder = \'x\''),
	'0', 'no lease row written by the ordinary role');

# ---------------------------------------------------------------------------
# idgen.coordinator is superuser-only.
# ---------------------------------------------------------------------------
my $node = $static_ok;
$node->safe_psql('postgres', 'CREATE ROLE bob LOGIN');
is($node->safe_psql('postgres', 'SHOW idgen.coordinator'),
	$coordinator, 'superuser: SHOW idgen.coordinator');
{
	my $r = try_sql($node, 'SHOW idgen.coordinator', user => 'bob');
	is($r->{sqlstate}, '42501', 'ordinary role: SHOW idgen.coordinator denied');
	$r = try_sql($node, q{SELECT current_setting('idgen.coordinator')}, user => 'bob');
	is($r->{sqlstate}, '42501', 'ordinary role: current_setting(\'idgen.coordinator\') denied');
	$r = try_sql($node,
		q{SELECT count(*) FROM pg_settings WHERE name = 'idgen.coordinator'},
		user => 'bob');
	is($r->{stdout}, '0', 'ordinary role: idgen.coordinator hidden in pg_settings');
	is( $node->safe_psql('postgres',
			q{SELECT count(*) FROM pg_settings WHERE name = 'idgen.coordinator'}),
		'1', 'superuser: idgen.coordinator in pg_settings');
	$r = try_sql($node, 'SHOW ALL', user => 'bob');
	unlike($r->{stdout}, qr/idgen\.coordinator/, 'ordinary role: SHOW ALL omits idgen.coordinator');
	$r = try_sql($node, 'SELECT * FROM idgen.status', user => 'bob');
	is($r->{ret}, 0, 'ordinary role: idgen.status readable');
}
# The password, on the node that was given one.
$leased->start;
ok(wait_state($leased, 'held'), 'leased node back');
$leased->safe_psql('postgres', 'CREATE ROLE bob LOGIN');
{
	my $seen = '';
	for my $sql (
		'SHOW ALL',
		'SELECT * FROM pg_settings',
		'SELECT * FROM idgen.status',
		'SELECT * FROM pg_stat_activity',
		q{SELECT current_setting('idgen.coordinator', true)})
	{
		my $r = try_sql($leased, $sql, user => 'bob');
		$seen .= $r->{stdout} . $r->{stderr};
	}
	unlike($seen, qr/\Q$secret\E/, 'ordinary role finds the coordinator password nowhere');
	like($leased->safe_psql('postgres', 'SHOW idgen.coordinator'),
		qr/\Q$secret\E/, '(the superuser sees it)');
}

$_->stop for ($leased, $static_ok);
$coord->stop;

done_testing();
