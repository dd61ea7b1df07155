# Ranges sized by the rate this server hands out a tag's numbers (issue 14,
# item 3): a tag drawn fast gets ranges that last
# idgen.segment_min_range (100 ms) at that rate, instead of doubling one
# grant at a time through ranges that run out before the next grant can
# commit.
#
# One backend draws 2,000,000 numbers of a tag with step 1000 in one
# statement, with idgen.segment_max_step = 100000.  A tag never granted
# before (just created) has no rate yet, and a range of its step would run
# out in microseconds at one backend's rate, long before the next grant
# commits: so its first range is idgen.segment_max_step, as big as sizing
# by rate may make any range.  With the default idgen.segment_min_range the
# step is then at idgen.segment_max_step from the second grant on, or
# within four grants; at the rate of one statement here (millions of
# numbers a second), 100 ms asks for far more than 100000, so this needs
# the measured rate only to be above 1,000,000 a second, 20 times below
# what this machine does under load.  The first range does not change the
# tag's step in use (a slow tag goes on with ranges of its step, and the
# fence's headroom is counted in that step), and only a tag never granted
# gets it: after a restart the first grant is the step in use, doubled.
# Doubling alone (idgen.segment_min_range = 0, before sizing by rate)
# takes eight grants: 1000, 2000, ... 64000, 100000.  Grants never exceed
# idgen.segment_max_step, and every number lies in a granted range.

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
is($sizes->[0], 100000,
	'by rate: a new tag\'s first range is idgen.segment_max_step (no rate known yet)');
my ($next_max) = grep { $sizes->[$_] == 100000 } 1 .. $#$sizes;
ok(defined $next_max && $next_max <= 3,
	'by rate: the step reaches idgen.segment_max_step by the fourth grant')
  or diag("grant sizes: @$sizes");
ok(!grep({ $_ > 100000 } @$sizes), 'by rate: no grant above idgen.segment_max_step');

# One call of a new tag: its first range is big, its step in use is not.
$node->safe_psql('postgres', "SELECT idgen.segment_create('slow', 1, 1000)");
is($node->safe_psql('postgres', "SELECT idgen.segment_next('slow')"), '1',
	'slow: the first number');
is( $node->safe_psql('postgres',
		"SELECT current_end - current_start, step_in_use FROM idgen.segment_buffers() WHERE tag = 'slow'"),
	'100000|1000', 'slow: first range idgen.segment_max_step, step in use the tag\'s step');
is( $node->safe_psql('postgres',
		"SELECT next_value, current_step, fence >= next_value + 10 * 1000 FROM idgen.segment_alloc WHERE tag = 'slow'"),
	'100001|1000|t',
	'slow: the row records the range, the tag\'s step, and a fence above it by burn_steps steps');

# After a restart the tag has been granted: no first-range sizing, the step
# in use doubles (its last grant was within idgen.segment_duration).
$node->restart;
wait_for_worker($node, 'postgres');
is($node->safe_psql('postgres', "SELECT idgen.segment_next('slow')"), '100001',
	'slow after a restart: continues after the granted range');
is( $node->safe_psql('postgres',
		"SELECT string_agg((range_end - range_start)::text, ',' ORDER BY event_id) FROM idgen.segment_events WHERE tag = 'slow' AND kind = 'grant'"),
	'100000,2000', 'slow after a restart: the first grant is the step in use, doubled');

$node->append_conf('postgresql.conf', "idgen.segment_min_range = 0\n");
$node->restart;
wait_for_worker($node, 'postgres');
$sizes = draw('doubling');
is(join(',', @$sizes[0 .. 7]), '1000,2000,4000,8000,16000,32000,64000,100000',
	'doubling alone (idgen.segment_min_range = 0): eight grants to reach the ceiling');

done_testing();
