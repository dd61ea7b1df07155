#!/usr/bin/perl
# The client of bench/lease_sizing: N lease holders against one coordinator.
#
# Opens N sessions, each of which leases a worker id with
# idgen.lease_acquire() (taking the id's session-level advisory lock, as a
# node's lease worker does) and renews it with idgen.lease_renew() every
# TTL/3, the holders' renewals spread evenly over that period.  After one
# unmeasured round it measures for --seconds: the coordinator's CPU (all
# processes under the postmaster, from /proc), renewal latency, and then
# lease_renew called back to back from one session, and the holders'
# backend memory.  Prints one table row (--header: the header).
#
# The lease functions are called with named arguments, so that a later
# version that adds parameters with defaults still runs unchanged
# (p_local_floor_ms, added in 1.1 without a default, is passed: a fresh
# holder has issued nothing).

use strict;
use warnings;

use DBI;
use Getopt::Long;
use POSIX ();
use Time::HiRes qw(time sleep);

my %o = (ttl => 30, seconds => 60, burst => 2000);
GetOptions(\%o, 'header', 'host=s', 'port=i', 'pgdata=s', 'holders=i', 'ttl=i', 'seconds=i', 'burst=i')
  or die "bad options\n";

my @cols = (
	[ 'holders', '%d' ],
	[ 'renewals', '%d' ],
	[ 'cpu_ms_per_renewal', '%.3f' ],
	[ 'cpu_pct_one_core', '%.2f' ],
	[ 'holders_cpu_ms_per_renewal', '%.3f' ],
	[ 'p50_ms', '%.2f' ],
	[ 'p99_ms', '%.2f' ],
	[ 'b2b_wall_us', '%.0f' ],
	[ 'b2b_cpu_us', '%.0f' ],
	[ 'b2b_cpu_async_us', '%.0f' ],
	[ 'pg_locks_cpu_us', '%.0f' ],
	[ 'pss_kib_per_holder', '%.0f' ],
	[ 'rss_kib_per_holder', '%.0f' ],
	[ 'acquire_s', '%.1f' ],
	[ 'hot_pct', '%.0f' ]);
if ($o{header})
{
	print join(' | ', map { $_->[0] } @cols), "\n";
	exit 0;
}

my $N = $o{holders} or die "--holders required\n";
my $period = $o{ttl} / 3;
my $margin = $o{ttl} / 10 > 1 ? int($o{ttl} / 10) : 1;
my $dsn = "dbi:Pg:host=$o{host};port=$o{port};dbname=postgres";
my $tck = POSIX::sysconf(POSIX::_SC_CLK_TCK());

sub progress { print STDERR "lease_sizing N=$N: @_\n"; }

sub connect_db
{
	return DBI->connect($dsn, 'postgres', '',
		{ RaiseError => 1, AutoCommit => 1, PrintError => 0, pg_server_prepare => 1 });
}

# ---------------------------------------------------------------------------
# N holders, each with its lease
# ---------------------------------------------------------------------------
my $t_acq = time;
my @h;
for my $i (0 .. $N - 1)
{
	my $dbh = connect_db();
	# as the lease worker: durable lease writes whatever the server says
	$dbh->do("SET synchronous_commit = on");
	my $holder = sprintf('7000000000000000000/sizing-host-%04d:5432', $i);
	my ($wid, $gen) = $dbh->selectrow_array(
		q{SELECT worker_id, generation FROM idgen.lease_acquire(
		    p_holder => $1, p_pid => $2, p_timestamp_bits => 41, p_worker_bits => 10,
		    p_sequence_bits => 12, p_tick_ms => 1, p_epoch_ms => 1704067200000,
		    p_ttl_s => $3, p_margin_s => $4, p_static_id => -1, p_prefer_id => -1,
		    p_local_floor_ms => 0)},
		undef, $holder, 100000 + $i, $o{ttl}, $margin);
	my $pid = $dbh->selectrow_array('SELECT pg_backend_pid()');
	my $sth = $dbh->prepare(
		q{SELECT expires_at FROM idgen.lease_renew(
		    p_worker_id => $1, p_generation => $2, p_holder => $3, p_ttl_s => $4,
		    p_time_floor_ms => $5)});
	push @h, { dbh => $dbh, holder => $holder, wid => $wid, gen => $gen, pid => $pid, sth => $sth };
}
my $acquire_s = time - $t_acq;
progress(sprintf('%d leases acquired in %.1f s', $N, $acquire_s));

sub renew
{
	my ($x) = @_;
	my $t = time;
	$x->{sth}->execute($x->{wid}, $x->{gen}, $x->{holder}, $o{ttl}, int(time * 1000) + $o{ttl} * 1000);
	$x->{sth}->fetchall_arrayref;
	return time - $t;
}

# Run renewals on schedule from $start for $len seconds; the latencies.
sub play
{
	my ($start, $len) = @_;
	my @lat;
	my $k = 0;
	for (;;)
	{
		my $round = int($k / $N);
		my $i = $k % $N;
		my $at = $start + $round * $period + $i * $period / $N;
		last if $at >= $start + $len;
		my $now = time;
		sleep($at - $now) if $at > $now;
		push @lat, renew($h[$i]);
		$k++;
	}
	return \@lat;
}

# CPU seconds of the postmaster and every process under it.
my $postmaster = do
{
	open(my $fh, '<', "$o{pgdata}/postmaster.pid") or die "postmaster.pid: $!";
	my $p = <$fh>;
	chomp $p;
	$p;
};

