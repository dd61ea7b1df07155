# What one node's coordinator credentials can do to other nodes' worker
# ids through the lease functions (EXECUTE on lease_acquire, lease_renew,
# lease_release and nothing else, as the README recommends).
#
#  - Poisoning a floor: node_a takes worker id 7 and releases it reporting
#    a time floor far in the future (lease_release's p_time_floor_ms; the
#    same through lease_renew's p_time_floor_ms and lease_acquire's
#    p_local_floor_ms when it takes its own id back).  The coordinator
#    records it as the id's floor, and every later holder of id 7 must
#    start above it: the id can never issue a Snowflake ID again.  Done
#    for every id, no node can ever issue again.  Expected: a floor beyond
#    what any holding could have reached (the coordinator's clock plus the
#    TTL, the margin and a clock-skew allowance) is refused.
#  - Exhausting ids: node_a leases every worker id under made-up holder
#    identities (each for the longest TTL the functions accept, an hour,
#    plus its quarantine); node_b then finds none free (IG008).  Expected:
#    a bound on the live holdings one role may have.
#  - Holding the acquisition lock: lease_acquire takes it for the rest of
#    the caller's transaction; node_a leaves its transaction open, and
#    every other node's acquisition fails after lock_timeout, for as long
#    as node_a likes.  Expected: the lock lasts for the call only.
#  - Acting as another role: the lease functions take session_user as the
#    calling role.  node_a's row-level security policy, run by the probe
#    worker's scan in a superuser's session, renews a holding taken by a
#    superuser-connected node with a far-future floor.  Expected: the
#    calling role is the current user at the call (as probe_register now
#    does, src/probe.c), or the call is refused there.
#
# Each now holds: floors beyond the coordinator's clock plus 70 minutes
# are refused (22023), a role that is not a superuser holds at most
# idgen.lease_max_per_role leases (IG010), the acquisition lock lasts for
# one call and no acquisition waits for another caller's transaction, and
# the lease functions refuse to run in a security-restricted operation.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use IdgenTest;

my $node = PostgreSQL::Test::Cluster->new('red_coordinator');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'idgen'
idgen.worker_id = 1
});
$node->start;
$node->safe_psql(
	'postgres', q{
CREATE EXTENSION idgen;
CREATE ROLE node_a LOGIN;
CREATE ROLE node_b LOGIN;
GRANT EXECUTE ON FUNCTION
    idgen.lease_acquire(text, integer, integer, integer, integer, integer, bigint,
                        integer, integer, integer, integer, bigint),
    idgen.lease_renew(integer, bigint, text, integer, bigint),
    idgen.lease_release(integer, bigint, text, bigint) TO node_a, node_b;
});

# the layout arguments every call passes
my $layout = $node->safe_psql('postgres',
	q{SELECT format('%s, %s, %s, %s, %s', timestamp_bits, worker_bits, sequence_bits,
	                (extract(epoch FROM tick) * 1000)::int,
	                (extract(epoch FROM epoch) * 1000)::bigint)
	    FROM idgen.bit_budget()});
my $worker_bits = $node->safe_psql('postgres', 'SELECT worker_bits FROM idgen.bit_budget()');

sub as_node
{
	my ($role, $sql) = @_;
	return $node->psql('postgres', "SET SESSION AUTHORIZATION $role; $sql");
}

# node_a poisons id 7
my ($rc, $out, $err) = as_node('node_a',
	"SELECT generation FROM idgen.lease_acquire('a-host', 1, $layout, 5, 0, 7, -1, 0)");
is($rc, 0, 'node_a leases worker id 7') or diag $err;
my $gen = $out;
my $poison = '9000000000000000000';
($rc, $out, $err) = as_node('node_a',
	"SELECT idgen.lease_renew(7, $gen, 'a-host', 5, $poison)");
isnt($rc, 0, 'lease_renew refuses a time floor in the year 285 million');
like($err, qr/time floor .* is too far in the future/, 'the refusal says why');
($rc, $out, $err) = as_node('node_a',
	"SELECT generation FROM idgen.lease_acquire('a-host', 1, $layout, 5, 0, 7, -1, $poison)");
isnt($rc, 0, 'lease_acquire refuses such a local floor when node_a takes its id back');
like($err, qr/p_local_floor_ms may be at most/, 'the refusal names the argument');
($rc, $out, $err) = as_node('node_a',
	"SELECT idgen.lease_release(7, $gen, 'a-host', $poison)");
