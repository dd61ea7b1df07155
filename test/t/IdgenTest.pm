# IdgenTest: helpers shared by idgen's TAP tests (test/t/*.pl).
#
# A test file loads it with
#
#   use FindBin;
#   use lib $FindBin::RealBin;
#   use IdgenTest;
#
# which imports every sub below.  prove runs test/t/*.pl only, so this
# module is never run as a test itself.  Helpers used by a single test file
# stay in that file.
#
# Running SQL
#
#   try_sql($node, $sql, %opts)
#       Run $sql (which may fail) through psql with VERBOSITY verbose and
#       return { ret, stdout, stderr, sqlstate, detail }: psql's exit code,
#       its output, the SQLSTATE of the first ERROR and the first DETAIL line
#       ('' when there is none).  Options: dbname (default 'postgres'),
#       user (connect as that role).
#
#   poll_until($node, $sql, $want, $timeout)
#       Run $sql in database postgres every 100 ms until it succeeds and
#       prints exactly $want, for at most $timeout seconds (default 30).
#       Returns ($ok, $out, $waited): whether it did, the last output (or
#       "error: <stderr>" if the last run failed) and the seconds waited.
#
# idgen.stats counters
#
#   snowflake_counter($node, $metric, $reason)
#       Value of the Snowflake counter $metric of idgen.stats with
#       labels->>'reason' = $reason, or with no reason label when $reason
#       is undef.
#
#   stats_counter($node, $metric, $labels)
#       Value of the idgen.stats row of $metric whose labels are exactly the
#       JSON object $labels (default '{}').
#
# A server's wall clock under libfaketime
#
#   require_libfaketime()
#       Die unless libfaketime (Debian package libfaketime) is installed.
#
#   set_clock($file, $offset)
#       Write a libfaketime offset ("+0", "-30", "-0.5") to $file
#       atomically: libfaketime re-reads the file on every clock read
#       (FAKETIME_NO_CACHE) and must never see it half written.
#
#   start_faked($node, $file, %params)
#       $node->start(%params) with the server's wall clock controlled by
#       the offset file $file (monotonic clock real).
#
#   server_clock_offset($node)
#       The server's wall clock minus the (real) test clock, in seconds.
#
# Segment generator
#
#   wait_for_worker($node, $db)
#       Wait (up to the framework's timeout) for the idgen worker to be
#       connected to database $db (default 'postgres'); die if it does not.
#
#   take($node, $tag, $n, $db)
#       Take $n numbers of segment tag $tag of database $db (default
#       'postgres') in one statement; return them (array ref) in call order.
#
# Worker-id leases
#
#   status_of($node, $col)
#       Column $col of idgen.status.
#
#   wait_state($node, $state, $timeout)
#       Wait up to $timeout seconds (default 15) for idgen.status.lease_state
#       to be $state; on failure print the last state and lease_error as a
#       diagnostic.  Returns whether it got there.
#
#   holder_of($node)
#       The holder identity the lease worker records for $node: system
#       identifier/host:port.
#
#   issue_decoded($node, $n)
#       $n Snowflake IDs from $node (ascending) and the worker ids they
#       decode to: (\@ids, [ sorted distinct worker ids ]).

package IdgenTest;

use strict;
use warnings;

use Exporter 'import';
use Test::More ();
use Sys::Hostname ();
use Time::HiRes qw(usleep);

our @EXPORT = qw(
  try_sql
  poll_until
  snowflake_counter
  stats_counter
  require_libfaketime
  set_clock
  start_faked
  server_clock_offset
  wait_for_worker
  take
  status_of
  wait_state
  holder_of
  issue_decoded
  lease_worker_pid
);
our @EXPORT_OK = qw($LIBFAKETIME);

our $LIBFAKETIME = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';

sub try_sql
{
	my ($node, $sql, %opts) = @_;
	my $dbname = $opts{dbname} // 'postgres';
	my ($stdout, $stderr) = ('', '');
	my %connect;
	$connect{connstr} = $node->connstr($dbname) . " user=$opts{user}"
	  if $opts{user};
	my $ret = $node->psql(
		$dbname, "\\set VERBOSITY verbose\n$sql",
		stdout => \$stdout,
		stderr => \$stderr,
		%connect);
	my ($sqlstate) = $stderr =~ /ERROR:\s+([0-9A-Z]{5}):/;
	my ($detail) = $stderr =~ /DETAIL:\s+(.*)/;
	return {
		ret => $ret,
		stdout => $stdout,
		stderr => $stderr,
		sqlstate => $sqlstate // '',
		detail => $detail // ''
	};
}

sub poll_until
{
	my ($node, $sql, $want, $timeout) = @_;
	$timeout //= 30;
	my $start = Time::HiRes::time();
	my $out = '';
	for (;;)
	{
		my ($ret, $stdout, $stderr) = $node->psql('postgres', $sql);
		$out = $ret == 0 ? $stdout : "error: $stderr";
		my $waited = Time::HiRes::time() - $start;
		return (1, $out, $waited) if $ret == 0 && $stdout eq $want;
		return (0, $out, $waited) if $waited > $timeout;
		usleep(100_000);
	}
}

