# PostgreSQL 18 and later ship pg_catalog.uuidv7() and uuidv7(interval),
# uuid_extract_timestamp() and uuid_extract_version().  How idgen's
# functions of the same name coexist with them (runs on 18 and later only).
#
#  - Unqualified uuidv7() resolves to the FIRST schema on the search_path
#    that has it, and pg_catalog is searched first unless the search_path
#    names it later:
#      search_path = idgen, public             -> pg_catalog.uuidv7()
#      search_path = idgen, pg_catalog, public -> idgen.uuidv7()
#    Both the parser's choice (regprocedure lookup) and the function that
#    really runs (idgen's issued-IDs counter in idgen.stats) are checked.
#  - uuidv7(timestamptz) exists only in idgen, uuidv7(interval) only in
#    core: a timestamptz argument reaches idgen's, an interval core's
#    whatever the order; an untyped literal is ambiguous (42725) when idgen
#    is on the search_path.  The qualified names always work.
#  - CREATE EXTENSION idgen leaves core's uuidv7() alone (its comment and
#    privileges); the 1.0 script did not (its unqualified COMMENT ON and
#    GRANT ON uuidv7() reached core's function, first on the path): the
#    update to 1.1 restores core's comment and comments idgen's.
#  - uuid_extract_timestamp(idgen.uuidv7()) equals idgen.uuidv7_time()
#    truncated to the millisecond (also for uuidv7(ts) and uuidv7_min(ts)),
#    and uuid_extract_version() is 7.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use IdgenTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('pg18');
if ($node->pg_version < 18)
{
	plan skip_all => 'PostgreSQL ' . $node->pg_version . ' has no core uuidv7()';
}
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'idgen'
idgen.worker_id = 1
});
$node->start;

# What CREATE EXTENSION must leave alone: core's uuidv7() (its comment and
# privileges), in each database.
my $core_sql = q{
SELECT obj_description('pg_catalog.uuidv7()'::regprocedure, 'pg_proc'), proacl IS NULL
  FROM pg_proc WHERE oid = 'pg_catalog.uuidv7()'::regprocedure};
my $core_before = $node->safe_psql('postgres', $core_sql);
my $idgen_comment_sql =
  q{SELECT obj_description('idgen.uuidv7()'::regprocedure, 'pg_proc') IS NOT NULL};

$node->safe_psql('postgres', 'CREATE EXTENSION idgen');
is($node->safe_psql('postgres', $core_sql), $core_before,
	'CREATE EXTENSION idgen leaves pg_catalog.uuidv7() alone (comment and privileges)');
is($node->safe_psql('postgres', $idgen_comment_sql), 't',
	'idgen.uuidv7() has its COMMENT (the script names it qualified)');

# A database that got 1.0 on 18 (whose script commented and granted the
# unqualified uuidv7(), which is core's there) is repaired by the update.
$node->safe_psql('postgres', 'CREATE DATABASE v10');
$node->safe_psql('v10', "CREATE EXTENSION idgen VERSION '1.0'");
$node->safe_psql('v10', 'ALTER EXTENSION idgen UPDATE');
is($node->safe_psql('v10', $core_sql), ($core_before =~ s/\|t$/|f/r),
	'1.0 -> update on 18: core\'s uuidv7() comment restored (its ACL stays explicit, granting what the default grants)');
is($node->safe_psql('v10', $idgen_comment_sql), 't', '1.0 -> update on 18: idgen.uuidv7() has its COMMENT');

sub issued
{
	return stats_counter($node, 'idgen_ids_issued_total', '{"generator": "uuidv7"}');
}

# Which uuidv7() an unqualified call in search_path $path resolves to and
# runs: (regprocedure, number of idgen UUIDv7s 1000 calls issued).
sub resolve
{
	my ($path) = @_;
	my $before = issued();
	my $out = $node->safe_psql('postgres', qq{
SET search_path = $path;
SELECT 'uuidv7()'::regprocedure::oid = 'idgen.uuidv7()'::regprocedure::oid;
SELECT count(DISTINCT uuidv7()) FROM generate_series(1, 1000);
});
	my ($is_idgen, $n) = split /\n/, $out;
	die "1000 calls gave $n distinct UUIDs" unless $n == 1000;
	return ($is_idgen eq 't' ? 'idgen' : 'pg_catalog', issued() - $before);
}

my ($which, $delta) = resolve('idgen, public');
is($which, 'pg_catalog',
	'search_path = idgen, public: unqualified uuidv7() resolves to pg_catalog.uuidv7() (pg_catalog is implicitly first)');
