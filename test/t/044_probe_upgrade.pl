# The new shared library with a 1.0 catalog, and the upgrade to 1.1.
#
# Databases are upgraded after the new idgen.so is installed, so for a
# while the probe worker meets a 1.0 catalog whose probe_run() (frozen in
# idgen--1.0.sql) runs every probe as the worker's superuser, and whose
# README told DBAs to grant DML on idgen.probes for delegation.
#
#  - On a 1.0 catalog the probe worker does not run the probes (it logs
#    once why): a role with DML on idgen.probes that plants a probe on its
#    view whose column makes it SUPERUSER stays an ordinary role.
#  - ALTER EXTENSION idgen UPDATE revokes that DML, records each probe's
#    table owner and bounds the windows; the worker then runs the probes,
#    each as its table's owner: the planted probe is refused with the
#    reason in probe_status.error, the honest one runs.
#  - The upgraded catalog equals a fresh 1.1 installation's: functions
#    (source, settings, labels, privileges, comments), tables and views
#    (columns, constraints, definitions, privileges, comments).

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use IdgenTest;

my $node = PostgreSQL::Test::Cluster->new('probe_upgrade');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'idgen'
idgen.worker_id = 1
idgen.database = 'postgres'
idgen.probe_interval = 1
});
$node->start;

my $log_offset = -s $node->logfile;
$node->safe_psql(
	'postgres', q{
CREATE EXTENSION idgen VERSION '1.0';
CREATE ROLE mallory LOGIN;
GRANT CREATE ON SCHEMA public TO mallory;
GRANT SELECT, INSERT, UPDATE, DELETE ON idgen.probes TO mallory;
CREATE TABLE canary (id bigint DEFAULT idgen.snowflake_next());
CREATE INDEX ON canary (id);
INSERT INTO canary SELECT FROM generate_series(1, 10);
SELECT idgen.probe_register('canary', 'id', '20 years');
});

my $r = try_sql(
	$node, q{
CREATE FUNCTION public.pwn() RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    EXECUTE 'ALTER ROLE mallory SUPERUSER';
    RETURN 1;
END
$$;
CREATE VIEW public.mallory_view AS SELECT '(0,1)'::tid AS ctid, public.pwn() AS id;
INSERT INTO idgen.probes (tbl, col, "window", kind, indexed)
VALUES ('public.mallory_view', 'id', '1 hour', 'snowflake', false);
},
	user => 'mallory');
is($r->{ret}, 0, 'on 1.0, mallory planted a probe on her view') or diag($r->{stderr});

ok( $node->wait_for_log(
		qr/idgen probe worker: not running the uniqueness probes of database "postgres"/,
		$log_offset),
	'the probe worker says it does not run a 1.0 catalog\'s probes');
# Give the worker a few more intervals in which it could run them.
my ($ran) = poll_until($node,
	"SELECT runs > 0 FROM idgen.probe_status WHERE tbl = 'canary'::regclass",
	't', 4);
ok(!$ran, 'no probe ran on the 1.0 catalog');
is( $node->safe_psql('postgres',
		"SELECT rolsuper FROM pg_roles WHERE rolname = 'mallory'"),
	'f',
	'mallory is not a superuser');

# The upgrade.
$node->safe_psql('postgres', 'ALTER EXTENSION idgen UPDATE');
is($node->safe_psql('postgres',
		"SELECT extversion FROM pg_extension WHERE extname = 'idgen'"),
	'1.1', 'upgraded to 1.1');
is( $node->safe_psql(
		'postgres',
		"SELECT has_table_privilege('mallory', 'idgen.probes', 'INSERT')
             OR has_table_privilege('mallory', 'idgen.probes', 'UPDATE')
             OR has_table_privilege('mallory', 'idgen.probes', 'DELETE')"),
	'f',
	'the upgrade revoked the DML on idgen.probes');
is( $node->safe_psql(
		'postgres',
		"SELECT string_agg(tbl::text || ':' || owner::text || ':' || \"window\", ',' ORDER BY tbl::text)
           FROM idgen.probe_status"),
	'canary:' . $node->safe_psql('postgres', 'SELECT current_user')
	  . ':10 years,mallory_view:mallory:01:00:00',
	'the upgrade recorded each table\'s owner and bounded the windows');

my ($ok, $out) = poll_until(
	$node, q{
SELECT string_agg(tbl::text || ':' || runs || ':' || coalesce(error, '-'), ',' ORDER BY tbl::text)
FROM idgen.probe_status},
	'canary:1:-,mallory_view:0:"mallory_view" is not a table',
	60);
ok($ok, 'after the upgrade the worker runs the probes and refuses the view')
  or diag($out);
is( $node->safe_psql('postgres',
		"SELECT rolsuper FROM pg_roles WHERE rolname = 'mallory'"),
	'f',
	'mallory is still not a superuser');

# The upgraded catalog equals a fresh installation of 1.1 (once the test
# takes back the SELECT it granted mallory, which the upgrade leaves).
$node->safe_psql('postgres', 'REVOKE ALL ON idgen.probes FROM mallory');
$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('fresh', 'CREATE EXTENSION idgen');
my $catalog = q{
SELECT 'function ' || p.oid::regprocedure::text || ' '
       || concat_ws(' | ', md5(p.prosrc), p.probin, p.proconfig::text, p.provolatile, p.proparallel,
                    p.prosecdef, p.proisstrict, p.proretset, p.prorettype::regtype::text,
                    pg_get_function_result(p.oid), pg_get_function_arguments(p.oid),
                    p.proacl::text, obj_description(p.oid, 'pg_proc'))
  FROM pg_proc p WHERE p.pronamespace = 'idgen'::regnamespace
UNION ALL
SELECT 'relation ' || c.relname || ' '
       || concat_ws(' | ', c.relkind, c.relacl::text, obj_description(c.oid, 'pg_class'),
                    CASE WHEN c.relkind = 'v' THEN md5(pg_get_viewdef(c.oid)) END)
  FROM pg_class c WHERE c.relnamespace = 'idgen'::regnamespace
UNION ALL
SELECT 'column ' || c.relname || '.' || a.attname || ' '
       || concat_ws(' | ', a.attnum, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                    pg_get_expr(d.adbin, d.adrelid), col_description(c.oid, a.attnum))
  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
  LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
 WHERE c.relnamespace = 'idgen'::regnamespace
UNION ALL
SELECT 'constraint ' || conrelid::regclass::text || '.' || conname || ' ' || pg_get_constraintdef(oid)
  FROM pg_constraint WHERE connamespace = 'idgen'::regnamespace
UNION ALL
SELECT 'config ' || (SELECT string_agg(x::regclass::text, ',' ORDER BY x::regclass::text)
                       FROM unnest(extconfig) x)
  FROM pg_extension WHERE extname = 'idgen'
ORDER BY 1};
my $fresh = $node->safe_psql('fresh', $catalog);
my $upgraded = $node->safe_psql('postgres', $catalog);
my @f = split /\n/, $fresh;
my @u = split /\n/, $upgraded;
my %in_u = map { $_ => 1 } @u;
my %in_f = map { $_ => 1 } @f;
my @missing = grep { !$in_u{$_} } @f;
my @extra = grep { !$in_f{$_} } @u;
ok(@f > 50, 'the catalog query sees the extension\'s objects');
is(scalar(@missing) + scalar(@extra), 0,
	'ALTER EXTENSION idgen UPDATE gives the catalog of a fresh 1.1 installation')
  or diag(join("\n", (map { "only in fresh: $_" } @missing),
		(map { "only in upgraded: $_" } @extra)));

$node->stop;
done_testing();
