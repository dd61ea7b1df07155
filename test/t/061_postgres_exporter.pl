# idgen's metrics through the real prometheus-postgres-exporter.
#
# Starts Debian's postgres_exporter on a loopback port with
# monitoring/postgres_exporter/idgen.yaml as its --extend.query-path,
# against a preloaded server with the extension, and scrapes /metrics:
#   - every metric the "Prometheus metrics" table of docs/monitoring.md
#     documents appears,
#     and no idgen_* metric appears that the table does not document;
#   - the values are plausible: the lease is held under a worker id, its
#     deadline lies within the TTL, the clock and layout figures are sane;
#   - issued-ID counters move by what was generated (Snowflake, UUIDv7,
#     segment), the segment tag's gauges follow its grants;
#   - a planted duplicate shows in the probe's duplicate counters, and the
#     scheduled probe's last run is recent.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use IdgenTest;
use IPC::Run ();
use HTTP::Tiny;
use Time::HiRes qw(usleep);

my $exporter = '/usr/bin/prometheus-postgres-exporter';
die "$exporter not found (Debian package prometheus-postgres-exporter, scripts/packages.d/ops.list)"
  unless -x $exporter;
my $root = "$FindBin::RealBin/../..";
my $queries = "$root/monitoring/postgres_exporter/idgen.yaml";

# The documented metrics: the first column of docs/monitoring.md's table.
my %documented;
{
	open(my $fh, '<', "$root/docs/monitoring.md") or die "docs/monitoring.md: $!";
	my $in = 0;
	while (my $line = <$fh>)
	{
		if ($line =~ /^#+ Prometheus metrics/) { $in = 1; next; }
		last if $in && $line =~ /^#/;
		$documented{$1} = 1 if $in && $line =~ /^\| `(idgen_[a-z_]+)`/;
	}
}
cmp_ok(scalar(keys %documented), '>=', 30, 'docs/monitoring.md documents the exporter metrics in a table');

my $node = PostgreSQL::Test::Cluster->new('exported');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'idgen'
idgen.probe_interval = 1
# ranges of the tag's step (100), so that the 700 numbers drawn below take
# grants (a new tag's first range is idgen.segment_max_step long)
idgen.segment_max_step = 100
});
$node->start;
$node->safe_psql(
	'postgres', q{
CREATE EXTENSION idgen;
CREATE TABLE orders (id bigint NOT NULL DEFAULT idgen.snowflake_next());
CREATE INDEX ON orders (id);
SELECT idgen.probe_register('orders', 'id', '1 hour');
SELECT idgen.segment_create('invoice_no', start => 1000, step => 100);
});
ok(wait_state($node, 'held', 30), 'the server leases a worker id from itself');

my $port = PostgreSQL::Test::Cluster::get_free_port();
my ($out, $err) = ('', '');
my $h = IPC::Run::start(
	[
		$exporter, "--web.listen-address=127.0.0.1:$port",
		'--disable-default-metrics', '--disable-settings-metrics',
		"--extend.query-path=$queries", '--log.level=warn'
	],
	'>', \$out, '2>', \$err,
	init => sub {
		$ENV{DATA_SOURCE_NAME} = $node->connstr('postgres') . ' sslmode=disable';
	});
END { local $?; $h->kill_kill if $h && $h->pumpable; }

my $http = HTTP::Tiny->new(timeout => 10);

