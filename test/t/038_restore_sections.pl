# pg_dump / pg_restore of a database with idgen into a running server that
# preloads idgen and is its own coordinator there.
#
# The target's lease worker takes a lease as soon as CREATE EXTENSION has
# run, so it writes idgen.leases, lease_layout and lease_history between
# the pre-data and the data section of a restore.  If the dump carried the
# source server's rows of those tables, the data section failed with
# duplicate keys, and a restored copy would make its server treat the
# source's holders as live.  The dump now carries no lease rows: a
# sectioned restore (pre-data, data, post-data) and a parallel one (-j 4)
# succeed, the target's lease tables hold only its own holdings, and its
# leasing works afterwards (IDs, a restart that releases and re-takes the
# id).

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use IdgenTest;
use IPC::Run ();

my $TTL = 6;

# The source: self-coordinating, with a table of Snowflake IDs.
my $src = PostgreSQL::Test::Cluster->new('source');
$src->init;
$src->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'idgen'
idgen.lease_ttl = $TTL
});
$src->start;
$src->safe_psql('postgres', q{
CREATE EXTENSION idgen;
CREATE TABLE orders (id bigint PRIMARY KEY DEFAULT idgen.snowflake_next(), item text);
});
ok(wait_state($src, 'held'), 'source: holds a lease from itself');
$src->safe_psql('postgres',
	"INSERT INTO orders (item) SELECT 'item ' || i FROM generate_series(1, 100) i");
my $src_holder = holder_of($src);
is($src->safe_psql('postgres',
		"SELECT count(*) FROM idgen.leases WHERE holder = '$src_holder'"),
	'1', "source: its own lease row ($src_holder)");

my $dump = PostgreSQL::Test::Utils::tempdir() . '/source.dump';
$src->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $src->connstr('postgres') ],
	'pg_dump -Fc of the source database');

# A running target whose lease worker works in database "restored".
sub new_target
{
	my ($name) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'idgen'
idgen.lease_ttl = $TTL
idgen.database = 'restored'
});
	$node->start;
	# idgen.status is read from database postgres
	$node->safe_psql('postgres', 'CREATE EXTENSION idgen; CREATE DATABASE restored');
	return $node;
}

sub restore_ok
{
	my ($node, $what, @args) = @_;
	my ($stdout, $stderr);
	my $ok = IPC::Run::run(
		[ 'pg_restore', '-d', $node->connstr('restored'), @args, $dump ],
		'>', \$stdout, '2>', \$stderr);
	ok($ok && $stderr !~ /error/i, "$what succeeds")
	  or diag("pg_restore: $stderr");
	return;
}

sub check_leasing
{
	my ($node) = @_;
	my $name = $node->name;
	my $holder = holder_of($node);
	ok(wait_state($node, 'held'), "$name: holds a lease after the restore");
	is( $node->safe_psql(
			'restored',
			"SELECT count(*) FROM idgen.leases WHERE holder <> '$holder'"),
		'0',
		"$name: no lease of another server (the source's) in idgen.leases");
	is( $node->safe_psql(
			'restored',
			"SELECT count(*) FROM idgen.lease_history WHERE holder <> '$holder'"),
		'0',
		"$name: no holding of another server in idgen.lease_history");
	is( $node->safe_psql(
			'restored',
			"SELECT count(*) FROM idgen.leases WHERE holder = '$holder' AND released_at IS NULL"),
		'1',
		"$name: its own live lease row");
	is($node->safe_psql('restored', 'SELECT count(*) FROM orders'),
		'100', "$name: the restored table has its 100 rows");
	$node->safe_psql('restored',
		"INSERT INTO orders (item) SELECT 'new ' || i FROM generate_series(1, 10) i");
	is($node->safe_psql('restored', 'SELECT count(*) FROM orders'),
		'110', "$name: new rows get Snowflake IDs");

	# Leasing goes on across a restart: released at shutdown, taken again.
	my $gen = status_of($node, 'lease_generation');
	$node->restart;
	ok(wait_state($node, 'held'), "$name: holds a lease again after a restart");
	cmp_ok(status_of($node, 'lease_generation'), '>', $gen,
		"$name: a new holding after the restart");
	is( $node->safe_psql(
			'restored',
			"SELECT count(*) FROM idgen.leases WHERE holder = '$holder' AND released_at IS NULL"),
		'1',
		"$name: one live lease row after the restart");
	return;
}

# Sectioned restore, with the target's lease worker holding a lease (and
# its rows written) before the data section runs.
my $t1 = new_target('sections');
restore_ok($t1, 'pg_restore --section=pre-data', '--section=pre-data');
ok(wait_state($t1, 'held', 30),
	'sections: the lease worker holds a lease between the sections');
restore_ok($t1, 'pg_restore --section=data', '--section=data');
restore_ok($t1, 'pg_restore --section=post-data', '--section=post-data');
check_leasing($t1);

# Parallel restore.
my $t2 = new_target('parallel');
restore_ok($t2, 'pg_restore -j 4', '-j', '4');
check_leasing($t2);

$t1->stop;
$t2->stop;
$src->stop;
done_testing();
