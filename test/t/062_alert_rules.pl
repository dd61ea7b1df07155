# idgen's Prometheus alert rules, checked by the real promtool.
#
# monitoring/prometheus/idgen-rules.yml must pass `promtool check rules`
# and its unit tests, `promtool test rules idgen-rules.test.yml`, which
# show each alert firing on synthetic faulty series and silent on healthy
# ones.  Every alert of the rules file has a unit test and a row in the
# "What to alert on" table of docs/monitoring.md, and every metric an alert
# uses is one docs/monitoring.md documents as exported.  A rules file with
# a broken expression fails the check (so the check is not vacuous).

use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use IPC::Run ();
use Cwd ();

my $promtool = '/usr/bin/promtool';
die "$promtool not found (Debian package prometheus, scripts/packages.d/ops.list)"
  unless -x $promtool;
my $root = "$FindBin::RealBin/../..";
my $dir = "$root/monitoring/prometheus";

sub slurp
{
	my ($f) = @_;
	open(my $fh, '<', $f) or die "$f: $!";
	local $/;
	return scalar <$fh>;
}

sub promtool
{
	my (@args) = @_;
	my $out = '';
	my $ok = IPC::Run::run([ $promtool, @args ], '>', \$out, '2>&1', IPC::Run::timeout(120));
	return ($ok, $out);
}

my ($ok, $out) = promtool('check', 'rules', "$dir/idgen-rules.yml");
ok($ok, 'promtool check rules idgen-rules.yml') or diag($out);
like($out, qr/SUCCESS: \d+ rules found/, 'rules found');

{
	# promtool test rules resolves rule_files relative to the test file
	my $cwd = Cwd::getcwd();
	chdir $dir or die "$dir: $!";
	($ok, $out) = promtool('test', 'rules', 'idgen-rules.test.yml');
	chdir $cwd;
	ok($ok, 'promtool test rules idgen-rules.test.yml') or diag($out);
}

my $rules = slurp("$dir/idgen-rules.yml");
my $tests = slurp("$dir/idgen-rules.test.yml");
my $doc = slurp("$root/docs/monitoring.md");
my ($alert_section) = $doc =~ /\n#+ What to alert on\n(.*?)(?:\n#|\z)/s;
my ($metric_section) = $doc =~ /\n#+ Prometheus metrics\n(.*?)(?:\n#|\z)/s;
ok(defined $alert_section && defined $metric_section, 'docs/monitoring.md has both sections');
$alert_section //= '';
$metric_section //= '';

my @alerts = $rules =~ /^\s*- alert: (\w+)/mg;
cmp_ok(scalar(@alerts), '>=', 10, scalar(@alerts) . ' alerts');
for my $a (@alerts)
{
	like($tests, qr/alertname: $a\n\s+exp_alerts:\n\s+- exp_labels/, "$a has a unit test where it fires");
	like($alert_section, qr/`$a`/, "$a is in docs/monitoring.md's What to alert on");
}
my %used = map { $_ => 1 } $rules =~ /\b(idgen_[a-z_]+)/g;
for my $m (sort keys %used)
{
	like($metric_section, qr/^\| `$m` \|/m, "metric $m used by the rules is documented as exported");
}

# A broken expression is rejected.
{
	my $tmp = PostgreSQL::Test::Utils::tempdir('rules');
	(my $broken = $rules) =~ s/increase\(idgen_probe_duplicates_total\[1h\]\) > 0/increase(idgen_probe_duplicates_total[1h] > 0/;
	open(my $fh, '>', "$tmp/broken.yml") or die;
	print $fh $broken;
	close $fh;
	($ok, $out) = promtool('check', 'rules', "$tmp/broken.yml");
	ok(!$ok, 'promtool rejects a rules file with a broken expression');
}

done_testing();
