# The Snowflake bit layout: checks at start-up, a layout changed under an
# existing data directory, and running out of timestamp bits.
#
#  - The layout is recorded in the state file with the first ID.  A server
#    started with other bits, another epoch or another tick still starts,
#    but snowflake_next() refuses with SQLSTATE IG006 and idgen.status shows
#    the problem; uuidv7() is unaffected.  Restoring the settings restores
#    service, above every earlier ID.
#  - An inconsistent layout (sum not 63), a worker id that does not fit its
#    bits, an epoch in the future or not a date stop the server from
#    starting.  A damaged state file (layout and floor unknown): the server
#    starts, snowflake_next() refuses with IG006.
#  - Timestamp bits already used up: the server starts with a WARNING and
#    snowflake_next() refuses with IG004.  Bits running out while the server
#    runs: IDs up to the very last tick, never a negative one, then IG004.
#    A layout with few years left warns at start-up; the default does not.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use IdgenTest;

# Value of one snowflake refusal counter of idgen.stats.
sub refusals
{
	my ($node, $reason) = @_;
	return snowflake_counter($node, 'idgen_refusals_total', $reason);
}

# UTC 'YYYY-MM-DD HH:MM:SS' for a Unix time.
sub utc_text
{
	my @t = gmtime($_[0]);
	return sprintf('%04d-%02d-%02d %02d:%02d:%02d',
		$t[5] + 1900, $t[4] + 1, $t[3], $t[2], $t[1], $t[0]);
}

my $node = PostgreSQL::Test::Cluster->new('layout');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'idgen'
idgen.worker_id = 3
include 'idgen_layout.conf'
});
my $layout_conf = $node->data_dir . '/idgen_layout.conf';
my $state_file = $node->data_dir . '/idgen_snowflake.state';

# Replace the layout settings (included after everything else).
sub set_layout
{
	my ($settings) = @_;
	open(my $fh, '>', $layout_conf) or die "could not write $layout_conf: $!";
	print $fh $settings;
	close($fh) or die;
	return;
}

# Start; return the log written by this start.
sub start_and_log
{
	my (%params) = @_;
	my $offset = -s $node->logfile // 0;
	my $ok = $node->start(%params);
	return ($ok, slurp_file($node->logfile, $offset));
}

# ---------------------------------------------------------------------------
# Default layout: record it with the first IDs.
# ---------------------------------------------------------------------------

set_layout('');
my ($started, $log) = start_and_log();
unlike($log, qr/run out|layout changed/, 'default layout: no warning at start-up');
$node->safe_psql(
	'postgres', q{
CREATE EXTENSION idgen;
CREATE TABLE ids (ord bigserial PRIMARY KEY, phase text NOT NULL,
                  id bigint NOT NULL);
INSERT INTO ids (phase, id)
SELECT 'default', idgen.snowflake_next() FROM generate_series(1, 100);
});
is( $node->safe_psql(
		'postgres',
		'SELECT timestamp_bits, worker_bits, sequence_bits, years_left > 5 FROM idgen.bit_budget()'),
	'41|10|12|t',
	'bit_budget shows the default layout 41/10/12');
is($node->safe_psql('postgres', 'SELECT snowflake_problem IS NULL FROM idgen.status'),
	't', 'no snowflake_problem');
ok(-e $state_file, 'the first ID wrote the state file');
my $max_default = $node->safe_psql('postgres', 'SELECT max(id) FROM ids');

# ---------------------------------------------------------------------------
# Changed layouts: the server starts, snowflake_next() refuses with IG006.
# ---------------------------------------------------------------------------

