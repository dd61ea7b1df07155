# The permission to issue Snowflake IDs, and what a lease release reports.
#
# A node with a static worker id leases it from a coordinator.  It issued
# IDs a while ago, so its durable time floor is seconds old.  Two calls of
# snowflake_next() are under way when its lease worker gives the id back
# (it is terminated, as at a shutdown):
#
#  - B has checked its permission and is raising the floor to the current
#    time; the raise waits for a synchronous standby that is not there;
#  - C has read its permission and is descheduled just before it reads
#    the floor (held there by gdb: a preemption at a point of our choosing).
#
# Then the standby requirement is lifted, B's raise completes, and C runs
# on.  What the release reported to the coordinator must bound every ID
# either call returns.  (It used to report the stale floor plus the
# reserve plus a second, while C went on to issue at the current time
# under the floor B had just raised.)
#
# Then a second server takes the same static id with its clock behind by
# several seconds (libfaketime): more than the lease margin, and enough to
# run through the time the first node's calls were made.  It must start
# above everything the first node issued and repeat none of its IDs.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use IdgenTest;
use Time::HiRes ();
use IPC::Run ();

my $TTL = 6;
my $WORKER = 5;

require_libfaketime();
system('gdb --version >/dev/null 2>&1') == 0
  or die 'gdb not found (Debian package gdb, scripts/packages.d/debugger.list)';


# Unix ms at which the tick of a Snowflake ID starts (default layout).
sub id_ms
{
	my ($node, $id) = @_;
	return $node->safe_psql('postgres',
		"SELECT (extract(epoch FROM ts) * 1000)::bigint FROM idgen.snowflake_decode($id)"
	);
}

# Hold a backend where a preemption would hurt most: just after it read
# its permission (the closing read of the permission's version, the second
# read of it in a call), before it reads the floor.  gdb stops it there
# with a read watchpoint; it touches "$dir/armed" once the watchpoint is
# set, "$dir/hit" when the backend stops, and lets it go (and detaches)
# once "$dir/go" exists.
my $HOLD_EXPR = 'idgen_permission->version';
my $HOLD_SKIP = 1;

sub hold_after_read
{
	my ($pid, $dir) = @_;
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[
			'gdb', '-q', '-nx', '-batch', '-p', $pid,
			'-ex', 'handle all nostop noprint pass',
			'-ex', "rwatch -l $HOLD_EXPR",
			'-ex', "ignore 1 $HOLD_SKIP",
			'-ex', "shell touch $dir/armed",
			'-ex', 'continue',
			'-ex', "shell touch $dir/hit",
			'-ex', "shell while [ ! -e $dir/go ]; do sleep 0.1; done",
			'-ex', 'delete',
			'-ex', 'detach'
		],
		'<', \undef, '>', \$out, '2>', \$err);
	return ($h, \$out, \$err);
}

sub wait_for_file
{
	my ($file, $timeout) = @_;
	my $start = Time::HiRes::time();
	while (!-e $file)
	{
		return 0 if Time::HiRes::time() - $start > $timeout;
		Time::HiRes::usleep(100_000);
	}
	return 1;
}

# The coordinator: any server with the extension.  node_1 connects as a
# role of its own, whose new connections the test can refuse.
my $coord = PostgreSQL::Test::Cluster->new('coordinator');
$coord->init;
$coord->start;
$coord->safe_psql('postgres',
	'CREATE EXTENSION idgen; CREATE ROLE node1 SUPERUSER LOGIN');
my $conninfo =
  'host=' . $coord->host . ' port=' . $coord->port . ' dbname=postgres';

my $n1 = PostgreSQL::Test::Cluster->new('node_1');
$n1->init(allows_streaming => 1);
$n1->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'idgen'
idgen.worker_id = $WORKER
idgen.coordinator = '$conninfo user=node1'
idgen.lease_ttl = $TTL
idgen.time_floor_reserve = '5s'
idgen.sync_standby_timeout = '60s'
});
$n1->start;
$n1->safe_psql('postgres', 'CREATE EXTENSION idgen');
ok(wait_state($n1, 'held'), "node_1: holds static worker id $WORKER");
my ($early, $w) = issue_decoded($n1, 10);
is_deeply($w, [$WORKER], "node_1: IDs carry worker id $WORKER");

# Restart with a synchronous standby that never connects: from now on
# every raise of the durable floor waits for it.  (Set at start-up, so it
# is in force before any call.)  The restart releases and re-takes the
# id, and lowers the persisted floor to the last ID issued.
$n1->stop;
$n1->append_conf('postgresql.conf', "synchronous_standby_names = 'ghost'\n");
$n1->start;
ok(wait_state($n1, 'held'), 'node_1: holds the id again after its restart');
my $gen = status_of($n1, 'lease_generation');

# Idle until the durable floor is well behind the clock: further than the
# reserve plus a second, and the floor reported at the restart.
my ($old_ok) = poll_until($n1,
	"SELECT clock_timestamp() > time_floor + interval '10 s' FROM idgen.status",
	't', 60);
ok($old_ok, 'node_1: durable floor is more than 10 s old');

my $tmp = PostgreSQL::Test::Utils::tempdir();
my $cs = $n1->background_psql('postgres', on_error_stop => 0);
$cs->query_safe('\set VERBOSITY verbose');
my $cpid = $cs->query_safe('SELECT pg_backend_pid()');
my ($gdb, $gdb_out, $gdb_err) = hold_after_read($cpid, $tmp);
ok(wait_for_file("$tmp/armed", 60), "gdb watches C's reads of $HOLD_EXPR")
  or diag("gdb: $$gdb_out $$gdb_err");

