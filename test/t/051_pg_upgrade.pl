# pg_upgrade of a cluster with idgen (same major: the binaries under test
# on both sides), and the data-directory state files it does not carry.
#
#  - The old cluster (idgen preloaded, static worker id 1) issues Snowflake
#    IDs and UUIDv7s into tables, and is stopped cleanly.
#  - pg_upgrade (copy mode, which leaves the old cluster intact) to a new
#    cluster configured like the old one, idgen preloaded in both: it
#    passes, and the tables, the extension and its version arrive.
#  - Without scripts/pg_upgrade_carry, the new cluster has neither
#    idgen_snowflake.state nor the WAL of the floor: started with its clock
#    5 s behind the last Snowflake ID issued before the upgrade
#    (libfaketime), it issues Snowflake IDs and UUIDv7s below the last
#    ones issued before the upgrade.  This is the hazard the carry removes (and
#    what makes the next part able to fail).
#  - With scripts/pg_upgrade_carry between pg_upgrade and the first start,
#    the clock again 5 s behind that ID: Snowflake calls are refused (IG002) until
#    the clock passes the carried floor, then every ID is above every ID
#    issued before the upgrade (so none repeats one); UUIDv7s continue above
#    the old ones at once; a changed layout is refused (IG006).

use strict;
use warnings;

use Cwd;
use Time::HiRes;
use FindBin;
use lib $FindBin::RealBin;
use IdgenTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

require_libfaketime();

my $carry = "$FindBin::RealBin/../../scripts/pg_upgrade_carry";
my $conf = qq{
shared_preload_libraries = 'idgen'
idgen.worker_id = 1
};

my $old = PostgreSQL::Test::Cluster->new('old');
$old->init;
$old->append_conf('postgresql.conf', $conf);
$old->start;
$old->safe_psql('postgres', q{
CREATE EXTENSION idgen;
CREATE TABLE sf (id bigint PRIMARY KEY);
CREATE TABLE uu (id uuid PRIMARY KEY);
INSERT INTO sf SELECT idgen.snowflake_next() FROM generate_series(1, 20000);
INSERT INTO uu SELECT idgen.uuidv7() FROM generate_series(1, 20000);
});
my $max_sf = $old->safe_psql('postgres', 'SELECT max(id) FROM sf');
my $last_ts = $old->safe_psql('postgres',
	"SELECT extract(epoch FROM ts) FROM idgen.snowflake_decode($max_sf)");
my $max_uu = $old->safe_psql('postgres', 'SELECT id FROM uu ORDER BY id DESC LIMIT 1');
my $version = $old->safe_psql('postgres', "SELECT extversion FROM pg_extension WHERE extname = 'idgen'");
$old->stop;
ok(-f $old->data_dir . '/idgen_snowflake.state', 'the old cluster has idgen_snowflake.state');
ok(-f $old->data_dir . '/idgen_uuidv7.state', 'the old cluster has idgen_uuidv7.state');

# The libfaketime offset that puts a server's clock $s seconds before the
# last Snowflake ID the old cluster issued (pg_upgrade itself takes a few
# seconds, so a fixed offset from now would not be behind that ID).
sub behind_last_id
{
	my ($s) = @_;
	return sprintf('%.3f', $last_ts - Time::HiRes::time() - $s);
}

# A new cluster made by pg_upgrade from $old.
sub upgraded
{
	my ($name) = @_;
	my $new = PostgreSQL::Test::Cluster->new($name);
	$new->init;
	$new->append_conf('postgresql.conf', $conf);
	my $bindir = $new->config_data('--bindir');
	my $cwd = getcwd();
	my $dir = PostgreSQL::Test::Utils::tempdir();
	chdir $dir;
	command_ok(
		[
			'pg_upgrade', '--no-sync',
			'-d', $old->data_dir, '-D', $new->data_dir,
			'-b', $bindir, '-B', $bindir,
			'-s', $new->host, '-p', $old->port, '-P', $new->port
		],
		"$name: pg_upgrade with idgen preloaded in both clusters");
	chdir $cwd;
	return $new;
}

