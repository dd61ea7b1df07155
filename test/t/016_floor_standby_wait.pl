# Raising the Snowflake time floor with a synchronous standby that is gone.
#
# The raise waits for the synchronous standbys to confirm the floor's WAL
# record, holding the floor lock.  That wait is bounded by
# idgen.sync_standby_timeout: the caller gets IG009 instead of hanging
# (it used to wait for as long as the standby was down).  Callers that
# need the same raise sleep on a condition variable meanwhile (wait event
# type Extension) instead of polling, for at most the same bound.
# With the standby back, IDs continue.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use IdgenTest;

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', q{
shared_preload_libraries = 'idgen'
idgen.worker_id = 1
idgen.sync_standby_timeout = '8s'
});
$primary->start;
$primary->safe_psql('postgres', 'CREATE EXTENSION idgen');
$primary->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'b', has_streaming => 1);
$standby->start;

$primary->safe_psql('postgres',
	"ALTER SYSTEM SET synchronous_standby_names = 'standby'; SELECT pg_reload_conf()");
ok( $primary->poll_query_until(
		'postgres',
		"SELECT sync_state = 'sync' FROM pg_stat_replication WHERE application_name = 'standby'"),
	'the standby is synchronous');

my $ids = $primary->safe_psql('postgres',
	'SELECT count(DISTINCT idgen.snowflake_next()) FROM generate_series(1, 100)');
is($ids, '100', 'IDs are issued with the synchronous standby up');

$standby->stop;

# The next ID needs a raise of the floor that must be waited for.
my ($past) = poll_until($primary,
	'SELECT clock_timestamp() > time_floor FROM idgen.status', 't', 30);
ok($past, 'the clock is past the durable floor');

my %s;
for my $name (qw(a b))
{
	$s{$name} = $primary->background_psql('postgres', on_error_stop => 0);
	$s{$name}->query_safe('\set VERBOSITY verbose');
}
my $apid = $s{a}->query_safe('SELECT pg_backend_pid()');
my $bpid = $s{b}->query_safe('SELECT pg_backend_pid()');

$s{a}->query_until(qr/calling/, "\\echo calling\nSELECT idgen.snowflake_next();\n");
ok( $primary->poll_query_until(
		'postgres',
		"SELECT wait_event_type || '/' || wait_event FROM pg_stat_activity WHERE pid = $apid",
		'IPC/SyncRep'),
	'caller a raises the floor and waits for the standby (IPC/SyncRep)');

$s{b}->query_until(qr/calling/, "\\echo calling\nSELECT idgen.snowflake_next();\n");
ok( $primary->poll_query_until(
		'postgres',
		"SELECT wait_event_type || '/' || wait_event FROM pg_stat_activity WHERE pid = $bpid",
		'Extension/Extension'),
	'caller b sleeps on the condition variable (Extension), not polling');

for my $name (qw(a b))
{
	my ($out) = $s{$name}->query("SELECT 'done'");
	my $err = $s{$name}->{stderr};
	like($err,
		qr/ERROR:\s+IG009: (synchronous standbys did not confirm the new Snowflake time floor|the Snowflake time floor was not raised) within 8000 ms/,
		"caller $name: a clear error (IG009) within the bound instead of a hang");
	unlike($out, qr/^\d+$/m, "caller $name: no ID was handed out");
	$s{$name}->quit;
}

$standby->start;
ok( $primary->poll_query_until(
		'postgres',
		"SELECT sync_state = 'sync' FROM pg_stat_replication WHERE application_name = 'standby'"),
	'the standby is back');
$ids = $primary->safe_psql('postgres',
	'SELECT count(DISTINCT idgen.snowflake_next()) FROM generate_series(1, 100)');
is($ids, '100', 'IDs are issued again');

$standby->stop;
$primary->stop;
done_testing();