sub check_layout_refused
{
	my ($what, $settings, $now_re) = @_;

	$node->stop;
	set_layout($settings);
	my ($ok, $log) = start_and_log();
	ok($ok, "$what: server starts");
	like($log, qr/WARNING:.*Snowflake layout changed/,
		"$what: start-up WARNING about the changed layout");

	my $refused0 = refusals($node, 'layout_changed');
	for my $i (1 .. 2)
	{
		my $r = try_sql($node,
			"INSERT INTO ids (phase, id) VALUES ('$what', idgen.snowflake_next())");
		is($r->{sqlstate}, 'IG006', "$what: call $i refused with IG006")
		  or diag("stdout: $r->{stdout}\nstderr: $r->{stderr}");
		like($r->{detail}, qr{41/10/12 bits, tick 1 ms.*; the settings now give .*$now_re},
			"$what: call $i: the detail names the recorded and the new layout");
	}
	is(refusals($node, 'layout_changed'),
		$refused0 + 2, "$what: refusal counter layout_changed went up by two");
	like(
		$node->safe_psql('postgres', 'SELECT snowflake_problem FROM idgen.status'),
		qr{41/10/12 bits.*$now_re},
		"$what: idgen.status.snowflake_problem describes the change");
	is($node->safe_psql('postgres', 'SELECT count(*) FROM ids'),
		'100', "$what: no ID issued");
	like($node->safe_psql('postgres', 'SELECT idgen.uuidv7()'),
		qr/^[0-9a-f]{8}-[0-9a-f]{4}-7/, "$what: uuidv7() still works");
	return;
}

check_layout_refused(
	'bits 41/11/11', "idgen.worker_bits = 11\nidgen.sequence_bits = 11\n",
	qr{41/11/11 bits});
check_layout_refused('epoch 2023-01-01', "idgen.epoch = '2023-01-01'\n",
	qr{41/10/12 bits, tick 1 ms, epoch 1672531200000 ms});
check_layout_refused('tick 2 ms', "idgen.tick = '2ms'\n",
	qr{41/10/12 bits, tick 2 ms});

# Back to the recorded layout: service resumes, above the earlier IDs.
$node->stop;
set_layout('');
($started, $log) = start_and_log();
unlike($log, qr/layout changed/, 'layout restored: no warning');
is($node->safe_psql('postgres', 'SELECT snowflake_problem IS NULL FROM idgen.status'),
	't', 'layout restored: no snowflake_problem');
$node->safe_psql('postgres',
	"INSERT INTO ids (phase, id) SELECT 'restored', idgen.snowflake_next() FROM generate_series(1, 100)"
);
is( $node->safe_psql(
		'postgres',
		"SELECT count(*), min(id) > $max_default FROM ids WHERE phase = 'restored'"),
	"100|t",
	'layout restored: IDs issued again, above every earlier ID');

# ---------------------------------------------------------------------------
# Layouts that must stop the server from starting.
# ---------------------------------------------------------------------------

sub check_start_fails
{
	my ($what, $settings, $log_re) = @_;

	$node->stop if defined $node->{_pid};
	set_layout($settings);
	my ($ok, $log) = start_and_log(fail_ok => 1);
	ok(!$ok, "$what: server does not start");
	like($log, $log_re, "$what: the log says why");
	$node->stop if $ok;
	return;
}

check_start_fails(
	'timestamp_bits 40 + 10 + 12',
	"idgen.timestamp_bits = 40\n",
	qr/invalid Snowflake layout: .* is 62, not 63/);
check_start_fails(
	'bits 41 + 11 + 12',
	"idgen.worker_bits = 11\n",
	qr/is 64, not 63/);
check_start_fails(
	'worker_id 2000 with 10 worker bits',
	"idgen.worker_id = 2000\n",
	qr/idgen.worker_id 2000 does not fit in 10 worker bits/);
check_start_fails(
	'epoch in the future',
	"idgen.epoch = '2999-01-01'\n",
	qr/idgen.epoch "2999-01-01" is in the future/);
{
	# PostgreSQL applies a preloaded library's settings from postgresql.conf
	# with elevel WARNING: a value the check hook rejects is logged and the
	# default (epoch 2024-01-01) silently used instead of the one configured.
	$node->stop if defined $node->{_pid};
	set_layout("idgen.epoch = '2024-02-30'\n");
	my ($ok, $log) = start_and_log(fail_ok => 1);
	like($log, qr/invalid value for parameter "idgen.epoch": "2024-02-30"/,
		'epoch not a date: the log says why');
	ok(!$ok, 'epoch not a date: server does not start');
	$node->stop if $ok;
}

