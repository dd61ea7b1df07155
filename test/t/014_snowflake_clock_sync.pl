# idgen.require_clock_sync: refuse Snowflake IDs while the kernel reports the
# clock unsynchronised (or inside a leap second).
#
# The kernel's discipline state cannot be changed from a test, so the test
# reads it (idgen.status.clock_synchronised, from adjtimex) and checks that
# snowflake_next() does what that state requires: with the setting off, IDs
# are issued either way; with it on, an unsynchronised clock gives SQLSTATE
# IG003 and a counted refusal, a synchronised one gives IDs.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use IdgenTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('clock_sync');
$node->init;
$node->append_conf('postgresql.conf', qq(
shared_preload_libraries = 'idgen'
idgen.worker_id = 2
));
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION idgen');

my ($synced, $state, $est) = split /\|/, $node->safe_psql('postgres',
	'SELECT clock_synchronised, clock_state, clock_est_error_us >= 0 FROM idgen.status');
like($synced, qr/^[tf]$/, "the kernel's clock discipline is shown (synchronised: $synced, state: $state)");
is($est, 't', 'the estimated error is shown');

is($node->safe_psql('postgres', 'SHOW idgen.require_clock_sync'), 'off', 'off by default');
like($node->safe_psql('postgres', 'SELECT idgen.snowflake_next()'), qr/^\d+$/,
	'with the setting off, IDs are issued whatever the clock state');

$node->safe_psql('postgres',
	'ALTER SYSTEM SET idgen.require_clock_sync = on; SELECT pg_reload_conf()');
poll_until($node, 'SELECT require_clock_sync FROM idgen.status', 't', 10);
my $refusals = snowflake_counter($node, 'idgen_refusals_total', 'clock_unsynchronised');
my $r = try_sql($node, 'SELECT idgen.snowflake_next()');
if ($synced eq 'f')
{
	is($r->{sqlstate}, 'IG003', 'unsynchronised clock and require_clock_sync: refused with IG003');
	like($r->{stderr}, qr/not synchronised/, 'the message says why');
	is(snowflake_counter($node, 'idgen_refusals_total', 'clock_unsynchronised'),
		$refusals + 1, 'the refusal is counted');
}
else
{
	is($r->{ret}, 0, 'synchronised clock and require_clock_sync: IDs are issued');
	like($r->{stdout}, qr/^\d+$/, 'an ID came back');
	is(snowflake_counter($node, 'idgen_refusals_total', 'clock_unsynchronised'),
		$refusals, 'nothing was refused');
}
like($node->safe_psql('postgres', 'SELECT idgen.uuidv7()'), qr/^[0-9a-f-]{36}$/,
	'UUIDv7 does not depend on the clock discipline');

$node->safe_psql('postgres',
	'ALTER SYSTEM RESET idgen.require_clock_sync; SELECT pg_reload_conf()');
poll_until($node, 'SELECT require_clock_sync FROM idgen.status', 'f', 10);
like($node->safe_psql('postgres', 'SELECT idgen.snowflake_next()'), qr/^\d+$/,
	'with the setting off again, IDs are issued');

$node->stop;
done_testing();
