# The uniqueness probe never lends the probe worker's superuser rights to
# objects that ordinary roles control.
#
# A preloaded node runs the probe worker every second in database postgres.
# Role mallory is an ordinary LOGIN role that owns tables of her own.  A
# superuser-owned canary table is probed too: once its run count has gone
# up by two after a step, at least one whole scheduled run began after it.
#
#  - Route (a): mallory is given DML on idgen.probes (what the 1.0 README
#    told DBAs to grant for delegating probes) and inserts a probe on her
#    own view whose column calls a function that makes her SUPERUSER.  The
#    next scheduled runs must leave her an ordinary role; the probe's
#    result says why it was refused.
#  - Route (b): mallory registers a probe on her own bigint column through
#    probe_register(), then changes the column to a composite type of hers
#    with an implicit cast back to bigint whose function makes her
#    SUPERUSER.  Same expectation.
#  - A probe on a table whose owner forces a row-level security policy:
#    the policy's function runs as the owner (mallory), inside a
#    security-restricted operation (a temporary table cannot be created),
#    with search_path = pg_catalog, pg_temp, and the probe still counts the
#    rows.
#  - Delegation is by EXECUTE on the SECURITY DEFINER probe_register() and
#    probe_unregister() only: with no privilege on idgen.probes mallory
#    registers and unregisters probes on her tables, cannot on a table she
#    does not own, and cannot write idgen.probes directly.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use IdgenTest;

my $node = PostgreSQL::Test::Cluster->new('probe_privileges');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'idgen'
idgen.worker_id = 1
idgen.database = 'postgres'
idgen.probe_interval = 1
});
$node->start;

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION idgen;
CREATE ROLE mallory LOGIN;
GRANT CREATE ON SCHEMA public TO mallory;
GRANT EXECUTE ON FUNCTION idgen.probe_register(regclass, name, interval),
    idgen.probe_unregister(regclass, name) TO mallory;
CREATE TABLE canary (id bigint DEFAULT idgen.snowflake_next());
CREATE INDEX ON canary (id);
INSERT INTO canary SELECT FROM generate_series(1, 10);
SELECT idgen.probe_register('canary', 'id');
});

sub is_superuser
{
	return $node->safe_psql('postgres',
		"SELECT rolsuper FROM pg_roles WHERE rolname = 'mallory'");
}

# Wait until at least one whole scheduled run began after now.
sub wait_for_scheduled_runs
{
	my ($what) = @_;
	my $runs0 = $node->safe_psql('postgres',
		"SELECT runs FROM idgen.probe_status WHERE tbl = 'canary'::regclass");
	my ($ok, $out) = poll_until(
		$node,
		"SELECT runs >= $runs0 + 2 FROM idgen.probe_status WHERE tbl = 'canary'::regclass",
		't', 60);
	ok($ok, "two scheduled probe runs went by after $what") or diag($out);
}

###########################################################################
# Route (a): DML on idgen.probes, a probe on a view
###########################################################################

$node->safe_psql('postgres',
	'GRANT SELECT, INSERT, UPDATE, DELETE ON idgen.probes TO mallory');
my $r = try_sql(
	$node, q{
CREATE FUNCTION public.pwn_view() RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    EXECUTE 'ALTER ROLE mallory SUPERUSER';
    RETURN 1;
END
$$;
-- the scan selects ctid too: the view offers a column of that name
CREATE VIEW public.mallory_view AS SELECT '(0,1)'::tid AS ctid, public.pwn_view() AS id;
INSERT INTO idgen.probes (tbl, col, "window", kind, indexed)
VALUES ('public.mallory_view', 'id', '1 hour', 'snowflake', false);
},
	user => 'mallory');
is($r->{ret}, 0, 'route (a): mallory planted a probe on her view')
  or diag($r->{stderr});
wait_for_scheduled_runs('the probe on the view was planted');
is(is_superuser(), 'f', 'route (a): the scheduled run did not make mallory a superuser');
like(
	$node->safe_psql('postgres',
		"SELECT error FROM idgen.probe_status WHERE tbl = 'mallory_view'::regclass"),
	qr/is not a table/,
	'route (a): the probe on the view is refused and its result says why');
$node->safe_psql('postgres',
	"DELETE FROM idgen.probes WHERE tbl = 'mallory_view'::regclass;"
	  . ' REVOKE ALL ON idgen.probes FROM mallory');

###########################################################################
# Route (b): a registered column changes type; an implicit cast
###########################################################################

$r = try_sql(
	$node, q{
CREATE TABLE public.mallory_t (id bigint DEFAULT idgen.snowflake_next());
CREATE INDEX ON public.mallory_t (id);
INSERT INTO public.mallory_t SELECT FROM generate_series(1, 3);
SELECT idgen.probe_register('public.mallory_t', 'id');
},
	user => 'mallory');
