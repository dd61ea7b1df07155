# This version of the library against a coordinator whose idgen catalog is
# still 1.0, and the coordinator's upgrade.
#
#  - A node leases from a coordinator created with CREATE EXTENSION idgen
#    VERSION '1.0' (its role has what 1.0's README said: EXECUTE on the
#    lease functions and DML on the lease tables): it holds a lease and
#    issues, and logs a WARNING naming the fix.
#  - ALTER EXTENSION idgen UPDATE on the coordinator while the node holds
#    its lease: the node keeps renewing the same holding; its role can call
#    the new lease_acquire; with the table privileges revoked, a restarted
#    node leases its own id again through the 1.1 functions (above the
#    horizon its 1.0 holding had at the upgrade).
#  - The upgraded catalog's lease objects equal a fresh 1.1 install's.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use IdgenTest;

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
CREATE EXTENSION idgen VERSION '1.0';
CREATE ROLE node_a LOGIN;
GRANT EXECUTE ON FUNCTION idgen.lease_acquire, idgen.lease_renew, idgen.lease_release TO node_a;
GRANT SELECT, INSERT, UPDATE ON idgen.lease_layout, idgen.leases, idgen.lease_history TO node_a;
});

my $node = PostgreSQL::Test::Cluster->new('node');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'idgen'
idgen.lease_ttl = $TTL
idgen.worker_bits = 2
idgen.sequence_bits = 20
idgen.coordinator = 'host=${\$coord->host} port=${\$coord->port} dbname=postgres user=node_a'
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION idgen');
ok(wait_state($node, 'held'), '1.0 coordinator: the node holds a lease');
my $w = status_of($node, 'worker_id');
my $g = status_of($node, 'lease_generation');
my ($ids) = issue_decoded($node, 10);
is(scalar(@$ids), 10, '1.0 coordinator: the node issues');
like(slurp_file($node->logfile), qr/coordinator's idgen extension is version 1\.0/,
	'1.0 coordinator: the node warns, naming the version');

$coord->safe_psql('postgres', 'ALTER EXTENSION idgen UPDATE');
is($coord->safe_psql('postgres', q{SELECT extversion FROM pg_extension WHERE extname = 'idgen'}),
	'1.1', 'coordinator updated to 1.1');
my $t_update = $coord->safe_psql('postgres', 'SELECT now()');
my ($renewed) = poll_until($coord,
	"SELECT renewed_at > '$t_update' FROM idgen.leases WHERE worker_id = $w AND generation = $g",
	't', 3 * $TTL);
ok($renewed, 'updated coordinator: the node renews the same holding');
ok(wait_state($node, 'held'), 'updated coordinator: the node holds its lease');
is( $coord->safe_psql(
		'postgres',
		q{SELECT has_function_privilege('node_a', 'idgen.lease_acquire(text,integer,integer,integer,integer,integer,bigint,integer,integer,integer,integer,bigint)', 'EXECUTE')}
	),
	't',
	'the node role can call the new lease_acquire');

$coord->safe_psql('postgres',
	'REVOKE ALL ON idgen.lease_layout, idgen.leases, idgen.lease_history FROM node_a');
$node->restart;
ok(wait_state($node, 'held', 3 * $TTL), 'restarted node, table privileges revoked: holds a lease');
is(status_of($node, 'worker_id'), $w, 'it took its own worker id back');
# A holding taken under 1.0 records no start floor: the upgrade assumes
# the highest one (its horizon then), so this restart may wait for it.
my ($issues) = poll_until($node, 'SELECT idgen.snowflake_next() > 0', 't', 2 * $TTL);
ok($issues, 'it issues again');
my ($after) = issue_decoded($node, 10);
cmp_ok($after->[0], '>', $ids->[-1], 'its IDs are above the earlier ones');

# The lease objects of the upgraded catalog and of a fresh 1.1 install.
$coord->safe_psql('postgres', 'CREATE DATABASE fresh');
$coord->safe_psql('fresh', 'CREATE EXTENSION idgen');
my $shape = q{
SELECT string_agg(x, E'\n' ORDER BY x COLLATE "C") FROM (
  SELECT format('%s %s %s %s %s %s %s', p.oid::regprocedure, p.prosecdef, p.provolatile,
                p.proparallel, p.proisstrict, p.proconfig, md5(p.prosrc)) AS x
    FROM pg_proc p
   WHERE p.pronamespace = 'idgen'::regnamespace AND p.proname LIKE '%lease%'
  UNION ALL
  SELECT format('%s.%s %s %s %s', c.relname, a.attnum || ':' || a.attname,
                format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(d.adbin, d.adrelid))
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
   WHERE c.relnamespace = 'idgen'::regnamespace AND c.relname IN ('leases', 'lease_history', 'lease_layout')
     AND a.attnum > 0 AND NOT a.attisdropped
  UNION ALL
  SELECT format('comment %s: %s', p.oid::regprocedure, obj_description(p.oid, 'pg_proc'))
    FROM pg_proc p
   WHERE p.pronamespace = 'idgen'::regnamespace AND p.proname LIKE '%lease%'
  UNION ALL
  SELECT format('public execute %s: %s', p.oid::regprocedure,
                has_function_privilege('public', p.oid, 'EXECUTE'))
    FROM pg_proc p
   WHERE p.pronamespace = 'idgen'::regnamespace AND p.proname LIKE '%lease%'
) s};
is($coord->safe_psql('postgres', $shape), $coord->safe_psql('fresh', $shape),
	'upgraded lease objects equal a fresh 1.1 install');

done_testing();