sub snowflake_counter
{
	my ($node, $metric, $reason) = @_;
	my $cond =
	  defined $reason
	  ? "labels->>'reason' = '$reason'"
	  : "NOT labels ? 'reason'";
	return $node->safe_psql(
		'postgres', qq{
SELECT value FROM idgen.stats
 WHERE metric = '$metric' AND labels->>'generator' = 'snowflake' AND $cond});
}

sub stats_counter
{
	my ($node, $metric, $labels) = @_;
	$labels //= '{}';
	return $node->safe_psql('postgres',
		"SELECT value FROM idgen.stats WHERE metric = '$metric' AND labels = '$labels'::jsonb"
	);
}

sub require_libfaketime
{
	die "libfaketime not found at $LIBFAKETIME (Debian package libfaketime)"
	  unless -e $LIBFAKETIME;
	return;
}

sub set_clock
{
	my ($file, $offset) = @_;
	open(my $fh, '>', "$file.tmp") or die "could not write $file.tmp: $!";
	print $fh "$offset\n";
	close($fh) or die "could not close $file.tmp: $!";
	rename("$file.tmp", $file) or die "could not rename to $file: $!";
	return;
}

sub start_faked
{
	my ($node, $file, %params) = @_;
	local $ENV{LD_PRELOAD} = $LIBFAKETIME;
	local $ENV{FAKETIME_TIMESTAMP_FILE} = $file;
	local $ENV{FAKETIME_NO_CACHE} = '1';
	local $ENV{FAKETIME_DONT_FAKE_MONOTONIC} = '1';
	return $node->start(%params);
}

sub server_clock_offset
{
	my ($node) = @_;
	my $t0 = Time::HiRes::time();
	my $server = $node->safe_psql('postgres',
		'SELECT extract(epoch FROM clock_timestamp())');
	my $t1 = Time::HiRes::time();
	return $server - ($t0 + $t1) / 2;
}

sub wait_for_worker
{
	my ($node, $db) = @_;
	$db //= 'postgres';
	$node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'idgen worker' AND datname = '$db'"
	) or die "idgen worker did not connect to $db";
	return;
}

sub take
{
	my ($node, $tag, $n, $db) = @_;
	my $out = $node->safe_psql($db // 'postgres',
		"SELECT string_agg(n::text, ',' ORDER BY i) FROM (SELECT i, idgen.segment_next('$tag') AS n FROM generate_series(1, $n) i) s"
	);
	return [ split /,/, $out ];
}

sub status_of
{
	my ($node, $col) = @_;
	return $node->safe_psql('postgres', "SELECT $col FROM idgen.status");
}

sub wait_state
{
	my ($node, $state, $timeout) = @_;
	my ($ok, $out) = poll_until($node, 'SELECT lease_state FROM idgen.status',
		$state, $timeout // 15);
	Test::More::diag('lease_state of ' . $node->name . ": $out; lease_error: "
		  . status_of($node, 'lease_error'))
	  unless $ok;
	return $ok;
}

sub holder_of
{
	my ($node) = @_;
	my $sysid = $node->safe_psql('postgres',
		'SELECT system_identifier FROM pg_control_system()');
	return "$sysid/" . Sys::Hostname::hostname() . ':' . $node->port;
}

sub issue_decoded
{
	my ($node, $n) = @_;
	my $out = $node->safe_psql(
		'postgres', qq{
SELECT id, (idgen.snowflake_decode(id)).worker_id
  FROM (SELECT idgen.snowflake_next() AS id FROM generate_series(1, $n)) s});
	my (@ids, %workers);
	for my $line (split /\n/, $out)
	{
		my ($id, $w) = split /\|/, $line;
		push @ids, $id;
		$workers{$w} = 1;
	}
	return (\@ids, [ sort keys %workers ]);
}

# The pid of $node's idgen lease worker, from /proc (with a remote
# coordinator the worker is not listed in pg_stat_activity); undef if
# there is none.
sub lease_worker_pid
{
	my ($node) = @_;
	open(my $fh, '<', $node->data_dir . '/postmaster.pid') or return undef;
	my $pm = <$fh>;
	close $fh;
	chomp $pm;
	for my $stat (glob '/proc/[0-9]*/stat')
	{
		open(my $sf, '<', $stat) or next;
		my $line = <$sf> // '';
		close $sf;
		my ($pid, $ppid) = $line =~ /^(\d+) .*\)\s+\S+\s+(\d+)/;
		next unless defined $ppid && $ppid == $pm;
		(my $cmd = $stat) =~ s/stat$/cmdline/;
		open(my $cf, '<', $cmd) or next;
		my $title = <$cf> // '';
		close $cf;
		return $pid if $title =~ /idgen lease worker/;
	}
	return undef;
}

1;