set_layout('');
($started, $log) = start_and_log();
ok($started, 'default layout again: server starts');
like($node->safe_psql('postgres', 'SELECT idgen.snowflake_next()'),
	qr/^\d+$/, 'default layout again: snowflake_next() works');

# ---------------------------------------------------------------------------
# A damaged state file: floor and layout unknown, so refuse (IG006).
# ---------------------------------------------------------------------------

{
	$node->stop;
	my $good = slurp_file($state_file);
	my $bad = $good;
	substr($bad, 33, 1) = chr(ord(substr($bad, 33, 1)) ^ 0x40);    # floor_ms
	open(my $fh, '>', $state_file) or die;
	binmode $fh;
	print $fh $bad;
	close($fh) or die;

	my ($ok, $log) = start_and_log();
	ok($ok, 'damaged state file: server starts');
	like($log, qr/WARNING:.*state file "idgen_snowflake.state" is damaged/,
		'damaged state file: start-up WARNING');
	my $r = try_sql($node, 'SELECT idgen.snowflake_next()');
	is($r->{sqlstate}, 'IG006', 'damaged state file: refused with IG006')
	  or diag("stdout: $r->{stdout}\nstderr: $r->{stderr}");
	like($node->safe_psql('postgres', 'SELECT snowflake_problem FROM idgen.status'),
		qr/damaged/, 'damaged state file: idgen.status.snowflake_problem says so');

	$node->stop;
	open($fh, '>', $state_file) or die;
	binmode $fh;
	print $fh $good;
	close($fh) or die;
	($ok, $log) = start_and_log();
	my $max = $node->safe_psql('postgres', 'SELECT max(id) FROM ids');
	$node->safe_psql('postgres',
		"INSERT INTO ids (phase, id) SELECT 'state file restored', idgen.snowflake_next() FROM generate_series(1, 10)"
	);
	is( $node->safe_psql(
			'postgres',
			"SELECT count(*), min(id) > $max FROM ids WHERE phase = 'state file restored'"),
		'10|t', 'state file restored: IDs again, above the earlier ones');
}

# ---------------------------------------------------------------------------
# Timestamp bits used up long ago: 30 bits of 1 s from 1970 ran out in 2004.
# (The state file is removed, as the IG006 hint says, to allow a new layout.)
# ---------------------------------------------------------------------------

sub new_layout
{
	my ($settings) = @_;
	$node->stop;
	unlink($state_file) or die "could not remove $state_file: $!"
	  if -e $state_file;
	set_layout($settings);
	return start_and_log();
}

my $exhausted_layout = "idgen.timestamp_bits = 30\nidgen.worker_bits = 10\n"
  . "idgen.sequence_bits = 23\nidgen.tick = '1s'\n";
($started, $log) =
  new_layout($exhausted_layout . "idgen.epoch = '1970-01-01'\n");
ok($started, 'timestamp bits used up: server starts');
like($log, qr/WARNING:\s+Snowflake timestamp bits run out in 0\.0 years/,
	'timestamp bits used up: WARNING at start-up');
{
	my $refused0 = refusals($node, 'timestamp_exhausted');
	my $count0 = $node->safe_psql('postgres', 'SELECT count(*) FROM ids');
	for my $i (1 .. 2)
	{
		my $r = try_sql($node,
			"INSERT INTO ids (phase, id) VALUES ('exhausted', idgen.snowflake_next())");
		is($r->{sqlstate}, 'IG004', "timestamp bits used up: call $i refused with IG004")
		  or diag("stdout: $r->{stdout}\nstderr: $r->{stderr}");
		like($r->{detail}, qr/30 timestamp bits .* ran out at 2004-01-10/,
			"timestamp bits used up: call $i: the detail says when they ran out");
	}
	is(refusals($node, 'timestamp_exhausted'),
		$refused0 + 2, 'refusal counter timestamp_exhausted went up by two');
	is($node->safe_psql('postgres', 'SELECT count(*) FROM ids'),
		$count0, 'timestamp bits used up: no ID issued');
	is( $node->safe_psql(
			'postgres',
			"SELECT years_left < 0, exhausted_at = '2004-01-10 13:37:04+00' FROM idgen.bit_budget()"),
		't|t', 'bit_budget: negative years left, exhausted in 2004');
}

