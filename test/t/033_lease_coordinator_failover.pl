# Worker-id leases across a failover of the coordinator.
#
# The coordinator is a primary with a streaming standby, both with idgen
# preloaded and default settings (each leases an id from itself once it is
# a primary; the standby leases nothing while in recovery).  A node's
# idgen.coordinator names both servers with target_session_attrs=read-write.
# The node holds a lease and issues Snowflake IDs without pause while the
# primary crashes and, once the node's renewal has failed (fail-static),
# the standby is promoted: the lease worker reconnects to the new primary
# and renews there, the node's lease is 'held' again
# with the same worker id and generation, its IDs keep increasing, and
# since the failover completes well within idgen.lease_ttl it never refuses
# an ID.  The lease row on the new primary shows the renewal after the
# promotion, and idgen.audit_leases() finds no overlapping holdings.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use IdgenTest;
use IPC::Run ();
use Time::HiRes qw(usleep);

my $TTL = 15;    # failover within ~0.3 TTL of a renewal attempt is safe

# ---------------------------------------------------------------------------
# Coordinator primary and standby
# ---------------------------------------------------------------------------
my $primary = PostgreSQL::Test::Cluster->new('coord_primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'idgen'
idgen.lease_ttl = $TTL
});
$primary->start;
$primary->safe_psql('postgres', 'CREATE EXTENSION idgen');
ok(wait_state($primary, 'held'), 'coordinator primary leases an id from itself');
my $primary_id = status_of($primary, 'worker_id');

$primary->backup('backup');
my $standby = PostgreSQL::Test::Cluster->new('coord_standby');
$standby->init_from_backup($primary, 'backup', has_streaming => 1);
$standby->start;
is(status_of($standby, 'lease_state'), 'acquiring', 'standby leases nothing while in recovery');
is(status_of($standby, 'worker_id'), '-1', 'standby: no worker id');

# ---------------------------------------------------------------------------
# A node leasing from "whichever of the two is the primary"
# ---------------------------------------------------------------------------
my $coordinator =
    'host=' . $primary->host . ',' . $standby->host
  . ' port=' . $primary->port . ',' . $standby->port
  . ' target_session_attrs=read-write dbname=postgres';
my $node = PostgreSQL::Test::Cluster->new('node');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'idgen'
idgen.lease_ttl = $TTL
idgen.coordinator = '$coordinator'
});
$node->start;
$node->safe_psql(
	'postgres', q{
CREATE EXTENSION idgen;
-- Issue an ID every 10 ms, never stopping at a refusal, until a row
-- appears in issue_stop (or max_s seconds pass): how many were issued and
-- refused, the first refusal, and whether every ID was above the one before.
CREATE TABLE issue_stop ();
CREATE FUNCTION issue_for(max_s float8,
    OUT issued bigint, OUT refused bigint, OUT first_refusal text,
    OUT increasing boolean, OUT workers text, OUT max_id bigint)
LANGUAGE plpgsql AS $$
DECLARE
    t0 timestamptz := clock_timestamp();
    id bigint;
    prev bigint := 0;
    ws int[] := '{}';
BEGIN
    issued := 0; refused := 0; increasing := true;
    WHILE clock_timestamp() < t0 + make_interval(secs => max_s)
          AND NOT EXISTS (SELECT FROM issue_stop) LOOP
        BEGIN
            id := idgen.snowflake_next();
            issued := issued + 1;
            increasing := increasing AND id > prev;
            prev := id;
            IF NOT (SELECT d.worker_id FROM idgen.snowflake_decode(id) d) = ANY (ws) THEN
                ws := ws || (SELECT d.worker_id FROM idgen.snowflake_decode(id) d);
            END IF;
        EXCEPTION WHEN OTHERS THEN
            refused := refused + 1;
            first_refusal := coalesce(first_refusal, SQLSTATE || ' at ' || clock_timestamp() || ': ' || SQLERRM);
        END;
        PERFORM pg_sleep(0.01);
    END LOOP;
    workers := array_to_string(ws, ',');
    max_id := prev;
END $$;
});
ok(wait_state($node, 'held'), 'node: lease held on the coordinator primary');
my $node_id = status_of($node, 'worker_id');
my $generation = status_of($node, 'lease_generation');
isnt($node_id, $primary_id, "node's worker id $node_id differs from the coordinator's own");
my $before_max = $node->safe_psql('postgres',
	'SELECT max(idgen.snowflake_next()) FROM generate_series(1, 100)');
my $holder = $primary->safe_psql('postgres',
	"SELECT holder FROM idgen.leases WHERE worker_id = $node_id");