# One scrape: { 'name{label="v",...}' => value } with labels sorted.
sub scrape
{
	my $res;
	for (1 .. 100)
	{
		$res = $http->get("http://127.0.0.1:$port/metrics");
		last if $res->{success};
		usleep(100_000);
	}
	die "scrape failed: $res->{status} $res->{content}; exporter stderr: $err"
	  unless $res->{success};
	my %m;
	for my $line (split /\n/, $res->{content})
	{
		next if $line =~ /^#/;
		next unless $line =~ /^(idgen_[a-z_]+)(?:\{(.*)\})? (\S+)$/;
		my ($name, $labels, $v) = ($1, $2 // '', $3);
		my @l = sort grep { !/^server=/ } split /,(?=[a-z_]+=")/, $labels;
		$m{ $name . (@l ? '{' . join(',', @l) . '}' : '') } = $v;
	}
	return \%m;
}

sub names { my ($m) = @_; my %n; for (keys %$m) { /^([a-z_]+)/; $n{$1} = 1; } return \%n; }

# Numbers to move the counters, and a first probe run.
$node->safe_psql('postgres', q{
INSERT INTO orders SELECT FROM generate_series(1, 100);
SELECT count(idgen.uuidv7()) FROM generate_series(1, 10);
});
$node->safe_psql('postgres', "SELECT idgen.segment_next('invoice_no')");
poll_until($node, 'SELECT runs > 0 FROM idgen.probe_status', 't', 30);

my $m1 = scrape();
my $got = names($m1);
for my $name (sort keys %documented)
{
	ok($got->{$name}, "documented metric $name is exported");
}
for my $name (sort keys %$got)
{
	ok($documented{$name}, "exported metric $name is documented");
}

# Plausible values
is($m1->{'idgen_lease_held{state="held"}'}, 1, 'idgen_lease_held{state="held"} is 1');
cmp_ok($m1->{'idgen_lease_worker_id{state="held"}'}, '>=', 0, 'a worker id is in force');
is($m1->{'idgen_lease_ttl_seconds{state="held"}'}, 30, 'idgen_lease_ttl_seconds is the TTL');
{
	my $d = $m1->{'idgen_lease_deadline_seconds{state="held"}'};
	ok($d > 0 && $d <= 30, "lease deadline $d s lies within the TTL");
	my $exp = $m1->{'idgen_lease_expiry_timestamp_seconds{state="held"}'} - time;
	ok($exp > -5 && $exp <= 31, "lease expiry $exp s from now");
}
cmp_ok($m1->{'idgen_lease_workers_in_use{state="held"}'}, '>=', 1, 'workers in use');
is($m1->{idgen_snowflake_blocked}, 0, 'Snowflake is not blocked');
is($m1->{idgen_snowflake_worker_capacity}, 1024, 'worker capacity of the default layout');
cmp_ok($m1->{idgen_snowflake_exhaustion_timestamp_seconds}, '>', time + 60 * 365 * 86400,
	'the timestamp bits last decades');
ok(abs($m1->{idgen_snowflake_last_issued_timestamp_seconds} - time) < 120, 'last issued tick is recent');
cmp_ok($m1->{idgen_snowflake_time_floor_timestamp_seconds}, '>=',
	$m1->{idgen_snowflake_last_issued_timestamp_seconds}, 'time floor at or above the last issued tick');
like((grep { /^idgen_clock_synchronised\{/ } keys %$m1)[0], qr/state="/, 'clock metrics carry the clock state');
is($m1->{'idgen_probe_worker_running'}, 1, 'probe worker running');
my $probe = 'column="id",kind="snowflake",table="orders"';
is($m1->{"idgen_probe_interval_seconds{$probe}"}, 1, 'probe interval');
is($m1->{"idgen_probe_window_seconds{$probe}"}, 3600, 'probe window');
is($m1->{"idgen_probe_indexed{$probe}"}, 1, 'probe column indexed');
ok(abs($m1->{"idgen_probe_last_run_timestamp_seconds{$probe}"} - time) < 60, 'scheduled probe ran recently');
is($m1->{"idgen_probe_duplicates_total{$probe}"}, 0, 'no duplicate yet');
is($m1->{'idgen_segment_tag_step{tag="invoice_no"}'}, 100, 'segment step');
cmp_ok($m1->{'idgen_segment_tag_numbers_buffered{tag="invoice_no"}'}, '>', 0, 'segment numbers buffered');
cmp_ok($m1->{'idgen_segment_tag_grants_total{tag="invoice_no"}'}, '>=', 1, 'segment grants for the tag');
cmp_ok($m1->{idgen_segment_grants_total}, '>=', 1, 'segment grants on the server');

# Counters move by what is generated.
$node->safe_psql('postgres', q{
SELECT count(idgen.snowflake_next()) FROM generate_series(1, 5000);
SELECT count(idgen.uuidv7()) FROM generate_series(1, 3000);
SELECT count(idgen.segment_next('invoice_no')) FROM generate_series(1, 700);
});
# a planted duplicate, found by the next scheduled run
my $runs = $node->safe_psql('postgres', 'SELECT runs FROM idgen.probe_status');
$node->safe_psql('postgres', 'INSERT INTO orders SELECT max(id) FROM orders');
poll_until($node, "SELECT runs > $runs + 1 FROM idgen.probe_status", 't', 30);
my $m2 = scrape();
for my $g ([ 'snowflake', 5000 ], [ 'uuidv7', 3000 ], [ 'segment', 700 ])
{
	my ($gen, $n) = @$g;
	my $k = "idgen_ids_issued_total{generator=\"$gen\"}";
	cmp_ok($m2->{$k} - $m1->{$k}, '>=', $n, "$k moved by at least $n");
}
cmp_ok($m2->{'idgen_segment_tag_grants_total{tag="invoice_no"}'}, '>',
	$m1->{'idgen_segment_tag_grants_total{tag="invoice_no"}'}, 'segment grants for the tag moved');
cmp_ok($m2->{"idgen_probe_runs_total{$probe}"}, '>', $m1->{"idgen_probe_runs_total{$probe}"}, 'probe runs moved');
cmp_ok($m2->{"idgen_probe_duplicates_total{$probe}"}, '>=', 1, 'planted duplicate counted in idgen_probe_duplicates_total');
is($m2->{"idgen_probe_last_duplicates{$probe}"}, 1, 'idgen_probe_last_duplicates shows it');
cmp_ok($m2->{"idgen_probe_ids_checked{$probe}"}, '>=', 100, 'probe checked the rows');

is($m2->{'idgen_refusals_total{generator="snowflake",reason="no_worker_id"}'}, 0,
	'refusal counters are exported (none happened)');

$h->kill_kill;
unlike($err, qr/level=(error|warn)/i, 'exporter logged no query error or warning')
  or diag($err);
$node->stop;
done_testing();