# ---------------------------------------------------------------------------
# Without the carry: the hazard.
# ---------------------------------------------------------------------------
my $bare = upgraded('bare');
ok(!-f $bare->data_dir . '/idgen_snowflake.state',
	'pg_upgrade does not carry idgen_snowflake.state');
my $clock_bare = $bare->basedir . '/faketime';
set_clock($clock_bare, behind_last_id(5));
start_faked($bare, $clock_bare);
my $low = $bare->safe_psql('postgres',
	"SELECT count(*) FROM (SELECT idgen.snowflake_next() AS id FROM generate_series(1, 1000)) s WHERE id <= $max_sf");
cmp_ok($low, '>', 0,
	"without the carry, clock 5 s behind the last ID: $low of 1000 Snowflake IDs are at or below the last one issued before the upgrade");
my $low_uu = $bare->safe_psql('postgres',
	"SELECT count(*) FROM (SELECT idgen.uuidv7() AS id FROM generate_series(1, 1000)) s WHERE id <= '$max_uu'");
cmp_ok($low_uu, '>', 0,
	"without the carry: $low_uu of 1000 UUIDv7s are at or below the last one issued before the upgrade");
$bare->stop;

# ---------------------------------------------------------------------------
# With the carry, clock 5 s behind.
# ---------------------------------------------------------------------------
my $new = upgraded('new');
my ($out, $err) = ('', '');
IPC::Run::run [ 'bash', $carry, $old->data_dir, $new->data_dir ], '>', \$out, '2>', \$err;
like($out, qr/idgen: 2 state file\(s\) carried/, 'scripts/pg_upgrade_carry carries both state files')
  or diag("stdout: $out\nstderr: $err");

my $clock = $new->basedir . '/faketime';
set_clock($clock, behind_last_id(5));
start_faked($new, $clock);
is($new->safe_psql('postgres', "SELECT extract(epoch FROM clock_timestamp()) < $last_ts - 3"),
	't', 'the new server\'s clock is about 5 s behind the last ID issued before the upgrade');
is($new->safe_psql('postgres', "SELECT extversion FROM pg_extension WHERE extname = 'idgen'"),
	$version, "the extension arrived at version $version");
is($new->safe_psql('postgres', 'SELECT count(*) FROM sf'), '20000', 'the data arrived');

my $r = try_sql($new, 'SELECT idgen.snowflake_next()');
is($r->{sqlstate}, 'IG002', 'right after the upgrade, behind the carried floor: refused with IG002')
  or diag($r->{stderr} . $r->{stdout});

# UUIDv7s continue above the old ones at once, clock behind or not.
is($new->safe_psql('postgres',
		"SELECT count(*) FROM (SELECT idgen.uuidv7() AS id FROM generate_series(1, 1000)) s WHERE id <= '$max_uu'"),
	'0', 'UUIDv7s after the upgrade are all above the last one issued before it');

my ($ok, $got, $waited) = poll_until($new, 'SELECT idgen.snowflake_next() > 0', 't', 30);
ok($ok, sprintf('Snowflake IDs resume once the clock passes the carried floor (after %.1f s)', $waited));
$new->safe_psql('postgres',
	'INSERT INTO sf SELECT idgen.snowflake_next() FROM generate_series(1, 20000) ON CONFLICT DO NOTHING');
is($new->safe_psql('postgres', 'SELECT count(*) FROM sf'), '40000',
	'20000 Snowflake IDs after the upgrade: none repeats one issued before it');
is($new->safe_psql('postgres',
		"SELECT count(*) FROM (SELECT idgen.snowflake_next() AS id FROM generate_series(1, 1000)) s WHERE id <= $max_sf"),
	'0', 'every Snowflake ID after the upgrade is above every ID issued before it');
$new->stop;

# The carried layout is enforced: another layout is refused.
$new->append_conf('postgresql.conf', "idgen.sequence_bits = 11\nidgen.worker_bits = 11\n");
set_clock($clock, '+0');
start_faked($new, $clock);
$r = try_sql($new, 'SELECT idgen.snowflake_next()');
is($r->{sqlstate}, 'IG006', 'the carried state file holds the layout: a changed layout is refused (IG006)')
  or diag($r->{stderr});
$new->stop;

done_testing();
