# Slot reuse under churn (issue 9, item 10): with idgen.segment_max_tags =
# 2, tag b is dropped and created again (each time with a start of its
# own, far apart) as fast as one session can, so that its slot is freed and
# taken again over and over, while another session draws from tag a and
# from b.  A backend that kept a stale slot, or read a slot's generation
# after another tag took it, would hand out a number of the wrong tag or
# of an old incarnation of b.  Checked: every number of a is below b's
# number space and none repeats; no number of b repeats, and within one
# statement b's numbers increase (a statement may move on to a newer
# incarnation when b is re-created under it, never back to an older one).

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use IdgenTest;

my $node = PostgreSQL::Test::Cluster->new('segment_slot_reuse');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'idgen'
idgen.worker_id = 1
idgen.database = 'postgres'
idgen.segment_max_tags = 2
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION idgen;
SELECT idgen.segment_create('a', 1, 10);
SELECT idgen.segment_create('b', 1000000000, 10);
CREATE TABLE drawn (stmt bigint NOT NULL, tag text NOT NULL, n bigint NOT NULL, ord bigserial);
CREATE SEQUENCE stmt_seq;
});
wait_for_worker($node);

# The churn: drop b and create it again with the next incarnation's start.
my $churn = $node->background_psql('postgres', on_error_stop => 0);
$churn->query_until(qr/started/, q{
\echo started
DO $$
BEGIN
	FOR k IN 2 .. 400 LOOP
		PERFORM idgen.segment_drop('b');
		PERFORM idgen.segment_create('b', k * 1000000000::bigint, 10);
		COMMIT;
	END LOOP;
END
$$;
\echo churned
});

# The drawer: statements of a and of b, each numbered; a statement of b
# may fail when b is dropped under it (and then records nothing).
my $drawer = $node->background_psql('postgres', on_error_stop => 0);
for my $i (1 .. 200)
{
	$drawer->query(q{
INSERT INTO drawn (stmt, tag, n)
SELECT s, 'a', idgen.segment_next('a') FROM (SELECT nextval('stmt_seq') AS s) x, generate_series(1, 30)});
	$drawer->query(q{
INSERT INTO drawn (stmt, tag, n)
SELECT s, 'b', idgen.segment_next('b') FROM (SELECT nextval('stmt_seq') AS s) x, generate_series(1, 30)});
}
$churn->query_until(qr/churned/, '');
$churn->quit;
$drawer->quit;

my ($na, $nb) = split /\|/, $node->safe_psql('postgres',
	"SELECT count(*) FILTER (WHERE tag = 'a'), count(*) FILTER (WHERE tag = 'b') FROM drawn");
note("drawn: $na of a, $nb of b");
cmp_ok($na, '>=', 30 * 100, 'tag a was drawn from throughout');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM drawn WHERE tag = 'a' AND n >= 1000000000"),
	'0', 'no number of tag a comes from tag b');
is($node->safe_psql('postgres',
		"SELECT count(*) - count(DISTINCT n) FROM drawn WHERE tag = 'a'"),
	'0', 'no number of tag a repeats');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM drawn WHERE tag = 'b' AND n < 1000000000"),
	'0', 'no number of tag b comes from tag a');
is($node->safe_psql('postgres',
		"SELECT count(*) - count(DISTINCT n) FROM drawn WHERE tag = 'b'"),
	'0', 'no number of tag b repeats');
is($node->safe_psql('postgres', q{
SELECT count(*) FROM (
	SELECT n, lag(n) OVER (PARTITION BY stmt ORDER BY ord) AS prev
	FROM drawn WHERE tag = 'b') s
WHERE n <= prev}),
	'0', 'within a statement the numbers of b increase (never back to an older incarnation)');

$node->stop;
done_testing();