is($delta, 0, '... and idgen issued none of those 1000 UUIDs');

($which, $delta) = resolve('idgen, pg_catalog, public');
is($which, 'idgen',
	'search_path = idgen, pg_catalog, public: unqualified uuidv7() resolves to idgen.uuidv7()');
is($delta, 1000, '... and idgen issued all 1000');

($which, $delta) = resolve('public, pg_catalog, idgen');
is($which, 'pg_catalog', 'search_path = public, pg_catalog, idgen: pg_catalog.uuidv7()');

# The other signatures.
is($node->safe_psql('postgres', q{
SET search_path = idgen, public;
SELECT 'uuidv7(timestamptz)'::regprocedure = 'idgen.uuidv7(timestamptz)'::regprocedure,
       'uuidv7(interval)'::regprocedure = 'pg_catalog.uuidv7(interval)'::regprocedure,
       uuid_extract_timestamp(uuidv7(timestamptz '2030-01-01 00:00:00+00')) = '2030-01-01 00:00:00+00'}),
	't|t|t',
	'uuidv7(timestamptz) is idgen\'s and uuidv7(interval) core\'s, whatever the search_path order');
my $r = try_sql($node, q{SET search_path = idgen, public; SELECT uuidv7('2030-01-01')});
is($r->{sqlstate}, '42725',
	'uuidv7(untyped literal) with idgen on the search_path: function is not unique (42725)');
is($node->safe_psql('postgres', q{
SELECT uuid_extract_version(idgen.uuidv7()), uuid_extract_version(pg_catalog.uuidv7()),
       idgen.uuidv7_time(idgen.uuidv7('2030-01-01')) = '2030-01-01'}),
	'7|7|t', 'the qualified names always work');

# Extraction agrees with idgen.uuidv7_time() to the millisecond.
is($node->safe_psql('postgres', q{
SELECT count(*),
       count(*) FILTER (WHERE uuid_extract_version(u) = 7),
       count(*) FILTER (WHERE uuid_extract_timestamp(u) = date_trunc('milliseconds', idgen.uuidv7_time(u)))
  FROM (SELECT idgen.uuidv7() AS u FROM generate_series(1, 10000)) s}),
	'10000|10000|10000',
	'10000 idgen.uuidv7(): uuid_extract_version() = 7 and uuid_extract_timestamp() = uuidv7_time() to the ms');

is($node->safe_psql('postgres', q{
SELECT count(*),
       count(*) FILTER (WHERE uuid_extract_version(u) = 7),
       count(*) FILTER (WHERE uuid_extract_timestamp(u) = date_trunc('milliseconds', idgen.uuidv7_time(u))),
       count(*) FILTER (WHERE uuid_extract_timestamp(u) = date_trunc('milliseconds', ts))
  FROM (SELECT ts, idgen.uuidv7(ts) AS u
          FROM (SELECT timestamptz '1970-01-01 00:00:00.0015+00' + g * interval '1 day 1.2345 ms' AS ts
                  FROM generate_series(0, 40000) g) t) s}),
	'40001|40001|40001|40001',
	'idgen.uuidv7(ts) over 1970-2079: extracted time = uuidv7_time() = ts, to the ms; version 7');

is($node->safe_psql('postgres', q{
SELECT uuid_extract_version(m) = 7,
       uuid_extract_timestamp(m) = date_trunc('milliseconds', idgen.uuidv7_time(m)),
       uuid_extract_timestamp(m) = timestamptz '2031-05-06 07:08:09.123+00'
  FROM (SELECT idgen.uuidv7_min('2031-05-06 07:08:09.123456+00') AS m) s}),
	't|t|t', 'idgen.uuidv7_min(ts): version 7, extracted time = uuidv7_time() = ts to the ms');

# Core's and idgen's IDs are the same kind of value: they compare and
# index together (a column may hold both).
is($node->safe_psql('postgres', q{
CREATE TABLE mixed (id uuid PRIMARY KEY);
INSERT INTO mixed SELECT idgen.uuidv7() FROM generate_series(1, 100);
INSERT INTO mixed SELECT pg_catalog.uuidv7() FROM generate_series(1, 100);
SELECT count(*), count(*) FILTER (WHERE uuid_extract_version(id) = 7) FROM mixed}),
	'200|200', 'core and idgen UUIDv7s share a uuid primary key');

$node->stop;
done_testing();
