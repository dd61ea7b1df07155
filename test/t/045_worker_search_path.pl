# idgen's background workers run as the bootstrap superuser, so nothing a
# database owner controls may resolve in their queries.
#
# The owner of idgen.database (an ordinary role, dbo) may set its
# database's search_path, which every session there starts with, the
# workers' included, and may create a schema of its own.  dbo puts schema
# evil first on the path and plants there:
#
#  - an operator = (text, text), which the segment worker's
#    "WHERE tag = $1" would pick over pg_catalog's; its function makes
#    dbo SUPERUSER;
#  - an aggregate count(*), which the probe worker's "SELECT count(*)
#    FROM idgen.probe_run()" would pick; its state function makes dbo
#    SUPERUSER.
#
# Then a segment grant and scheduled probe runs must leave dbo an ordinary
# role: the workers run with search_path = pg_catalog (and qualify what
# they call).

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use IdgenTest;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('worker_search_path');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'idgen'
idgen.worker_id = 1
idgen.database = 'appdb'
idgen.probe_interval = 1
});
$node->start;

$node->safe_psql(
	'postgres', q{
CREATE ROLE dbo LOGIN;
CREATE DATABASE appdb OWNER dbo;
});
$node->safe_psql(
	'appdb', q{
CREATE EXTENSION idgen;
GRANT EXECUTE ON FUNCTION idgen.segment_next(text) TO dbo;
SELECT idgen.segment_create('t', 1, 10);
CREATE TABLE canary (id bigint DEFAULT idgen.snowflake_next());
INSERT INTO canary SELECT FROM generate_series(1, 3);
SELECT idgen.probe_register('canary', 'id');
});

my $r = try_sql(
	$node, q{
CREATE SCHEMA evil;
CREATE FUNCTION evil.pwn_eq(text, text) RETURNS boolean LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
    IF current_setting('is_superuser') = 'on' THEN
        EXECUTE 'ALTER ROLE dbo SUPERUSER';
    END IF;
    RETURN $1 = $2;
END
$$;
CREATE OPERATOR evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.pwn_eq);
CREATE FUNCTION evil.pwn_count(bigint) RETURNS bigint LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
    IF current_setting('is_superuser') = 'on' THEN
        EXECUTE 'ALTER ROLE dbo SUPERUSER';
    END IF;
    RETURN $1 + 1;
END
$$;
CREATE AGGREGATE evil.count(*) (SFUNC = evil.pwn_count, STYPE = bigint, INITCOND = '0');
GRANT USAGE ON SCHEMA evil TO PUBLIC;
ALTER DATABASE appdb SET search_path = evil, pg_catalog;
},
	dbname => 'appdb',
	user => 'dbo');
is($r->{ret}, 0, 'the database owner planted an operator and an aggregate on its search_path')
  or diag($r->{stderr});

# The workers pick up the database's settings when they connect: restart
# them by restarting the server.
$node->restart;
wait_for_worker($node, 'appdb');

# A segment grant by the segment worker.
$r = try_sql($node, "SELECT count(*) FROM (SELECT idgen.segment_next('t') FROM generate_series(1, 25)) s",
	dbname => 'appdb', user => 'dbo');
like($r->{stdout}, qr/25/, 'dbo drew segment numbers (the worker granted ranges)')
  or diag($r->{stderr});

# Scheduled probe runs.  (The superuser's own queries in appdb below
# compare no text: dbo's operator would run for them too.)
my $runs_sql = "SELECT runs FROM idgen.probe_status WHERE tbl = 'public.canary'::regclass";
my $runs0 = $node->safe_psql('appdb', $runs_sql);
my $runs = $runs0;
for (my $i = 0; $i < 600 && $runs < $runs0 + 2; $i++)
{
	usleep(100_000);
	$runs = $node->safe_psql('appdb', $runs_sql);
}
cmp_ok($runs, '>=', $runs0 + 2, 'two scheduled probe runs went by');

is( $node->safe_psql('postgres', "SELECT rolsuper FROM pg_roles WHERE rolname = 'dbo'"),
	'f',
	'neither worker ran the database owner\'s operator or aggregate as superuser');

$node->stop;
done_testing();
