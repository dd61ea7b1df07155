# Buffered segment ranges are forgotten once the table they were granted
# from is gone, in every backend, including one that cached the slot
# (issue 9, item 7).
#
# A background session keeps one connection (and so its cached slot) open
# throughout; other sessions drop and create the extension, truncate
# idgen.segment_alloc or delete a tag's row by hand, and create the tag
# again.  After each, the first number either session gets comes from the
# new table, and a run of numbers is dense and distinct: nothing is mixed
# in from the old table's buffered ranges.  A DROP EXTENSION that rolls
# back costs a gap and nothing else.  Finally the library works with a 1.0
# catalog, and after ALTER EXTENSION idgen UPDATE.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use IdgenTest;

my $node = PostgreSQL::Test::Cluster->new('segment_drop_extension');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'idgen'
idgen.worker_id = 1
idgen.database = 'postgres'
# ranges of the step given, so that the draws below need grants
idgen.segment_min_range = 0
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION idgen');
wait_for_worker($node);

my $bg = $node->background_psql('postgres', on_error_stop => 0);

sub bg_next
{
	return $bg->query("SELECT idgen.segment_next('lc')");
}

$node->safe_psql('postgres', "SELECT idgen.segment_create('lc', 1000, 100)");
is(bg_next(), '1000', 'cached backend: first number 1000');
is(bg_next(), '1001', 'cached backend: second number 1001');

# Drop the extension (the tag and its table with it), create it again and
# the tag with another start.
$node->safe_psql('postgres', q{
DROP EXTENSION idgen CASCADE;
CREATE EXTENSION idgen;
SELECT idgen.segment_create('lc', 5000000, 100);
});
is(bg_next(), '5000000',
	'cached backend: after DROP/CREATE EXTENSION the next number comes from the new tag');
is($node->safe_psql('postgres', "SELECT idgen.segment_next('lc')"), '5000001',
	'new backend: the next one too');

# Again, with the new tag starting where the old one did: 300 numbers in
# the cached backend are 1000 .. 1299, none from the old buffers.
$node->safe_psql('postgres', q{
DROP EXTENSION idgen CASCADE;
CREATE EXTENSION idgen;
SELECT idgen.segment_create('lc', 1000, 100);
});
is( $bg->query(
		"SELECT count(DISTINCT n) || '|' || min(n) || '|' || max(n) FROM (SELECT idgen.segment_next('lc') AS n FROM generate_series(1, 300)) s"
	),
	'300|1000|1299',
	'cached backend: 300 numbers after re-creating the tag at 1000 are 1000..1299');

# DROP and CREATE in one transaction.
$node->safe_psql('postgres', q{
BEGIN;
DROP EXTENSION idgen CASCADE;
CREATE EXTENSION idgen;
SELECT idgen.segment_create('lc', 7000000, 100);
COMMIT;
});
is(bg_next(), '7000000', 'cached backend: drop and create in one transaction');

# A drop that rolls back: the tag goes on above what it handed out.
$node->safe_psql('postgres', q{
BEGIN;
DROP EXTENSION idgen CASCADE;
ROLLBACK;
});
cmp_ok(bg_next(), '>', 7000000, 'cached backend: after a rolled-back drop the tag goes on, above');

# TRUNCATE of the table, then the tag created again.
$node->safe_psql('postgres', q{
TRUNCATE idgen.segment_alloc;
SELECT idgen.segment_create('lc', 8000000, 100);
});
is(bg_next(), '8000000', 'cached backend: after TRUNCATE idgen.segment_alloc');

# Restores write the rows directly, without segment_create() (which also
# forgets a tag's buffers): only the drop or truncation itself can make the
# buffers go.  DROP/CREATE EXTENSION, then the row inserted as a data-only
# restore would; and TRUNCATE, then the row inserted.
$node->safe_psql('postgres', q{
DROP EXTENSION idgen CASCADE;
CREATE EXTENSION idgen;
INSERT INTO idgen.segment_alloc (tag, start_value, next_value, step, current_step, last_timeline, fence)
VALUES ('lc', 8100000, 8100000, 100, 100, 1, 8100000);
});
is(bg_next(), '8100000', 'cached backend: after DROP/CREATE EXTENSION and a restored row');
$node->safe_psql('postgres', q{
TRUNCATE idgen.segment_alloc;
INSERT INTO idgen.segment_alloc (tag, start_value, next_value, step, current_step, last_timeline, fence)
VALUES ('lc', 8200000, 8200000, 100, 100, 1, 8200000);
});
is(bg_next(), '8200000', 'cached backend: after TRUNCATE and a restored row');

# The row deleted by hand, then the tag created again.
$node->safe_psql('postgres', q{
DELETE FROM idgen.segment_alloc WHERE tag = 'lc';
SELECT idgen.segment_create('lc', 9000000, 100);
});
is(bg_next(), '9000000', 'cached backend: after the row was deleted by hand');

# segment_drop and segment_create.
$node->safe_psql('postgres', q{
SELECT idgen.segment_drop('lc');
SELECT idgen.segment_create('lc', 10000000, 100);
});
is(bg_next(), '10000000', 'cached backend: after segment_drop and segment_create');

# The library with a 1.0 catalog (no fence column: databases are updated
# after the new library is installed), then updated to 1.1.
$node->safe_psql('postgres', q{
DROP EXTENSION idgen CASCADE;
CREATE EXTENSION idgen VERSION '1.0';
SELECT idgen.segment_create('lc', 1, 100);
});
is( $bg->query(
		"SELECT count(DISTINCT n) || '|' || min(n) || '|' || max(n) FROM (SELECT idgen.segment_next('lc') AS n FROM generate_series(1, 500)) s"
	),
	'500|1|500',
	'1.0 catalog: numbers are granted and handed out');
$node->safe_psql('postgres', 'ALTER EXTENSION idgen UPDATE');
is($node->safe_psql('postgres',
		"SELECT fence IS NULL FROM idgen.segment_alloc WHERE tag = 'lc'"),
	't', 'after ALTER EXTENSION UPDATE: no fence until the next grant');
cmp_ok(
	$bg->query(
		"SELECT min(n) FROM (SELECT idgen.segment_next('lc') AS n FROM generate_series(1, 2000)) s"),
	'>', 500, 'after the update: numbers go on above');
is($node->safe_psql('postgres',
		"SELECT fence >= next_value FROM idgen.segment_alloc WHERE tag = 'lc'"),
	't', 'after the update: the next grant sets the fence');

$bg->quit;
$node->stop;
done_testing();