# ---------------------------------------------------------------------------
# Timestamp bits running out while the server runs: 30 bits of 1 s ending a
# few seconds from now.
# ---------------------------------------------------------------------------

{
	my $end = time() + 8;
	my $epoch = utc_text($end - 2**30);
	($started, $log) = new_layout($exhausted_layout . "idgen.epoch = '$epoch'\n");
	ok($started, "bits run out at " . utc_text($end) . ": server starts");
	like($log, qr/WARNING:\s+Snowflake timestamp bits run out in 0\.0 years/,
		'bits about to run out: WARNING at start-up');
	is( $node->safe_psql(
			'postgres', 'SELECT extract(epoch FROM exhausted_at)::bigint FROM idgen.bit_budget()'),
		$end, 'bit_budget: exhausted_at is the expected second');

	# Issue in batches every 10 ms until IG004 (at most 60 s).
	my $r = try_sql(
		$node, q{
DO $$
DECLARE
	done bool := false;
	give_up timestamptz := clock_timestamp() + interval '60 s';
BEGIN
	WHILE NOT done LOOP
		BEGIN
			INSERT INTO ids (phase, id)
			SELECT 'running out', idgen.snowflake_next() FROM generate_series(1, 100);
		EXCEPTION WHEN SQLSTATE 'IG004' THEN
			done := true;
		END;
		IF clock_timestamp() > give_up THEN
			RAISE EXCEPTION 'no IG004 within 60 s';
		END IF;
		PERFORM pg_sleep(0.01);
	END LOOP;
END
$$;});
	is($r->{ret}, 0, 'bits running out: IDs until IG004')
	  or diag("stderr: $r->{stderr}");
	ok(time() >= $end, 'IG004 came no earlier than the end of the timestamp bits');
	# tick = id >> 33, worker = bits 23..32, sequence = bits 0..22
	is( $node->safe_psql(
			'postgres', q{
SELECT count(*) > 0,
       count(*) FILTER (WHERE id <= 0),
       count(*) FILTER (WHERE (id >> 23) & 1023 <> 3),
       max(id >> 33) = 2^30 - 1
  FROM ids WHERE phase = 'running out'}),
		't|0|0|t',
		'bits running out: IDs up to the last tick 2^30 - 1, all positive, worker id 3');
	is( $node->safe_psql(
			'postgres', q{
SELECT count(*) FROM (
  SELECT id, lag(id) OVER (ORDER BY ord) AS prev FROM ids
   WHERE phase = 'running out') s
 WHERE id <= prev}),
		'0', 'bits running out: IDs strictly increasing');
	my $r2 = try_sql($node, 'SELECT idgen.snowflake_next()');
	is($r2->{sqlstate}, 'IG004', 'after the end: refused with IG004, not a wrapped ID')
	  or diag("stdout: $r2->{stdout}\nstderr: $r2->{stderr}");
}

# ---------------------------------------------------------------------------
# A layout with about two years left warns at start-up, and works.
# ---------------------------------------------------------------------------

{
	my $end = time() + int(2 * 365.2425 * 86400);
	my $epoch = utc_text($end - 2**30);
	($started, $log) = new_layout($exhausted_layout . "idgen.epoch = '$epoch'\n");
	ok($started, 'two years left: server starts');
	like($log, qr/WARNING:\s+Snowflake timestamp bits run out in (1\.9|2\.0) years/,
		'two years left: WARNING at start-up');
	like($node->safe_psql('postgres', 'SELECT idgen.snowflake_next()'),
		qr/^\d+$/, 'two years left: snowflake_next() works');
	is( $node->safe_psql(
			'postgres', 'SELECT years_left BETWEEN 1.9 AND 2.1 FROM idgen.bit_budget()'),
		't', 'bit_budget: about two years left');
}

$node->stop;
done_testing();