# ... and a breakdown: { holders => the holders' backends, and per process
# title (autovacuum worker, walwriter, ...) for the others }.  A process
# that exited during the window (an autovacuum worker) is missed by the
# difference of two samples; the totals are what counts.
sub server_cpu
{
	my %by;
	my $sum = 0;
	my %holder = map { $_->{pid} => 1 } @h;
	for my $stat (glob '/proc/[0-9]*/stat')
	{
		open(my $fh, '<', $stat) or next;
		my $line = <$fh>;
		close $fh;
		next unless defined $line && $line =~ /^(\d+) \(.*\) \S (\d+)/;
		my $pid = $1;
		next unless $pid == $postmaster || $2 == $postmaster;
		my @f = split ' ', substr($line, rindex($line, ')') + 2);
		my $t = ($f[11] + $f[12]) / $tck;    # utime, stime (fields 14, 15)
		$sum += $t;
		my $what = 'holders';
		unless ($holder{$pid})
		{
			open(my $ch, '<', "/proc/$pid/cmdline") or next;
			$what = (split /\0/, <$ch> // '')[0] // '?';
			$what =~ s/^postgres: //;
			$what =~ s/\s+\S+ \S+ \[local\].*/ other client/;
		}
		$by{$what} += $t;
	}
	return wantarray ? ($sum, \%by) : $sum;
}

sub pct
{
	my ($v, $p) = @_;
	my @s = sort { $a <=> $b } @$v;
	return 0 unless @s;
	my $idx = int($p / 100 * $#s + 0.5);
	return $s[$idx];
}

play(time, $period);    # one unmeasured round
my ($cpu0, $by0) = server_cpu();
my $t0 = time;
my $lat = play($t0, $o{seconds});
my $wall = time - $t0;
my ($cpu1, $by1) = server_cpu();
my $cpu = $cpu1 - $cpu0;
my $renewals = scalar @$lat;
my $holders_cpu = ($by1->{holders} // 0) - ($by0->{holders} // 0);
progress(sprintf('%d renewals in %.1f s, coordinator CPU %.2f s: %s', $renewals, $wall, $cpu,
		join(', ', map { sprintf('%s %.2f', $_, $by1->{$_} - ($by0->{$_} // 0)) }
			  sort grep { $by1->{$_} - ($by0->{$_} // 0) > 0 } keys %$by1)));

# CPU seconds of one process
sub proc_cpu
{
	my ($pid) = @_;
	open(my $fh, '<', "/proc/$pid/stat") or return 0;
	my $line = <$fh>;
	my @f = split ' ', substr($line, rindex($line, ')') + 2);
	return ($f[11] + $f[12]) / $tck;
}

# lease_renew back to back from one holder, all N holders present: wall
# time per call, and CPU of that holder's backend per call (the WAL flush
# waits are not CPU, but the flush itself may be done by this backend)
my $c_b = proc_cpu($h[0]{pid});
my $t_b = time;
renew($h[0]) for 1 .. $o{burst};
my $b2b_us = (time - $t_b) / $o{burst} * 1e6;
my $b2b_cpu_us = (proc_cpu($h[0]{pid}) - $c_b) / $o{burst} * 1e6;

# What the call costs without waiting for its WAL flush (the CPU of the
# function itself), and what one read of pg_locks costs with N holders:
# the part of today's lease_renew that grows with N.
sub backend_cpu_us
{
	my ($x, $code) = @_;
	my $c = proc_cpu($x->{pid});
	$code->() for 1 .. $o{burst};
	return (proc_cpu($x->{pid}) - $c) / $o{burst} * 1e6;
}
$h[0]{dbh}->do('SET synchronous_commit = off');
my $b2b_async_us = backend_cpu_us($h[0], sub { renew($h[0]) });
$h[0]{dbh}->do('SET synchronous_commit = on');
my $locks_sth = $h[0]{dbh}->prepare('SELECT count(*) FROM pg_catalog.pg_locks');
my $locks_us = backend_cpu_us($h[0], sub { $locks_sth->execute; $locks_sth->fetchall_arrayref });

# share of the lease tables' updates that were HOT (no index entry
# written); the holders' statistics are flushed when they go idle, at
# most once a second: wait for that
sleep(1.5);
$_->{dbh}->do('SELECT 1') for @h[1 .. $#h];
my $hot_pct = $h[0]{dbh}->selectrow_array(
	q{SELECT 100.0 * sum(n_tup_hot_upd) / nullif(sum(n_tup_upd), 0) FROM pg_catalog.pg_stat_user_tables
	   WHERE schemaname = 'idgen' AND relname IN ('leases', 'lease_history')}) // 0;

# holders' backend memory
my ($pss, $rss, $seen) = (0, 0, 0);
for my $x (@h)
{
	open(my $fh, '<', "/proc/$x->{pid}/smaps_rollup") or next;
	while (my $line = <$fh>)
	{
		$rss += $1 if $line =~ /^Rss:\s+(\d+) kB/;
		$pss += $1 if $line =~ /^Pss:\s+(\d+) kB/;
	}
	$seen++;
}

my @vals = (
	$N, $renewals,
	$renewals ? $cpu / $renewals * 1000 : 0,
	$cpu / $wall * 100,
	$renewals ? $holders_cpu / $renewals * 1000 : 0,
	pct($lat, 50) * 1000,
	pct($lat, 99) * 1000,
	$b2b_us,
	$b2b_cpu_us,
	$b2b_async_us,
	$locks_us,
	$seen ? $pss / $seen : 0,
	$seen ? $rss / $seen : 0,
	$acquire_s,
	$hot_pct);
print join(' | ', map { sprintf($cols[$_][1], $vals[$_]) } 0 .. $#cols), "\n";

$_->{dbh}->disconnect for @h;
