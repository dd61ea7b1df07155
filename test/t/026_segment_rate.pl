# Ranges sized by the rate this server hands out a tag's numbers (issue 14,
# item 3): a tag drawn fast gets ranges that last
# idgen.segment_min_range (100 ms) at that rate from its second grant on,
# instead of doubling one grant at a time through ranges that run out
# before the next grant can commit.
#
# One backend draws 2,000,000 numbers of a tag with step 1000 in one
# statement, with idgen.segment_max_step = 100000.  The first grant is the
# tag's step (nothing is known yet).  With the default
# idgen.segment_min_range the step reaches idgen.segment_max_step within
# four grants; at the rate of one statement here (millions of numbers a
# second), 100 ms asks for far more than 100000, so this needs the
# measured rate only to be above 1,000,000 a second, 20 times below what
# this machine does under load.  Doubling alone (idgen.segment_min_range
# = 0, before this change) takes eight grants: 1000, 2000, ... 64000,
# 100000.  Grants never exceed idgen.segment_max_step, and every number
# lies in a granted range.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use IdgenTest;

my $node = PostgreSQL::Test::Cluster->new('segment_rate');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'idgen'
idgen.worker_id = 1
idgen.database = 'postgres'
idgen.segment_max_step = 100000
});
$node->start;
wait_for_worker($node, 'postgres');
$node->safe_psql('postgres', 'CREATE EXTENSION idgen');

# Draw 2,000,000 numbers of a new tag; return the sizes of its grants.
sub draw
{
	my ($tag) = @_;
	$node->safe_psql('postgres', "SELECT idgen.segment_create('$tag', 1, 1000)");
	is( $node->safe_psql('postgres',
			"SELECT count(DISTINCT n) FROM (SELECT idgen.segment_next('$tag') AS n FROM generate_series(1, 2000000)) s"),
		'2000000', "$tag: 2,000,000 distinct numbers");
	return [ split /,/, $node->safe_psql('postgres',
		"SELECT string_agg((range_end - range_start)::text, ',' ORDER BY event_id) FROM idgen.segment_events WHERE tag = '$tag' AND kind = 'grant'") ];
}

is($node->safe_psql('postgres', 'SHOW idgen.segment_min_range'), '100ms',
	'idgen.segment_min_range defaults to 100 ms');
my $sizes = draw('fast');
is($sizes->[0], 1000, 'by rate: the first grant is the tag\'s step');
my ($first_max) = grep { $sizes->[$_] == 100000 } 0 .. $#$sizes;
ok(defined $first_max && $first_max <= 3,
	'by rate: the step reaches idgen.segment_max_step by the fourth grant')
  or diag("grant sizes: @$sizes");
ok(!grep({ $_ > 100000 } @$sizes), 'by rate: no grant above idgen.segment_max_step');

$node->append_conf('postgresql.conf', "idgen.segment_min_range = 0\n");
$node->restart;
wait_for_worker($node, 'postgres');
$sizes = draw('doubling');
is(join(',', @$sizes[0 .. 7]), '1000,2000,4000,8000,16000,32000,64000,100000',
	'doubling alone (idgen.segment_min_range = 0): eight grants to reach the ceiling');

done_testing();
