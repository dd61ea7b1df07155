# An early floor raise must not fail a call its durable floor already covers.
#
# snowflake_next() starts raising the time floor once issued time is within
# half of idgen.time_floor_reserve of it, so that callers rarely wait.  That
# early raise is an optimisation: the ID of the call that happens to make it
# is below the durable floor already.  With the synchronous standby gone,
# the raise's wait ran into idgen.sync_standby_timeout and the call failed
# with IG009 although nothing needed the standby: IDs stopped half a
# reserve early.  Expected: calls below the floor keep succeeding (the
# early raise gives up quietly, and the floor stays where the standby
# confirmed it); only a call above the floor waits and fails with IG009;
# with the standby back, IDs continue, all distinct.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use IdgenTest;

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', q{
shared_preload_libraries = 'idgen'
idgen.worker_id = 1
idgen.time_floor_reserve = '20s'
idgen.sync_standby_timeout = '300ms'
});
$primary->start;
$primary->safe_psql('postgres', 'CREATE EXTENSION idgen');
$primary->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'b', has_streaming => 1);
$standby->start;

$primary->safe_psql('postgres',
	"ALTER SYSTEM SET synchronous_standby_names = 'standby'; SELECT pg_reload_conf()");
ok( $primary->poll_query_until(
		'postgres',
		"SELECT sync_state = 'sync' FROM pg_stat_replication WHERE application_name = 'standby'"),
	'the standby is synchronous');

# IDs are kept here, not in a table: with the synchronous standby gone a
# commit that wrote would wait for it.
my @ids;
my $take = 'SELECT idgen.snowflake_next() FROM generate_series(1, 100)';
push @ids, split /\n/, $primary->safe_psql('postgres', $take);
my $floor = $primary->safe_psql('postgres', 'SELECT time_floor FROM idgen.status');
ok($floor ne '', "floor raised with the standby up: $floor");

$standby->stop;

# Into the early-raise zone: issued time within half the reserve (10 s) of
# the floor, but well below it.
my ($in_zone) = poll_until($primary,
	"SELECT clock_timestamp() > time_floor - interval '9 s' FROM idgen.status",
	't', 60);
ok($in_zone, 'issued time is within half the reserve of the floor');

my ($ret, $out, $err) = $primary->psql('postgres', $take,
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
is($ret, 0, 'calls below the durable floor succeed with the standby gone')
  or diag($err);
push @ids, split /\n/, $out;
is($primary->safe_psql('postgres', 'SELECT time_floor FROM idgen.status'),
	$floor, 'the floor stays where the standby confirmed it');

# Above the floor the standby is needed: IG009 within the bound.
my ($past) = poll_until($primary,
	'SELECT clock_timestamp() > time_floor FROM idgen.status', 't', 60);
ok($past, 'the clock is past the durable floor');
($ret, $out, $err) = $primary->psql('postgres', 'SELECT idgen.snowflake_next()',
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($err, qr/IG009/, 'above the floor the call fails with IG009');

$standby->start;
ok( $primary->poll_query_until(
		'postgres',
		"SELECT sync_state = 'sync' FROM pg_stat_replication WHERE application_name = 'standby'"),
	'the standby is back');
push @ids, split /\n/, $primary->safe_psql('postgres', $take);
my %seen;
$seen{$_}++ for @ids;
is(scalar(keys %seen), scalar(@ids), scalar(@ids) . ' IDs, every one distinct');

done_testing();