my $bs = $n1->background_psql('postgres', on_error_stop => 0);
$bs->query_safe('\set VERBOSITY verbose');
my $bpid = $bs->query_safe('SELECT pg_backend_pid()');
my $t_call_ms = int(Time::HiRes::time() * 1000);
$bs->query_until(qr/calling/, "\\echo calling\nSELECT idgen.snowflake_next();\n");
$cs->query_until(qr/calling/, "\\echo calling\nSELECT idgen.snowflake_next();\n");
ok(wait_for_file("$tmp/hit", 60),
	'C read its permission and is held before its floor read')
  or diag("gdb: $$gdb_out $$gdb_err");
ok( $n1->poll_query_until(
		'postgres',
		"SELECT wait_event = 'SyncRep' FROM pg_stat_activity WHERE pid = $bpid"),
	'B raises the floor and waits for the synchronous standby');

# The next holder must not be node_1 itself (its restarted worker would
# take the id back and release it again later).
$coord->safe_psql('postgres', 'ALTER ROLE node1 NOLOGIN');

# Terminate the lease worker, as a shutdown does: it gives the id back.
my $lw = lease_worker_pid($n1);
ok(defined $lw, 'node_1: lease worker found');
kill 'TERM', $lw;
ok( poll_until($n1, 'SELECT lease_error FROM idgen.status',
		'released at shutdown', 30),
	'node_1: the lease worker has withdrawn the permission');

# The standby requirement goes: B's raise completes.  Then C runs on.
$n1->safe_psql('postgres',
	"ALTER SYSTEM SET synchronous_standby_names = ''; SELECT pg_reload_conf()");
my %result;
for my $call ([ 'B', $bs ], [ 'C', $cs ])
{
	my ($name, $s) = @$call;
	if ($name eq 'C')
	{
		open(my $fh, '>', "$tmp/go") or die;
		close $fh;
		$gdb->finish;
	}
	my ($out) = $s->query("SELECT 'done'");
	my $err = $s->{stderr};
	$s->quit;
	my ($id) = $out =~ /^(\d+)$/m;
	$result{$name} = $id;
	ok(defined $id || $err =~ /IG005/,
		"$name either issued an ID or was refused for want of a permission (IG005): "
		  . ($id // $err));
}

ok( $coord->poll_query_until(
		'postgres',
		"SELECT count(*) FROM idgen.leases WHERE worker_id = $WORKER AND generation = $gen AND released_at IS NOT NULL",
		'1'),
	'coordinator: node_1 released its holding');
$n1->stop('immediate');
my $reported = $coord->safe_psql('postgres',
	"SELECT time_floor_ms FROM idgen.leases WHERE worker_id = $WORKER AND generation = $gen");
note "released floor: $reported";

my @n1_ids = (@$early, grep { defined } @result{qw(B C)});
my $n1_max = (sort { $a <=> $b } @n1_ids)[-1];

# node_2 takes the same static id, its clock (libfaketime) one second
# behind the moment B and C were called.
my $clock = "$tmp/clock";
set_clock($clock, '+0');
my $n2 = PostgreSQL::Test::Cluster->new('node_2');
$n2->init;
$n2->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'idgen'
idgen.worker_id = $WORKER
idgen.coordinator = '$conninfo'
idgen.lease_ttl = $TTL
idgen.max_clock_wait = 0
});
start_faked($n2, $clock);
$n2->safe_psql('postgres', 'CREATE EXTENSION idgen');
ok(wait_state($n2, 'held', 60), "node_2: holds worker id $WORKER after node_1's release");

my $n1_max_ms = id_ms($n2, $n1_max);
cmp_ok($reported, '>=', $n1_max_ms,
	"the released floor covers node_1's last ID ($n1_max_ms ms)");

my $behind = Time::HiRes::time() - ($t_call_ms - 1000) / 1000;
set_clock($clock, sprintf('-%.3f', $behind));
note "node_2 clock offset now -$behind s";

$n2->safe_psql('postgres', q{
CREATE FUNCTION issue_until(stop_ms bigint, theirs bigint[],
                            OUT lo bigint, OUT hi bigint, OUT n bigint,
                            OUT dups bigint)
LANGUAGE plpgsql AS $$
DECLARE
    id bigint;
BEGIN
    n := 0;
    dups := 0;
    LOOP
        id := idgen.snowflake_next();
        n := n + 1;
        lo := least(lo, id);
        hi := greatest(hi, id);
        IF id = ANY (theirs) THEN
            dups := dups + 1;
        END IF;
        EXIT WHEN extract(epoch FROM clock_timestamp()) * 1000 > stop_ms;
    END LOOP;
END
$$});

# Issue as soon as node_2 issues at all (it refuses until its clock passes
# the floor node_1 reported), until its clock is 3 s past the calls.
my $theirs = '{' . join(',', @n1_ids) . '}';
my $stop_ms = $t_call_ms + 3000;
my ($lo, $hi, $n, $dups);
{
	my $start = Time::HiRes::time();
	for (;;)
	{
		my $r = try_sql($n2, "SELECT * FROM issue_until($stop_ms, '$theirs')");
		if ($r->{ret} == 0)
		{
			($lo, $hi, $n, $dups) = split /\|/, $r->{stdout};
			last;
		}
		die "node_2 does not issue: $r->{stderr}"
		  if Time::HiRes::time() - $start > 60 || $r->{sqlstate} ne 'IG002';
		Time::HiRes::usleep(100_000);
	}
}
note "node_2 issued $n IDs from $lo to $hi";
is($dups, '0', "node_2 repeats none of node_1's IDs");
cmp_ok($lo, '>', $n1_max, "node_2's IDs all lie above node_1's ($lo > $n1_max)");

$n2->stop;
$coord->stop;
done_testing();
