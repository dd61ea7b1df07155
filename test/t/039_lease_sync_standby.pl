# A lease update that the coordinator's synchronous standbys did not
# confirm is not a lease.
#
# When the wait of a commit for synchronous standbys is cancelled,
# PostgreSQL keeps the commit (it is already in the local WAL), emits only
# a WARNING ("canceling wait for synchronous replication ...") and reports
# success.  A node that trusted such a renewal would issue under a deadline
# only the coordinator's old primary knows: after a failover to the
# standby another node could take the id while this one still issues.
#
# Two setups, each with a coordinator whose synchronous standby is then
# stopped, so that every commit there waits:
#
#	- local: a self-coordinating server; the lease worker's own statement
#	  timeout cancels the wait of its commit;
#	- remote: a node leasing from a coordinator over TCP loopback; the wait
#	  of the commit of its session there is cancelled by pg_cancel_backend()
#	  (an operator, or a tool that cancels long-running queries).  The
#	  coordinator's statement_timeout does not cover a commit:
#	  PostgreSQL disarms it before committing, so without a cancel the call
#	  just times out on the node.
#
# In both, the node must not take the renewal: its lease runs out at the
# deadline of its last confirmed renewal (state "expired", lease_expires_at
# not beyond the standby's stop plus the TTL) and lease_error says that the
# synchronous standbys did not confirm.  Once the standby is back, the node
# renews again and holds its id.  A self-coordinating server shuts down
# (fast) while its synchronous standby is down.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use IdgenTest;
use IPC::Run;

my $TTL = 6;

# A streaming standby of $primary named $name, made synchronous, then
# checked to be attached as such.
sub add_sync_standby
{
	my ($primary, $name) = @_;
	$primary->backup("${name}_backup");
	my $standby = PostgreSQL::Test::Cluster->new($name);
	$standby->init_from_backup($primary, "${name}_backup", has_streaming => 1);
	$standby->start;
	$primary->safe_psql('postgres',
		"ALTER SYSTEM SET synchronous_standby_names = '$name'; SELECT pg_reload_conf()");
	my ($ok, $out) = poll_until($primary,
		"SELECT sync_state FROM pg_stat_replication WHERE application_name = '$name'",
		'sync', 60);
	ok($ok, "$name is a synchronous standby of " . $primary->name . " (last: $out)");
	return $standby;
}

# The server's now() in epoch seconds.
sub server_now
{
	my ($node) = @_;
	return $node->safe_psql('postgres', 'SELECT extract(epoch FROM now())');
}

# With $primary's synchronous standby stopped, $node's lease must run out
# at its last confirmed deadline, saying why.  $t_stop is the
# coordinator's time just after the stop.
sub check_unconfirmed
{
	my ($what, $node, $coordinator, $t_stop) = @_;

	ok(wait_state($node, 'expired', 3 * $TTL + 10),
		"$what: the lease expires while the synchronous standby is down");
	my $expires = $node->safe_psql('postgres',
		'SELECT extract(epoch FROM lease_expires_at) FROM idgen.status');
	cmp_ok($expires, '<=', $t_stop + $TTL,
		"$what: no renewal after the standby stopped was taken (expiry $expires, stop $t_stop)");
	# polled: the call that fails may still be under way
	my ($said, $error) = poll_until($node,
		"SELECT coalesce(lease_error, '') ~ 'synchronous standbys did not confirm' FROM idgen.status",
		't', 3 * $TTL + 10);
	ok($said, "$what: lease_error says the synchronous standbys did not confirm")
	  or diag('lease_error: ' . status_of($node, 'lease_error'));
	my $r = try_sql($node, 'SELECT idgen.snowflake_next()');
	isnt($r->{ret}, 0, "$what: no Snowflake ID while the lease is not confirmed");
	like(slurp_file($coordinator->logfile),
		qr/canceling wait for synchronous replication/,
		"$what: the coordinator cancelled the wait of a lease commit");
	return;
}

# ---------- local: a self-coordinating server ----------

my $self = PostgreSQL::Test::Cluster->new('self');
$self->init(allows_streaming => 1);
$self->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'idgen'
idgen.lease_ttl = $TTL
});
$self->start;
$self->safe_psql('postgres', 'CREATE EXTENSION idgen');
ok(wait_state($self, 'held'), 'local: the self-coordinating server holds a lease');
my $self_sb = add_sync_standby($self, 'self_standby');
my $wid = status_of($self, 'worker_id');

$self_sb->stop('fast');
check_unconfirmed('local', $self, $self, server_now($self));

$self_sb->start;
ok(wait_state($self, 'held', 3 * $TTL + 10), 'local: renews again once the standby is back');
is(status_of($self, 'worker_id'), $wid, "local: still worker id $wid");
my ($ret) = $self->psql('postgres', 'SELECT idgen.snowflake_next()');
is($ret, 0, 'local: issues Snowflake IDs again');

# A fast shutdown while the standby is down: the lease worker's release at
# exit must not wait for it (nothing can cancel a wait during exit).
$self_sb->stop('fast');
ok($self->stop('fast', fail_ok => 1),
	'local: a fast shutdown completes while the synchronous standby is down');

# ---------- remote: a node leasing over TCP loopback ----------

my $coord = PostgreSQL::Test::Cluster->new('coordinator');
$coord->init(allows_streaming => 1);
$coord->append_conf('postgresql.conf', qq{
listen_addresses = '127.0.0.1'
});
$coord->start;
$coord->safe_psql('postgres', 'CREATE EXTENSION idgen');
my $coord_sb = add_sync_standby($coord, 'coord_standby');

my $node = PostgreSQL::Test::Cluster->new('node');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'idgen'
idgen.lease_ttl = $TTL
idgen.coordinator = 'host=127.0.0.1 port=${\$coord->port} dbname=postgres'
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION idgen');
ok(wait_state($node, 'held'), 'remote: the node holds a lease');
$wid = status_of($node, 'worker_id');

$coord_sb->stop('fast');
my $t_stop = server_now($coord);

# The canceller: every 50 ms, cancel lease worker sessions waiting for the
# synchronous standby.  Bounded (about two minutes) and killed below.
my ($c_out, $c_err) = ('', '');
my $canceller = IPC::Run::start(
	[
		'psql', '-XAtq', '-d', $coord->connstr('postgres'), '-c', q{
DO $$
BEGIN
    FOR i IN 1..2400 LOOP
        PERFORM pg_stat_clear_snapshot();
        PERFORM pg_cancel_backend(a.pid) FROM pg_stat_activity a
         WHERE a.application_name = 'idgen lease worker' AND a.wait_event = 'SyncRep';
        PERFORM pg_sleep(0.05);
    END LOOP;
END $$}
	],
	'>', \$c_out, '2>', \$c_err);

check_unconfirmed('remote', $node, $coord, $t_stop);

$canceller->kill_kill;
$coord_sb->start;
ok(wait_state($node, 'held', 3 * $TTL + 10), 'remote: renews again once the standby is back');
is(status_of($node, 'worker_id'), $wid, "remote: still worker id $wid");
($ret) = $node->psql('postgres', 'SELECT idgen.snowflake_next()');
is($ret, 0, 'remote: issues Snowflake IDs again');
is($coord->safe_psql('postgres', 'SELECT count(*) FROM idgen.audit_leases()'), '0',
	'audit_leases() finds nothing on the coordinator');

done_testing();
