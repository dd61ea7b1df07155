# UUIDv7 order across a clean restart with the clock set back.
#
# A clean shutdown saves the last UUIDv7 position (idgen_uuidv7.state in
# the data directory) and the next start continues from it: with the clock
# 30 s behind after the restart, new IDs still sort above every ID issued
# before, counting on from the old position until the clock catches up.
# The server runs under libfaketime; clients use the real clock.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use IdgenTest;

require_libfaketime();

my $node = PostgreSQL::Test::Cluster->new('uuid_back');
$node->init;
$node->append_conf('postgresql.conf', qq(
shared_preload_libraries = 'idgen'
idgen.worker_id = 1
));
my $clock = $node->basedir . '/faketime';
set_clock($clock, '+0');
start_faked($node, $clock);
$node->safe_psql('postgres', 'CREATE EXTENSION idgen');
$node->safe_psql('postgres',
	'CREATE TABLE ids (n serial, u uuid); INSERT INTO ids (u) SELECT idgen.uuidv7() FROM generate_series(1, 1000)');

$node->stop('fast');
ok(-e $node->data_dir . '/idgen_uuidv7.state', 'clean shutdown saved the last UUIDv7 position');

set_clock($clock, '-30');
start_faked($node, $clock);
cmp_ok(time() - $node->safe_psql('postgres',
	"SELECT extract(epoch FROM clock_timestamp())"), '>', 25,
	'the server clock is 30 s behind the real clock after the restart');
ok(!-e $node->data_dir . '/idgen_uuidv7.state', 'the saved position is consumed at start-up');

$node->safe_psql('postgres',
	'INSERT INTO ids (u) SELECT idgen.uuidv7() FROM generate_series(1, 1000)');
is($node->safe_psql('postgres',
	'SELECT count(*) FROM ids a JOIN ids b ON a.n < b.n AND a.u >= b.u'),
	'0', 'IDs after the restart sort above every ID before it, despite the clock');
is($node->safe_psql('postgres', 'SELECT count(DISTINCT u) FROM ids'), '2000',
	'all IDs distinct');
cmp_ok($node->safe_psql('postgres',
	"SELECT extract(epoch FROM idgen.uuidv7_time(max(u::text)::uuid) - clock_timestamp()) FROM ids"),
	'>', 25, 'the new IDs continue from the old position (ahead of the stepped-back clock)');

set_clock($clock, '+0');
$node->stop('fast');
done_testing();
