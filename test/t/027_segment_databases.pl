# Segments in every database of a server (issue 12, item 6).
#
#  - Two databases besides idgen.database, each with the extension and a
#    tag of the same name 't': each is its own sequence of numbers (both
#    start at 1, dense), granted from and recorded in that database's own
#    idgen.segment_alloc and idgen.segment_events; idgen.segments shows
#    only the database's own tags.
#  - Workers: none for db1 and db2 until their first call, then one each
#    (pg_stat_activity, backend_type 'idgen worker'); a database whose tags
#    are all dropped loses its worker after the idle period, and the next
#    call starts one again.  DROP DATABASE of a database with a worker is
#    not held up by it.
#  - max_worker_processes bounds them: with room for one more worker, a
#    second database's first call fails with 53400 and a hint naming
#    max_worker_processes, and works once the first database's worker has
#    gone.
#  - Crashes with synchronous_commit = off (as 021): three rounds of taking
#    numbers in both databases and an immediate stop; no number repeats in
#    either database, and each database's numbers after a restart are above
#    its own before.
#  - Promotion of a streaming standby with a physical slot: the first grant
#    on the new timeline burns each database's tag up to the fence the
#    standby has for it, recorded as a burn event in that database; no
#    number the old primary handed out in a database comes again there.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use IdgenTest;
use Time::HiRes qw(usleep);

my @dbs = ('db1', 'db2');

sub workers_in
{
	my ($node, $db) = @_;
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'idgen worker' AND datname = '$db'"
	);
}

sub max_of { my $m; for (@_) { $m = $_ if !defined $m || $_ > $m } return $m; }

my $node = PostgreSQL::Test::Cluster->new('segment_databases');
$node->init(allows_streaming => 1);
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'idgen'
idgen.worker_id = 1
idgen.database = 'postgres'
synchronous_commit = off
wal_writer_delay = 10s
wal_writer_flush_after = 0
});
$node->start;
wait_for_worker($node, 'postgres');
for my $db (@dbs)
{
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, "CREATE EXTENSION idgen; SELECT idgen.segment_create('t', 1, 100);");
}
$node->safe_psql('postgres', "CREATE EXTENSION idgen; SELECT idgen.segment_create('t', 5000000, 100);");

########################################################################
# Same tag name, independent numbers, grants in each database.
########################################################################

is(workers_in($node, 'db1') + workers_in($node, 'db2'), 0,
	'no worker for db1 or db2 before their first call');

my %issued;    # db => { number => 1 }
my @dups;
sub record
{
	my ($db, $nums) = @_;
	for my $v (@$nums)
	{
		push @dups, "$db:$v" if $issued{$db}{$v}++;
	}
	return;
}

my $n1 = take($node, 't', 250, 'db1');
my $n2 = take($node, 't', 150, 'db2');
my $n0 = take($node, 't', 10, 'postgres');
is_deeply($n1, [ 1 .. 250 ], 'db1: tag t hands out 1 .. 250');
is_deeply($n2, [ 1 .. 150 ], 'db2: tag t of the same name hands out its own 1 .. 150');
is_deeply($n0, [ 5000000 .. 5000009 ], 'idgen.database: its tag t is a third one');
record('db1', $n1);
record('db2', $n2);
is(workers_in($node, 'db1') . workers_in($node, 'db2'), '11',
	'db1 and db2 each got a worker of their own');

for my $db (@dbs)
{
	my $max = $db eq 'db1' ? 250 : 150;
	is( $node->safe_psql($db,
			"SELECT min(range_start) = 1 AND max(range_end) > $max AND bool_and(range_start >= 1)"
			  . " FROM idgen.segment_events WHERE tag = 't' AND kind = 'grant'"),
		't', "$db: the grants are in db's own outbox");
	is( $node->safe_psql($db,
			"SELECT a.next_value = (SELECT max(range_end) FROM idgen.segment_events WHERE tag = 't' AND kind = 'grant')"
			  . " AND a.grants = (SELECT count(*) FROM idgen.segment_events WHERE tag = 't' AND kind = 'grant')"
			  . " FROM idgen.segment_alloc a WHERE tag = 't'"),
		't', "$db: its idgen.segment_alloc row agrees with its outbox");
	is( $node->safe_psql($db,
			"SELECT string_agg(tag || ':' || (current_start <= $max AND current_end > $max), ',') FROM idgen.segment_buffers()"),
		't:true', "$db: segment_buffers() shows only db's own tag, whose current range holds its last number");
}

########################################################################
# Crashes: no number repeats in either database.
########################################################################

for my $round (1 .. 3)
{
	my %before = map { $_ => max_of(keys %{ $issued{$_} }) } @dbs;
	my %first;
	for my $db (@dbs)
	{
		my $nums = take($node, 't', 300, $db);
		$first{$db} = $nums->[0];
		record($db, $nums);
	}
	# a block too, drawn from the same buffers
	my $block = $node->safe_psql('db1', "SELECT idgen.segment_next('t', 50)");
	record('db1', [ $block .. $block + 49 ]);
	$node->stop('immediate');
	$node->start;
	for my $db (@dbs)
	{
		my $nums = take($node, 't', 20, $db);
		cmp_ok($nums->[0], '>', max_of(keys %{ $issued{$db} }),
			"crash $round, $db: the first number after the restart is above all before");
		record($db, $nums);
	}
}
is(scalar(@dups), 0, 'crashes: no number handed out twice in either database')
  or diag("repeated: @dups[0 .. ($#dups < 9 ? $#dups : 9)]");

