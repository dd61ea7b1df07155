# UUIDv7 while the clock steps back at run time.
#
# With the library preloaded, IDs continue from the last issued position,
# counting, when the clock steps back: they stay strictly increasing and
# unique across backends, and every backend that sees its clock go back
# counts the step in idgen_clock_step_back_total{generator="uuidv7"}.  Once
# the clock is past the last issued time again, the embedded time follows
# the clock again.  The server runs under libfaketime.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use IdgenTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

require_libfaketime();

my $node = PostgreSQL::Test::Cluster->new('uuid_step');
$node->init;
$node->append_conf('postgresql.conf', qq(
shared_preload_libraries = 'idgen'
idgen.worker_id = 1
));
my $clock = $node->basedir . '/faketime';
set_clock($clock, '+0');
start_faked($node, $clock);
$node->safe_psql('postgres', 'CREATE EXTENSION idgen');
$node->safe_psql('postgres', 'CREATE TABLE ids (n bigserial, u uuid, t timestamptz DEFAULT clock_timestamp())');

my $steps_sql = q{SELECT value FROM idgen.stats
  WHERE metric = 'idgen_clock_step_back_total' AND labels->>'generator' = 'uuidv7'};

# One session stays open across the step, so the same backend sees its own
# clock go back.
my $bg = $node->background_psql('postgres');
$bg->query_safe('INSERT INTO ids (u) SELECT idgen.uuidv7() FROM generate_series(1, 1000)');
my $steps_before = $node->safe_psql('postgres', $steps_sql);

set_clock($clock, '-5');
cmp_ok(server_clock_offset($node), '<', -4, 'the server clock stepped back 5 s');
$bg->query_safe('INSERT INTO ids (u) SELECT idgen.uuidv7() FROM generate_series(1, 1000)');
$node->safe_psql('postgres',
	'INSERT INTO ids (u) SELECT idgen.uuidv7() FROM generate_series(1, 1000)');
$bg->query_safe('SELECT 1');	# end of transaction: counters are flushed

is($node->safe_psql('postgres',
	'SELECT count(*) FROM ids a JOIN ids b ON a.n < b.n AND a.u >= b.u'),
	'0', 'IDs issued after the step back still sort above every earlier ID');
is($node->safe_psql('postgres', 'SELECT count(DISTINCT u) FROM ids'), '3000',
	'all IDs distinct');
cmp_ok($node->safe_psql('postgres', $steps_sql), '>', $steps_before,
	'the step back was counted in idgen_clock_step_back_total{generator="uuidv7"}');
cmp_ok($node->safe_psql('postgres',
	'SELECT extract(epoch FROM idgen.uuidv7_time(u) - t) FROM ids ORDER BY n DESC LIMIT 1'),
	'>', 4, 'while the clock is behind, the embedded time continues from the last issued time');

set_clock($clock, '+0');
$node->safe_psql('postgres',
	'INSERT INTO ids (u) SELECT idgen.uuidv7() FROM generate_series(1, 1000)');
is($node->safe_psql('postgres',
	'SELECT count(*) FROM ids a JOIN ids b ON a.n < b.n AND a.u >= b.u'),
	'0', 'back on the real clock, IDs still increase');
cmp_ok(abs($node->safe_psql('postgres',
	'SELECT extract(epoch FROM idgen.uuidv7_time(u) - t) FROM ids ORDER BY n DESC LIMIT 1')),
	'<', 0.01, 'and the embedded time follows the clock again');

$bg->quit;
$node->stop;
done_testing();
