# The lease coordinator made highly available by pg_auto_failover.
#
# Builds, with examples/pg_auto_failover/formation.sh (the documented
# recipe), a pg_auto_failover formation on loopback: a monitor, a
# coordinator primary and its synchronous standby.  Three idgen nodes
# (preloaded, idgen.worker_id = -1) lease their worker ids with a
# multi-host conninfo (target_session_attrs=read-write) and issue Snowflake
# IDs without pause, every one collected, while:
#   1. the coordinator primary dies (its pg_autoctl is killed and its
#      server stopped in immediate mode) and pg_auto_failover promotes the
#      standby;
#   2. the old primary comes back and rejoins as a standby;
#   3. a planned switchover (pg_autoctl perform switchover) makes it the
#      primary again.
# Asserts: no ID issued twice over all nodes; every node resumes issuing
# and holds its lease on the final primary; audit_leases() is clean there;
# every worker id a node issued under was leased to that node, and the
# final lease table gives no node's current id to another.  How long each
# node could not issue in each phase is printed against the TTL (no timing
# assertion: the machine is shared).
#
# The node role is made as README documents it (formation.sh
# setup-coordinator).  pg_autoctl runs as the test's user (postgres), every
# file lives in the test's temporary directory, every wait is bounded.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use IdgenTest;
use IPC::Run ();
use POSIX ();
use Time::HiRes qw(usleep);
use File::Basename qw(dirname);
use Cwd ();

my $TTL = 30;           # idgen.lease_ttl: the default
my $LOAD_MAX_S = 600;   # the load loops' own bound (normally stopped sooner)
my $STEP_TIMEOUT = 180; # bound of each formation wait

my $pgbin = `pg_config --bindir`;
chomp $pgbin;
my $sharedir = `pg_config --sharedir`;
chomp $sharedir;
my ($autoctl) = grep { -x "$_/pg_autoctl" } split /:/, $ENV{PATH};
plan skip_all =>
  "pg_autoctl or the pgautofailover extension is missing from $sharedir "
  . '(Debian: postgresql-15-auto-failover, pg-auto-failover-cli; scripts/packages.d/ops.list)'
  unless $autoctl && -e "$sharedir/extension/pgautofailover.control";

my $recipe = dirname($FindBin::RealBin) . '/../examples/pg_auto_failover/formation.sh';
$recipe = Cwd::abs_path($recipe);
my $base = PostgreSQL::Test::Utils::tempdir('paf');
$ENV{XDG_CONFIG_HOME} = "$base/config";
$ENV{XDG_DATA_HOME} = "$base/data";
$ENV{XDG_RUNTIME_DIR} = "$base/run";
mkdir $ENV{$_}, 0700 for qw(XDG_CONFIG_HOME XDG_DATA_HOME XDG_RUNTIME_DIR);
$ENV{PGBIN} = $pgbin;
$ENV{HOST} = '127.0.0.1';
$ENV{IDGEN_TTL} = $TTL;

my $mon_port = PostgreSQL::Test::Cluster::get_free_port();
my %port = (
	coord_a => PostgreSQL::Test::Cluster::get_free_port(),
	coord_b => PostgreSQL::Test::Cluster::get_free_port());
my %pgdata = map { $_ => "$base/$_" } qw(monitor coord_a coord_b);

# ---------------------------------------------------------------------------
# Processes of the formation: each pg_autoctl in a session of its own, so
# that a whole server (pg_autoctl and postgres) can be killed at once.
# ---------------------------------------------------------------------------
my %group;    # name => pid (= process group) of its pg_autoctl

sub spawn
{
	my ($name, @args) = @_;
	my $log = "$base/$name.log";
	my $pid = fork() // die "fork: $!";
	if ($pid == 0)
	{
		POSIX::setsid();
		# the TAP framework's libpq settings are for its own servers
		delete @ENV{qw(PGHOST PGHOSTADDR PGPORT PGDATABASE PGUSER PGDATA PGAPPNAME)};
		open(STDOUT, '>>', $log) or POSIX::_exit(126);
		open(STDERR, '>&', \*STDOUT) or POSIX::_exit(126);
		exec('bash', $recipe, @args) or POSIX::_exit(127);
	}
	$group{$name} = $pid;
	note("started $name (pid $pid): formation.sh @args; log $log");
	return;
}

sub group_members
{
	my ($pgid) = @_;
	my @pids;
	for my $stat (glob '/proc/[0-9]*/stat')
	{
		open(my $fh, '<', $stat) or next;
		my $line = <$fh>;
		close $fh;
		next unless defined $line && $line =~ /^(\d+) \(.*\) (\S) (\d+) (\d+)/;
		push @pids, $1 if $4 == $pgid && $2 ne 'Z';    # zombies are gone
	}
	return @pids;
}