########################################################################
# Workers go away with their database's last tag, and come back.
########################################################################

$node->safe_psql('db2', "SELECT idgen.segment_drop('t')");
my ($ok, $out, $waited) = poll_until($node,
	"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'idgen worker' AND datname = 'db2'",
	'0', 60);
ok($ok, sprintf('db2: its worker exits once it has no tag (after %.1f s)', $waited));
is(workers_in($node, 'db1'), '1', 'db1: its worker stays while db1 has tags');
$node->safe_psql('db2', "SELECT idgen.segment_create('t', 100000, 100)");
is($node->safe_psql('db2', "SELECT idgen.segment_next('t')"), '100000',
	'db2: the next call starts a worker again and gets its number');
is(workers_in($node, 'db2'), '1', 'db2: it has a worker again');

# DROP DATABASE is not held up by the database's worker.
$node->safe_psql('postgres', 'CREATE DATABASE db3');
$node->safe_psql('db3', "CREATE EXTENSION idgen; SELECT idgen.segment_create('t'); SELECT idgen.segment_next('t');");
is(workers_in($node, 'db3'), '1', 'db3: worker started');
my $r = try_sql($node, 'DROP DATABASE db3');
is($r->{ret}, 0, 'DROP DATABASE of a database with a segment worker succeeds')
  or diag($r->{stderr});

########################################################################
# max_worker_processes bounds the workers.
########################################################################

my $fixed = $node->safe_psql('postgres',
	"SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'idgen%' AND datname = 'postgres'");
$node->append_conf('postgresql.conf', sprintf(q{
max_logical_replication_workers = 0
max_worker_processes = %d
}, $fixed + 1));
$node->restart;
is($node->safe_psql('db1', "SELECT idgen.segment_next('t') > 0"), 't',
	'one worker slot left: db1 gets its worker');
$r = try_sql($node, "SELECT idgen.segment_next('t')", dbname => 'db2');
is($r->{sqlstate}, '53400', 'no worker slot left: db2 is refused with 53400');
like($r->{stderr}, qr/could not start idgen's segment worker for database "db2"/,
	'the message names the database');
like($r->{stderr}, qr/HINT:.*max_worker_processes/, 'the hint names max_worker_processes');
$node->safe_psql('db1', "SELECT idgen.segment_drop('t')");
($ok, $out, $waited) = poll_until($node,
	q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'idgen worker' AND datname = 'db1'},
	'0', 60);
ok($ok, 'db1: its worker exits once its tag is dropped');
my $got;
for (1 .. 100)
{
	$r = try_sql($node, "SELECT idgen.segment_next('t')", dbname => 'db2');
	if ($r->{ret} == 0) { $got = $r->{stdout}; last; }
	last unless $r->{sqlstate} eq '53400';
	usleep(100_000);
}
ok(defined $got && $got > 0, 'db2: with the slot free again, it gets its worker and a number')
  or diag($r->{stderr});
$node->append_conf('postgresql.conf', q{
max_logical_replication_workers = 4
max_worker_processes = 8
});
$node->safe_psql('db1', "SELECT idgen.segment_create('t', 1000000, 100)");
%issued = ();

########################################################################
# Promotion of a streaming standby: the burn works per database.
########################################################################

$node->append_conf('postgresql.conf', "synchronous_commit = on\n");
$node->restart;
$node->safe_psql('postgres', "SELECT pg_create_physical_replication_slot('standby')");
$node->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('segment_databases_standby');
$standby->init_from_backup($node, 'b', has_streaming => 1);
$standby->append_conf('postgresql.conf', "primary_slot_name = 'standby'\n");
$standby->start;

for my $db (@dbs)
{
	record($db, take($node, 't', 500, $db));
}
$node->wait_for_catchup($standby);
for my $db (@dbs)
{
	record($db, take($node, 't', 500, $db));
}
my %fence = map {
	$_ => $standby->safe_psql($_, "SELECT fence FROM idgen.segment_alloc WHERE tag = 't'")
} @dbs;
$node->stop('immediate');
$standby->promote;

for my $db (@dbs)
{
	my $old_max = max_of(keys %{ $issued{$db} });
	my $nums = take($standby, 't', 100, $db);
	cmp_ok($nums->[0], '>', $old_max,
		"promoted, $db: numbers continue above all the old primary handed out there");
	cmp_ok($nums->[0], '>=', $fence{$db},
		"promoted, $db: and at or above the fence the standby had for db ($fence{$db})");
	record($db, $nums);
	is( $standby->safe_psql($db,
			"SELECT count(*) = 1 AND min(range_end) >= $fence{$db} FROM idgen.segment_events"
			  . " WHERE tag = 't' AND kind = 'burn' AND timeline = 2"),
		't', "promoted, $db: one burn up to db's fence, on timeline 2, in db's outbox");
}
is(scalar(@dups), 0, 'promotion: no number handed out twice in either database');
is(workers_in($standby, 'db1') . workers_in($standby, 'db2'), '11',
	'promoted: each database got a worker');

$standby->stop;
done_testing();