is($r->{ret}, 0, 'route (b): mallory registered a probe on her own table')
  or diag($r->{stderr});
wait_for_scheduled_runs('the probe on mallory_t was registered');
is( $node->safe_psql('postgres',
		"SELECT runs > 0 AND error IS NULL FROM idgen.probe_status WHERE tbl = 'mallory_t'::regclass"),
	't',
	'route (b): the probe on her table runs while the column is bigint');

$r = try_sql(
	$node, q{
CREATE TYPE public.mallory_id AS (v bigint);
CREATE FUNCTION public.pwn_cast(public.mallory_id) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    EXECUTE 'ALTER ROLE mallory SUPERUSER';
    RETURN ($1).v;
END
$$;
CREATE CAST (public.mallory_id AS bigint) WITH FUNCTION public.pwn_cast(public.mallory_id) AS IMPLICIT;
ALTER TABLE public.mallory_t ALTER COLUMN id DROP DEFAULT;
ALTER TABLE public.mallory_t ALTER COLUMN id TYPE public.mallory_id USING ROW(id)::public.mallory_id;
},
	user => 'mallory');
is($r->{ret}, 0, 'route (b): mallory changed the column type and added an implicit cast')
  or diag($r->{stderr});
wait_for_scheduled_runs('the column type changed');
is(is_superuser(), 'f', 'route (b): the scheduled run did not make mallory a superuser');
like(
	$node->safe_psql('postgres',
		"SELECT error FROM idgen.probe_status WHERE tbl = 'mallory_t'::regclass"),
	qr/has type public\.mallory_id/,
	'route (b): the probe is refused and its result names the type');

###########################################################################
# The scan runs as the table's owner, in a security-restricted operation
###########################################################################

$r = try_sql(
	$node, q{
CREATE TABLE public.spy_log (who name, sess name, restricted boolean, path text);
CREATE FUNCTION public.spy() RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    r boolean;
BEGIN
    BEGIN
        CREATE TEMP TABLE spy_tmp (i int);
        r := false;
    EXCEPTION WHEN insufficient_privilege THEN
        r := true;
    END;
    INSERT INTO public.spy_log VALUES (current_user, session_user, r, current_setting('search_path'));
    RETURN true;
END
$$;
CREATE TABLE public.spied (id bigint DEFAULT idgen.snowflake_next());
CREATE INDEX ON public.spied (id);
INSERT INTO public.spied SELECT FROM generate_series(1, 4);
ALTER TABLE public.spied ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.spied FORCE ROW LEVEL SECURITY;
CREATE POLICY spy ON public.spied USING (public.spy());
SELECT idgen.probe_register('public.spied', 'id');
},
	user => 'mallory');
is($r->{ret}, 0, 'mallory registered a probe on a table with a forced policy')
  or diag($r->{stderr});
wait_for_scheduled_runs('the probe on spied was registered');
is( $node->safe_psql(
		'postgres',
		'SELECT DISTINCT who, restricted, path FROM public.spy_log'),
	'mallory|t|pg_catalog, pg_temp',
	'the policy ran as the owner, in a security-restricted operation, with a safe search_path'
);
is( $node->safe_psql('postgres',
		"SELECT ids_checked, duplicates, error IS NULL FROM idgen.probe_status WHERE tbl = 'spied'::regclass"
	),
	'4|0|t',
	'the probe on the table with a policy counted its rows');

###########################################################################
# Delegation: EXECUTE on probe_register/probe_unregister only
###########################################################################

$node->safe_psql('postgres',
	'CREATE TABLE public.not_mallorys (id bigint)');
$r = try_sql($node, "SELECT idgen.probe_register('public.not_mallorys', 'id')",
	user => 'mallory');
is($r->{sqlstate}, '42501', 'probe_register on a table of another role: 42501');
$r = try_sql($node,
	"SELECT idgen.probe_unregister('canary', 'id')", user => 'mallory');
is($r->{sqlstate}, '42501', 'probe_unregister on a table of another role: 42501');
$r = try_sql(
	$node,
	"INSERT INTO idgen.probes (tbl, col, \"window\", kind, indexed) VALUES ('public.not_mallorys', 'id', '1 hour', 'snowflake', false)",
	user => 'mallory');
is($r->{sqlstate}, '42501', 'no direct INSERT into idgen.probes: 42501');
$r = try_sql(
	$node, q{
SELECT idgen.probe_unregister('public.spied', 'id');
SELECT idgen.probe_register('public.spied', 'id', '2 hours');
SELECT "window" FROM idgen.probe_status WHERE tbl = 'public.spied'::regclass;
},
	user => 'mallory');
is($r->{ret}, 0, 'mallory unregisters and registers probes on her own table')
  or diag($r->{stderr});
like($r->{stdout}, qr/02:00:00/, 'the new window is recorded');

is(is_superuser(), 'f', 'mallory is still not a superuser at the end');

$node->stop;
done_testing();