# Stop a group: TERM, then KILL after a bounded wait; reap the leader.
sub stop_group
{
	my ($name) = @_;
	my $pgid = delete $group{$name} or return;
	kill 'TERM', -$pgid;
	for (1 .. 300)
	{
		waitpid($pgid, POSIX::WNOHANG());
		last unless group_members($pgid);
		usleep(100_000);
	}
	kill 'KILL', -$pgid if group_members($pgid);
	waitpid($pgid, 0);
	return;
}

END
{
	local $?;
	stop_group($_) for keys %group;
}

sub monitor_sql
{
	my ($sql) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run(
		[ "$pgbin/psql", '-XAtq', '-h', '127.0.0.1', '-p', $mon_port, '-d', 'pg_auto_failover', '-c', $sql ],
		'>', \$out, '2>', \$err, IPC::Run::timeout(10));
	chomp $out;
	return $out;
}

sub coord_sql
{
	my ($name, $sql) = @_;
	my ($out, $err) = ('', '');
	my $ok = eval {
		IPC::Run::run(
			[ "$pgbin/psql", '-XAtq', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1', '-p', $port{$name}, '-d', 'postgres', '-c', $sql ],
			'>', \$out, '2>', \$err, IPC::Run::timeout(10));
	};
	chomp $out;
	return $ok ? $out : undef;
}

# "name:reported/assigned" of every coordinator, by name.
sub formation_state
{
	return eval {
		monitor_sql(
			"SELECT string_agg(nodename || ':' || reportedstate || '/' || goalstate, ' ' ORDER BY nodename) FROM pgautofailover.node"
		);
	} // '';
}

# Die, with its log's tail, if a formation process has exited.
sub check_alive
{
	for my $name (sort keys %group)
	{
		next unless waitpid($group{$name}, POSIX::WNOHANG()) == $group{$name};
		delete $group{$name};
		my $tail = `tail -n 15 $base/$name.log`;
		die "pg_autoctl of $name exited:\n$tail";
	}
	return;
}

# Wait (bounded) until the formation's state matches $re; return the
# seconds waited, or undef (with a diagnostic) on timeout.
sub wait_formation
{
	my ($re, $what) = @_;
	my $t0 = Time::HiRes::time();
	my $state = '';
	while (Time::HiRes::time() - $t0 < $STEP_TIMEOUT)
	{
		check_alive();
		$state = formation_state();
		return Time::HiRes::time() - $t0 if $state =~ $re;
		usleep(250_000);
	}
	diag("formation did not reach $what within $STEP_TIMEOUT s: $state");
	return undef;
}

# ---------------------------------------------------------------------------
# The formation
# ---------------------------------------------------------------------------
spawn('monitor', 'monitor', $pgdata{monitor}, $mon_port);
{
	my $t0 = time;
	# up once pg_autoctl has created its extension (and its nodes table)
	until ((eval { monitor_sql("SELECT count(*) FROM pg_extension WHERE extname = 'pgautofailover'") } // '') eq '1'
		  || time - $t0 > $STEP_TIMEOUT)
	{
		check_alive();
		usleep(250_000);
	}
}
is(monitor_sql("SELECT extname FROM pg_extension WHERE extname = 'pgautofailover'"),
	'pgautofailover', 'monitor is up');
my $tune_out = '';
IPC::Run::run([ 'bash', $recipe, 'tune-monitor', $mon_port ], '>', \$tune_out, '2>&1', IPC::Run::timeout(30))
  or die "tune-monitor failed: $tune_out";

spawn('coord_a', 'coordinator', $pgdata{coord_a}, $port{coord_a}, 'coord_a', $mon_port);
ok(defined wait_formation(qr/^coord_a:single\/single$/, 'coord_a single'), 'coord_a is the primary');
spawn('coord_b', 'coordinator', $pgdata{coord_b}, $port{coord_b}, 'coord_b', $mon_port);
ok(defined wait_formation(qr/^coord_a:primary\/primary coord_b:secondary\/secondary$/, 'primary and secondary'),
	'coord_b joined as a secondary');

my $setup_out = '';
IPC::Run::run([ 'bash', $recipe, 'setup-coordinator', $port{coord_a} ], '>', \$setup_out, '2>&1', IPC::Run::timeout(60))
  or die "setup-coordinator failed: $setup_out";
# least privilege: the node role may execute the lease functions, nothing on idgen's tables
is(coord_sql('coord_a',
		"SELECT count(*) FROM pg_class c, unnest(ARRAY['SELECT','INSERT','UPDATE','DELETE']) p"
		  . " WHERE c.relnamespace = 'idgen'::regnamespace AND c.relkind = 'r'"
		  . " AND has_table_privilege('idgen_node', c.oid, p)"),
	'0', 'the node role has no privilege on any idgen table');
like(coord_sql('coord_a', 'SHOW synchronous_standby_names'), qr/^ANY 1 \(/,
	'coordinator primary replicates synchronously');
{
	my ($t0, $state) = (time, '');
	until ($state eq 'quorum' || time - $t0 > 30)
	{
		usleep(200_000);
		$state = coord_sql('coord_a', 'SELECT string_agg(sync_state, \',\') FROM pg_stat_replication') // '';
	}
	is($state, 'quorum', 'the standby is attached as a synchronous (quorum) standby');
}

# ---------------------------------------------------------------------------
# Three idgen nodes leasing from whichever coordinator is the primary
# ---------------------------------------------------------------------------
my $node_conf;
IPC::Run::run([ 'bash', $recipe, 'node-conf', $port{coord_a}, $port{coord_b} ], '>', \$node_conf, IPC::Run::timeout(10))
  or die 'node-conf failed';
my @nodes;
for my $i (1 .. 3)
{
	my $n = PostgreSQL::Test::Cluster->new("node$i");
	$n->init;
	$n->append_conf('postgresql.conf', $node_conf);
	$n->start;
	$n->safe_psql(
		'postgres', q{
CREATE EXTENSION idgen;
CREATE TABLE ids (id bigint NOT NULL, at timestamptz NOT NULL);
CREATE TABLE refusals (at timestamptz NOT NULL, sqlstate text NOT NULL, message text);
CREATE TABLE issue_stop ();
-- One ID every 10 ms, recording each ID and each refusal with its time,
-- until a row appears in issue_stop or max_s seconds or max_n IDs pass.
CREATE FUNCTION issue_load(max_s float8, max_n bigint, OUT issued bigint, OUT refused bigint)
LANGUAGE plpgsql AS $$
DECLARE
    t0 timestamptz := clock_timestamp();
BEGIN
    issued := 0; refused := 0;
    WHILE clock_timestamp() < t0 + make_interval(secs => max_s) AND issued < max_n
          AND NOT EXISTS (SELECT FROM issue_stop) LOOP
        BEGIN
            INSERT INTO ids VALUES (idgen.snowflake_next(), clock_timestamp());
            issued := issued + 1;
        EXCEPTION WHEN OTHERS THEN
            INSERT INTO refusals VALUES (clock_timestamp(), SQLSTATE, SQLERRM);
            refused := refused + 1;
        END;
        PERFORM pg_sleep(0.01);
    END LOOP;
END $$;
});
	push @nodes, $n;
}
for my $n (@nodes)
{
	ok(wait_state($n, 'held', 60), $n->name . ': lease held on the coordinator');
}
my %holder = map { $_->name => holder_of($_) } @nodes;
my %first_id = map { $_->name => status_of($_, 'worker_id') } @nodes;
is(scalar(keys %{ { reverse %first_id } }), 3, 'three distinct worker ids: ' . join(',', values %first_id));

my @loads;
for my $n (@nodes)
{
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[ 'psql', '-XAtq', '-d', $n->connstr('postgres'), '-c', "SELECT * FROM issue_load($LOAD_MAX_S, 1000000)" ],
		'>', \$out, '2>', \$err);
	push @loads, [ $n, $h, \$out, \$err ];
}
# IDs flow on every node before the first fault.
for my $n (@nodes)
{
	my ($ok) = poll_until($n,
		"SELECT value > 200 FROM idgen.stats WHERE metric = 'idgen_ids_issued_total' AND labels->>'generator' = 'snowflake'",
		't', 60);
	ok($ok, $n->name . ': issuing under load');
}

# ---------------------------------------------------------------------------
# 1. The coordinator primary dies; pg_auto_failover promotes the standby
# ---------------------------------------------------------------------------
my (%phase, %before);
sub kill_server
{
	my ($name) = @_;
	my $pgid = delete $group{$name};
	for my $pid (group_members($pgid))
	{
		my $exe = readlink("/proc/$pid/exe") // '';
		kill 'KILL', $pid if $exe =~ m{/pg_autoctl$};
	}
	waitpid($pgid, 0);
	system("$pgbin/pg_ctl", '-D', $pgdata{$name}, '-m', 'immediate', 'stop') if -e "$pgdata{$name}/postmaster.pid";
	return;
}
$before{failover} = last_renewals('coord_a');
$phase{kill} = Time::HiRes::time();
kill_server('coord_a');
my $waited = wait_formation(qr/coord_b:(wait_primary|primary)\/\1/, 'coord_b promoted');
ok(defined $waited, 'pg_auto_failover promoted coord_b');
$phase{promoted} = Time::HiRes::time();
refine_last_renewals('failover', 'coord_b', $phase{kill});
diag(sprintf('failover: coord_b writable %.1f s after coord_a was killed', $phase{promoted} - $phase{kill}));
is(coord_sql('coord_b', 'SELECT pg_is_in_recovery()'), 'f', 'coord_b is a primary');

# Wait (bounded) until every node has renewed its lease on $name after
# Unix time $since; record in %$when the time each one was first seen so.
# A renewal can commit between reading the old primary's lease table and
# the fault; the new primary has it (replication is synchronous): take
# the later of the two, among renewals from before the fault.
sub refine_last_renewals
{
	my ($phase_name, $name, $fault) = @_;
	my $r = last_renewals($name);
	for my $n (keys %$r)
	{
		$before{$phase_name}{$n} = $r->{$n}
		  if $r->{$n} < $fault && $r->{$n} > ($before{$phase_name}{$n} // 0);
	}
	return;
}

sub wait_renewed_on
{
	my ($name, $since, $when) = @_;
	my %by_holder = reverse %holder;
	my $t0 = time;
	while (time - $t0 < $STEP_TIMEOUT)
	{
		my $rows = coord_sql($name,
			"SELECT holder FROM idgen.leases WHERE released_at IS NULL AND renewed_at > to_timestamp($since)"
		) // '';
		for my $h (split /\n/, $rows)
		{
			$when->{ $by_holder{$h} } //= Time::HiRes::time() if $by_holder{$h};
		}
		return 1 if keys %$when == 3;
		usleep(250_000);
	}
	diag("nodes renewed on $name since the phase began: " . join(',', sort keys %$when));
	return 0;
}
my (%renewed_1, %renewed_2);

# Each node's last renewal on $name (Unix time), by node name.
sub last_renewals
{
	my ($name) = @_;
	my %by_holder = reverse %holder;
	my %r;
	for my $row (split /\n/, coord_sql($name,
		'SELECT holder, extract(epoch FROM renewed_at) FROM idgen.leases WHERE released_at IS NULL') // '')
	{
		my ($h, $t) = split /\|/, $row;
		$r{ $by_holder{$h} } = $t if $by_holder{$h};
	}
	return \%r;
}
ok(wait_renewed_on('coord_b', $phase{promoted}, \%renewed_1), 'all three nodes renewed on the new primary');
$phase{resumed_1} = Time::HiRes::time();
is(coord_sql('coord_b', 'SELECT count(*) FROM idgen.audit_leases()'), '0',
	'audit_leases() on the promoted primary: no overlapping holdings');

# ---------------------------------------------------------------------------
# 2. The old primary comes back as a standby
# ---------------------------------------------------------------------------
spawn('coord_a', 'run', $pgdata{coord_a});
ok(defined wait_formation(qr/^coord_a:secondary\/secondary coord_b:primary\/primary$/, 'coord_a secondary'),
	'old primary rejoined as a secondary');
is(coord_sql('coord_a', 'SELECT pg_is_in_recovery()'), 't', 'coord_a is a standby');
like(coord_sql('coord_b', 'SHOW synchronous_standby_names'), qr/^ANY 1 \(/,
	'new primary replicates synchronously to the old one');

# ---------------------------------------------------------------------------
# 3. Planned switchover back to coord_a
# ---------------------------------------------------------------------------
$before{switchover} = last_renewals('coord_b');
$phase{switch} = Time::HiRes::time();
{
	my $out = '';
	my $ok = eval { IPC::Run::run([ 'bash', $recipe, 'switchover', $mon_port ], '>', \$out, '2>&1', IPC::Run::timeout(120)) };
	note("pg_autoctl perform switchover: " . ($ok ? 'done' : "returned: $out"));
}
ok(defined wait_formation(qr/^coord_a:primary\/primary coord_b:secondary\/secondary$/, 'switchover done'),
	'switchover made coord_a the primary again');
$phase{switched} = Time::HiRes::time();
refine_last_renewals('switchover', 'coord_a', $phase{switch});
diag(sprintf('switchover: coord_a primary again %.1f s after it was asked for', $phase{switched} - $phase{switch}));
ok(wait_renewed_on('coord_a', $phase{switch}, \%renewed_2), 'all three nodes renewed on coord_a after the switchover');
$phase{resumed_2} = Time::HiRes::time();
for my $n (@nodes)
{
	ok(wait_state($n, 'held', $TTL), $n->name . ': lease held after the switchover');
}
sleep 2;    # some issuing after the last change

# ---------------------------------------------------------------------------
# Stop the load, collect every ID
# ---------------------------------------------------------------------------
$_->safe_psql('postgres', 'INSERT INTO issue_stop DEFAULT VALUES') for @nodes;
my (%seen, $total, $dups);
$total = 0;
$dups = 0;
for my $l (@loads)
{
	my ($n, $h, $out, $err) = @$l;
	eval { $h->finish; 1 } or $h->kill_kill;
	is(${$err}, '', $n->name . ': load loop ran without error');
	chomp ${$out};
	note($n->name . ": issued|refused = ${$out}");
	my $ids = $n->safe_psql('postgres', 'SELECT id FROM ids');
	for my $id (split /\n/, $ids)
	{
		$total++;
		$dups++ if $seen{$id}++;
	}
}
cmp_ok($total, '>', 3000, "collected $total IDs from three nodes");
is($dups, 0, "no ID issued twice over all nodes ($total IDs)");
diag("IDs collected: $total, duplicates: $dups");

# Per node and phase: the longest stretch without an ID, and the refusals.
for my $n (@nodes)
{
	for my $p ([ 'failover', $phase{kill}, $phase{resumed_1} ], [ 'switchover', $phase{switch}, $phase{resumed_2} ])
	{
		my ($name, $from, $to) = @$p;
		my $r = $n->safe_psql(
			'postgres', qq{
WITH w AS (SELECT at FROM ids WHERE at BETWEEN to_timestamp($from) - interval '1 s' AND to_timestamp($to) + interval '2 s')
SELECT coalesce(round(extract(epoch FROM max(gap))::numeric, 2), -1)
  FROM (SELECT at - lag(at) OVER (ORDER BY at) AS gap FROM w) g;
SELECT count(*), coalesce(round(extract(epoch FROM max(at) - min(at))::numeric, 2), 0),
       coalesce(string_agg(DISTINCT sqlstate, ','), '')
  FROM refusals WHERE at BETWEEN to_timestamp($from) AND to_timestamp($to) + interval '2 s';
});
		my ($gap, $refusal) = split /\n/, $r;
		my ($count, $span, $states) = split /\|/, $refusal;
		my $renewed = $name eq 'failover' ? $renewed_1{ $n->name } : $renewed_2{ $n->name };
		my $last = $before{$name}{ $n->name } // $from;
		diag(sprintf('%s, %s: renewed on the new primary %.1f s after the %s began, %.1f s after its last renewal (TTL %d s: it issues until %d s after its last renewal); longest stretch without an ID %s s; %d refusals%s over %s s',
				$n->name, $name, $renewed - $from, $name, $renewed - $last, $TTL, $TTL - ($TTL / 10 > 1 ? $TTL / 10 : 1),
				$gap, $count, $states ? " ($states)" : '', $span));
	}
	my ($after) = $n->safe_psql('postgres', "SELECT count(*) FROM ids WHERE at > to_timestamp($phase{switched})");
	cmp_ok($after, '>', 0, $n->name . ': issues again after the switchover');
}

# ---------------------------------------------------------------------------
# The final primary's lease records
# ---------------------------------------------------------------------------
is(coord_sql('coord_a', 'SELECT count(*) FROM idgen.audit_leases()'), '0',
	'audit_leases() on the final primary: no overlapping holdings');
for my $n (@nodes)
{
	my $name = $n->name;
	my $wid = status_of($n, 'worker_id');
	is( coord_sql('coord_a',
			"SELECT holder FROM idgen.leases WHERE worker_id = $wid AND released_at IS NULL AND expires_at > now()"),
		$holder{$name},
		"$name: the final primary leases worker id $wid to this node and no other");
	my $used = $n->safe_psql('postgres',
		"SELECT string_agg(DISTINCT d.worker_id::text, ',') FROM ids, idgen.snowflake_decode(id) d");
	my $leased = coord_sql('coord_a',
		"SELECT count(DISTINCT worker_id) FROM idgen.lease_history WHERE holder = '$holder{$name}' AND worker_id IN ($used)");
	my @used = split /,/, $used;
	is($leased, scalar(@used), "$name: every worker id it issued under ($used) was leased to it");
}

$_->stop for @nodes;
stop_group($_) for qw(coord_a coord_b monitor);
done_testing();
