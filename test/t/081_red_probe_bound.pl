# Can one table owner stop everyone's uniqueness probes?
#
# The probe worker runs every registered probe in one transaction, each
# as its table's owner, with a lock timeout but no bound on a scan.  An
# owner whose probe is registered (it was granted EXECUTE on
# probe_register, or the DBA registered it) forces row-level security on
# its table with a policy that sleeps: the worker's scan of that table
# never ends, so no probe of any other table ever completes a run again,
# and the worker's transaction stays open (holding back the xmin horizon
# of the whole cluster, and its locks on the tables it has scanned).
#
# Expected: each probe's scan is bounded by idgen.probe_timeout (a scan
# that exceeds the bound fails, is recorded in its probe's error, and the
# others go on), and the worker's transaction ends with each run.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use IdgenTest;

my $node = PostgreSQL::Test::Cluster->new('red_probe_bound');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'idgen'
idgen.worker_id = 1
idgen.database = 'postgres'
idgen.probe_interval = 1
idgen.probe_timeout = '3s'
});
$node->start;
$node->safe_psql(
	'postgres', q{
CREATE EXTENSION idgen;
CREATE TABLE good (id bigint DEFAULT idgen.snowflake_next());
INSERT INTO good DEFAULT VALUES;
SELECT idgen.probe_register('good', 'id');
CREATE ROLE mallory;
GRANT EXECUTE ON FUNCTION idgen.probe_register(regclass, name, interval) TO mallory;
CREATE SCHEMA m AUTHORIZATION mallory;
SET ROLE mallory;
CREATE FUNCTION m.slow() RETURNS boolean LANGUAGE sql AS 'SELECT pg_sleep(3600) IS NOT NULL';
CREATE TABLE m.t (id bigint DEFAULT idgen.snowflake_next());
INSERT INTO m.t DEFAULT VALUES;
ALTER TABLE m.t ENABLE ROW LEVEL SECURITY;
ALTER TABLE m.t FORCE ROW LEVEL SECURITY;
CREATE POLICY p ON m.t USING (m.slow());
SELECT idgen.probe_register('m.t', 'id');
});

# the worker reaches mallory's table and sleeps there
my ($ok, $out) = poll_until($node,
	"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'idgen probe worker' AND wait_event = 'PgSleep'",
	'1', 60);
ok($ok, "the probe worker runs mallory's policy");

my $runs_before = $node->safe_psql('postgres',
	"SELECT runs FROM idgen.probe_status WHERE tbl = 'good'::regclass");
($ok, $out) = poll_until($node,
	"SELECT runs > $runs_before FROM idgen.probe_status WHERE tbl = 'good'::regclass",
	't', 60);
ok($ok, "the probe of another table still completes runs ($out)");

($ok, $out) = poll_until($node,
	"SELECT error FROM idgen.probe_status WHERE tbl = 'm.t'::regclass",
	"uniqueness probe of m.t.id canceled: its scan exceeded idgen.probe_timeout (3000 ms)", 60);
ok($ok, "the slow probe's error names the timeout ($out)");
is( $node->safe_psql('postgres',
		"SELECT runs, error_at IS NOT NULL FROM idgen.probe_status WHERE tbl = 'm.t'::regclass"),
	'0|t',
	'the slow probe has no completed run, only its error');
is( $node->safe_psql('postgres',
		"SELECT ids_checked, error IS NULL FROM idgen.probe_status WHERE tbl = 'good'::regclass"),
	'1|t',
	"the other probe's result is recorded");

# between runs the worker holds no transaction (no xmin horizon held back)
($ok, $out) = poll_until($node,
	"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'idgen probe worker' "
	  . "AND xact_start IS NULL AND backend_xmin IS NULL",
	'1', 60);
ok($ok, "the probe worker's transaction ends after each run");

$node->stop('immediate');
done_testing();