$primary->wait_for_catchup($standby);
is($standby->safe_psql('postgres',
		"SELECT holder || ' ' || generation FROM idgen.leases WHERE worker_id = $node_id"),
	"$holder $generation", "standby has the node's lease row");

# ---------------------------------------------------------------------------
# Failover while the node issues IDs
# ---------------------------------------------------------------------------
my $LOOP_S = 60;    # upper bound; stopped through issue_stop
my ($loop_out, $loop_err) = ('', '');
my $loop = IPC::Run::start(
	[
		'psql', '-XAtq', '-d', $node->connstr('postgres'),
		'-c', "SELECT * FROM issue_for($LOOP_S)"
	],
	'>', \$loop_out, '2>', \$loop_err);
usleep(500_000);

# Crash the primary just after a renewal, let the node's next renewal fail
# (the primary is down and the standby read-only), then promote.
my $r0 = $primary->safe_psql('postgres',
	"SELECT renewed_at FROM idgen.leases WHERE worker_id = $node_id");
my ($fresh) = poll_until($primary,
	"SELECT renewed_at > '$r0' FROM idgen.leases WHERE worker_id = $node_id",
	't', $TTL);
ok($fresh, 'node renews on the primary');
my $t_fail = Time::HiRes::time();
$primary->stop('immediate');
ok(wait_state($node, 'fail-static', $TTL), 'node: fail-static while no read-write coordinator is up');
{
	my $why = status_of($node, 'lease_error');
	like($why, qr/\S/, 'node: lease_error says why renewal fails');
	note("lease_error: $why");
}
$standby->promote;
my $promoted_at = $standby->safe_psql('postgres', 'SELECT now()');
note(sprintf('standby promoted %.1f s after the primary stopped', Time::HiRes::time() - $t_fail));

my ($renewed) = poll_until(
	$standby,
	"SELECT renewed_at > '$promoted_at' FROM idgen.leases WHERE worker_id = $node_id",
	't', $TTL);
ok($renewed, 'node renewed its lease on the new primary');
note(sprintf('lease renewed on the new primary %.1f s after the primary stopped',
		Time::HiRes::time() - $t_fail));
ok(wait_state($node, 'held', 5), 'node: lease held after the failover');
is(status_of($node, 'worker_id'), $node_id, "node kept worker id $node_id");
is(status_of($node, 'lease_generation'), $generation, 'node kept its lease generation');
is( $standby->safe_psql(
		'postgres', qq{
SELECT holder = '$holder' AND generation = $generation AND released_at IS NULL
       AND expires_at > now()
  FROM idgen.leases WHERE worker_id = $node_id}),
	't',
	'new primary: the live lease row is the node\'s');

usleep(500_000);    # a little issuing after the recovery too
$node->safe_psql('postgres', 'INSERT INTO issue_stop DEFAULT VALUES');
$loop->finish;
chomp $loop_out;
is($loop_err, '', 'issuing loop ran without error');
my ($issued, $refused, $first_refusal, $increasing, $workers, $loop_max) =
  split /\|/, $loop_out;
note("issuing loop: $loop_out");
cmp_ok($issued, '>', 100, "node issued $issued IDs during the failover");
is($refused, 0, 'node never refused an ID during the failover')
  or diag("first refusal: $first_refusal");
is($increasing, 't', 'IDs kept increasing across the failover');
is($workers, $node_id, "all of them under worker id $node_id");
cmp_ok($loop_max, '>', $before_max, 'IDs above those issued before the failover');
ok(!$node->log_contains(qr/lease \d+ expired on this node/), 'node log: the lease never expired');

# The new primary leases an id for itself too (its holder differs from the
# old primary's by the port), distinct from the node's.
ok(wait_state($standby, 'held'), 'new primary leases an id from itself');
my $new_primary_id = status_of($standby, 'worker_id');
isnt($new_primary_id, $node_id, "new primary's worker id $new_primary_id differs from the node's");
is($standby->safe_psql('postgres', 'SELECT count(*) FROM idgen.audit_leases()'),
	'0', 'audit_leases(): no overlapping holdings');

# The lease keeps being renewed on the new primary.
{
	my $r1 = $standby->safe_psql('postgres',
		"SELECT renewed_at FROM idgen.leases WHERE worker_id = $node_id");
	my ($again) = poll_until($standby,
		"SELECT renewed_at > '$r1' FROM idgen.leases WHERE worker_id = $node_id",
		't', $TTL);
	ok($again, 'lease renewed again on the new primary');
}

$node->stop;
is( $standby->safe_psql('postgres',
		"SELECT released_at IS NOT NULL FROM idgen.leases WHERE worker_id = $node_id"),
	't',
	'clean node shutdown releases the lease on the new primary');
$standby->stop;

done_testing();