isnt($rc, 0, 'lease_release refuses a time floor in the year 285 million');
like($err, qr/time floor .* is too far in the future/, 'the refusal says why');

# every legitimate floor still goes through: a renewal's horizon (the
# node's clock plus its TTL), a take-back with the node's durable floor,
# and a release with what it reached
my $now_ms = q{(extract(epoch FROM clock_timestamp()) * 1000)::bigint};
($rc, $out, $err) = as_node('node_a',
	"SELECT expires_at IS NOT NULL FROM idgen.lease_renew(7, $gen, 'a-host', 3600, $now_ms + 3600 * 1000)");
is($rc, 0, 'a renewal with a one-hour horizon is accepted') or diag $err;
($rc, $out, $err) = as_node('node_a',
	"SELECT generation FROM idgen.lease_acquire('a-host', 1, $layout, 5, 0, 7, -1, $now_ms + 500)");
is($rc, 0, 'node_a takes its id back with its durable floor') or diag $err;
$gen = $out;
($rc, $out, $err) = as_node('node_a',
	"SELECT idgen.lease_release(7, $gen, 'a-host', $now_ms + 5000)");
is($rc, 0, 'node_a releases id 7 with the floor it reached') or diag $err;

# node_b takes id 7: the floor it must start above
($rc, $out, $err) = as_node('node_b',
	"SELECT previous_floor_ms - $now_ms
	   FROM idgen.lease_acquire('b-host', 1, $layout, 5, 0, 7, -1, 0)");
is($rc, 0, 'node_b leases worker id 7') or diag $err;
note "node_b must start ${out} ms in the future";
cmp_ok($out, '<', 2 * 3600 * 1000,
	'a floor node_a reported cannot hold id 7 from node_b for more than two hours');

# node_a exhausts the id space under made-up holders
my $cap = 2**$worker_bits;
($rc, $out, $err) = as_node('node_a', qq{
DO \$\$
BEGIN
    FOR i IN 1 .. $cap LOOP
        BEGIN
            PERFORM idgen.lease_acquire('fake-' || i, 1, $layout, 3600, 3600, -1, -1, 0);
        EXCEPTION WHEN OTHERS THEN
            EXIT;
        END;
    END LOOP;
END
\$\$;});
note "node_a's loop: rc $rc $err";
is($node->safe_psql('postgres',
		"SELECT count(*) FROM idgen.leases WHERE holder_role = 'node_a' AND holder LIKE 'fake-%' AND expires_at > now()"),
	'4', 'node_a holds idgen.lease_max_per_role (4) worker ids');
($rc, $out, $err) = as_node('node_a',
	"SELECT worker_id FROM idgen.lease_acquire('fake-more', 1, $layout, 3600, 3600, -1, -1, 0)");
isnt($rc, 0, 'node_a cannot lease a fifth worker id');
like($err, qr/role node_a already holds 4 worker ids/, 'the refusal names the role and its holdings');
($rc, $out, $err) = as_node('node_b',
	"SELECT worker_id FROM idgen.lease_acquire('b2-host', 1, $layout, 5, 0, -1, -1, 0)");
is($rc, 0, 'node_b still finds a free worker id after node_a leased as many as it could')
  or diag $err;

# node_a's code run by a superuser's session acts as that session's user:
# the lease functions take session_user as the caller.  A holding taken by
# a node connecting as a superuser (id 9); node_a owns a table whose
# row-level security policy renews that holding with a far-future floor;
# the probe worker's scan (as node_a, in a security-restricted operation,
# in the superuser's session) runs the policy.
$node->safe_psql('postgres', "DELETE FROM idgen.lease_history WHERE holder LIKE 'fake-%'; DELETE FROM idgen.leases WHERE holder LIKE 'fake-%'");
my $su_gen = $node->safe_psql('postgres',
	"SELECT generation FROM idgen.lease_acquire('su-host', 1, $layout, 5, 0, 9, -1, 0)");
$node->safe_psql(
	'postgres', qq{
CREATE SCHEMA na AUTHORIZATION node_a;
SET ROLE node_a;
CREATE FUNCTION na.policy() RETURNS boolean LANGUAGE plpgsql AS \$\$
BEGIN
    PERFORM idgen.lease_renew(9, $su_gen, 'su-host', 3600,
                              (extract(epoch FROM clock_timestamp()) * 1000)::bigint + 1000);
    RETURN true;
EXCEPTION WHEN OTHERS THEN
    RETURN true;
END
\$\$;
CREATE TABLE na.t (id bigint DEFAULT idgen.snowflake_next());
INSERT INTO na.t DEFAULT VALUES;
ALTER TABLE na.t ENABLE ROW LEVEL SECURITY;
ALTER TABLE na.t FORCE ROW LEVEL SECURITY;
CREATE POLICY p ON na.t USING (na.policy());
RESET ROLE;
SELECT idgen.probe_register('na.t', 'id');
SELECT count(*) FROM idgen.probe_run();
});
is($node->safe_psql('postgres',
		"SELECT expires_at < now() + interval '10 minutes' FROM idgen.leases WHERE worker_id = 9"),
	't', "node_a's code in a superuser's session cannot renew a superuser-held id for an hour");
($rc, $out, $err) = $node->psql('postgres', qq{
CREATE TABLE public.su_t (id bigint);
INSERT INTO public.su_t VALUES (1);
CREATE FUNCTION public.renew_in_index(bigint) RETURNS bigint IMMUTABLE LANGUAGE plpgsql AS \$\$
BEGIN
    PERFORM idgen.lease_renew(9, $su_gen, 'su-host', 5, 0);
    RETURN \$1;
END
\$\$;
CREATE INDEX ON public.su_t (public.renew_in_index(id));});
isnt($rc, 0, 'a lease call in a security-restricted operation is refused');
like($err, qr/cannot be called in a security-restricted operation/, 'the refusal says why');

# node_a holds the acquisition lock: lease_acquire takes it for the rest
# of the caller's transaction, and node_a's transaction stays open.
$node->safe_psql('postgres', "DELETE FROM idgen.lease_history WHERE holder LIKE 'fake-%'; DELETE FROM idgen.leases WHERE holder LIKE 'fake-%'");
my $hold = $node->background_psql('postgres');
$hold->query_safe('SET SESSION AUTHORIZATION node_a');
$hold->query_safe('BEGIN');
$hold->query_safe("SELECT worker_id FROM idgen.lease_acquire('a2-host', 1, $layout, 5, 0, -1, -1, 0)");
($rc, $out, $err) = as_node('node_b',
	"SET lock_timeout = '1s'; SELECT worker_id FROM idgen.lease_acquire('b3-host', 1, $layout, 5, 0, -1, -1, 0)");
note "node_b while node_a's transaction is open: rc $rc $err";
is($rc, 0, "node_b leases while node_a keeps a transaction open after lease_acquire")
  or diag $err;

# an acquisition that fails after taking the acquisition lock (a layout
# that differs from the coordinator's) inside an exception block of
# node_a's still open transaction lets go of it too
(my $bad_layout = $layout) =~ s/^\d+/40/;
$hold->query_safe(qq{
DO \$\$
BEGIN
    PERFORM idgen.lease_acquire('a3-host', 1, $bad_layout, 5, 0, -1, -1, 0);
EXCEPTION WHEN OTHERS THEN
    NULL;
END
\$\$});
($rc, $out, $err) = as_node('node_b',
	"SET lock_timeout = '1s'; SELECT worker_id FROM idgen.lease_acquire('b4-host', 1, $layout, 5, 0, -1, -1, 0)");
is($rc, 0, "node_b leases after node_a's failed acquisition in its open transaction")
  or diag $err;
$hold->query_safe('COMMIT');
$hold->quit;

# The cap counts holdings not committed yet: node_c's two sessions, each
# with a transaction left open, cannot hold more than 4 ids together.
$node->safe_psql('postgres', q{
CREATE ROLE node_c LOGIN;
GRANT EXECUTE ON FUNCTION
    idgen.lease_acquire(text, integer, integer, integer, integer, integer, bigint,
                        integer, integer, integer, integer, bigint) TO node_c;});
my @open = map {
	$node->background_psql('postgres', on_error_stop => 0, extra_params => [ '-U', 'node_c' ])
} 1 .. 2;
$_->query_safe('BEGIN') for @open;
$open[0]->query_safe("SELECT idgen.lease_acquire('c1-$_', 1, $layout, 60, 0, -1, -1, 0)") for 1 .. 3;
$open[1]->query_safe("SELECT idgen.lease_acquire('c2-1', 1, $layout, 60, 0, -1, -1, 0)");
$open[1]->query("SELECT idgen.lease_acquire('c2-2', 1, $layout, 60, 0, -1, -1, 0)");
like($open[1]->{stderr}, qr/role node_c already holds 4 worker ids/,
	"node_c's second session cannot go past the cap with the first one's uncommitted holdings");
$_->quit for @open;

$node->stop;
done_testing();
