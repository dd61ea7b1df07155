# Converting populated sequence-fed columns while another session inserts,
# then pg_dump and restore.
#
#  - A bigserial column converted to Snowflake IDs and an identity column
#    converted to a segment tag, each while a second session keeps
#    inserting one row per transaction into both tables: the inserter never
#    fails, no value appears twice, and in insertion order the values only
#    go up (sequence values, then generator values above all of them: none
#    below the old maximum).  The sequences are gone.
#  - pg_dump of that database in plain and in custom format, restored
#    into a fresh server each (psql ON_ERROR_STOP, pg_restore
#    --exit-on-error): no error; the dump names no old sequence; inserting
#    more rows on the restored server gives new values above every
#    restored one, without a duplicate.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use IdgenTest;
use IPC::Run ();

# A preloaded server whose worker serves segment tags in database $db.
sub new_server
{
	my ($name, $worker_id, $db) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf(
		'postgresql.conf', qq{
shared_preload_libraries = 'idgen'
idgen.worker_id = $worker_id
idgen.database = '$db'
});
	$node->start;
	return $node;
}

# Count of rows of $tbl whose id does not rise in the order of (src rank, n):
# initial rows first, then the inserter's, then those inserted after a
# restore.
sub not_rising
{
	my ($node, $db, $tbl) = @_;
	return $node->safe_psql($db, qq{
SELECT count(*) FROM (
  SELECT id, lag(id) OVER (ORDER BY array_position(ARRAY['initial', 'bg', 'after'], src), n) AS prev
  FROM $tbl) s
WHERE id <= prev;
});
}

my $tmp = PostgreSQL::Test::Utils::tempdir;
my $node = new_server('convert_src', 1, 'postgres');
$node->safe_psql('postgres', 'CREATE EXTENSION idgen');
wait_for_worker($node, 'postgres');

$node->safe_psql(
	'postgres', q{
CREATE TABLE t_snow (id bigserial PRIMARY KEY, n bigint NOT NULL, src text NOT NULL);
CREATE TABLE t_seg (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, n bigint NOT NULL, src text NOT NULL);
INSERT INTO t_snow (n, src) SELECT g, 'initial' FROM generate_series(1, 5000) AS g;
INSERT INTO t_seg (n, src) SELECT g, 'initial' FROM generate_series(1, 5000) AS g;
CREATE TABLE stop_flag (stop boolean);
-- One row into each table per transaction until told to stop (or 1e6).
CREATE PROCEDURE bg_insert() LANGUAGE plpgsql AS $$
DECLARE
    i bigint := 0;
BEGIN
    LOOP
        i := i + 1;
        INSERT INTO t_snow (n, src) VALUES (i, 'bg');
        INSERT INTO t_seg (n, src) VALUES (i, 'bg');
        COMMIT;
        EXIT WHEN i >= 1000000 OR EXISTS (SELECT 1 FROM stop_flag);
    END LOOP;
END
$$;
});

my ($bg_out, $bg_err) = ('', '');
my $bg = IPC::Run::start(
	[ 'psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres'), '-c', 'CALL bg_insert()' ],
	'>', \$bg_out, '2>', \$bg_err);

my ($ok, $out) = poll_until($node, "SELECT count(*) >= 300 FROM t_snow WHERE src = 'bg'", 't', 60);
ok($ok, 'the inserter is running before the conversions') or diag($out);

$node->safe_psql('postgres', "SELECT idgen.convert_to_snowflake('t_snow', 'id')");
($ok, $out) = poll_until($node, "SELECT count(*) >= 300 FROM t_seg WHERE src = 'bg'", 't', 60);
$node->safe_psql('postgres', "SELECT idgen.convert_to_segment('t_seg', 'id', 't_seg')");
pass('both columns converted while the inserter runs');

# Wait until the inserter has added rows with the generators' values.
($ok, $out) = poll_until(
	$node, q{
SELECT (SELECT count(*) FROM t_snow WHERE id > 5000000) >= 300
   AND (SELECT count(*) FROM t_seg
         WHERE id >= (SELECT start_value FROM idgen.segment_alloc WHERE tag = 't_seg')) >= 300
}, 't', 120);
ok($ok, 'the inserter goes on with Snowflake IDs and segment numbers') or diag($out);
$node->safe_psql('postgres', 'INSERT INTO stop_flag VALUES (true)');
$bg->finish;
is($bg->result(0), 0, 'the inserter ended without an error') or diag($bg_err);
unlike($bg_err, qr/ERROR/, 'the inserter printed no error');

for my $tbl ('t_snow', 't_seg')
{
	is( $node->safe_psql('postgres', "SELECT count(*) = count(DISTINCT id) FROM $tbl"),
		't', "$tbl: no value twice");
	is(not_rising($node, 'postgres', $tbl), '0',
		"$tbl: in insertion order every value is above the previous (none below the old maximum)");
}
is( $node->safe_psql(
		'postgres',
		q{SELECT (SELECT count(*) FROM t_snow WHERE src = 'bg' AND id <= 5000000) > 0,
		         (SELECT count(*) FROM t_seg WHERE src = 'bg'
		           AND id < (SELECT start_value FROM idgen.segment_alloc WHERE tag = 't_seg')) > 0}),
	't|t', 'the inserter also added rows from the sequences before the switch');
is( $node->safe_psql(
		'postgres',
		q{SELECT to_regclass('t_snow_id_seq') IS NULL AND to_regclass('t_seg_id_seq') IS NULL}),
	't', 'both old sequences are gone');

########################################################################
# pg_dump in plain and custom format; restore each into a fresh server.
########################################################################

$node->command_ok([ 'pg_dump', '-Fp', '-f', "$tmp/plain.sql", '-d', $node->connstr('postgres') ],
	'pg_dump, plain format');
$node->command_ok([ 'pg_dump', '-Fc', '-f', "$tmp/custom.dump", '-d', $node->connstr('postgres') ],
	'pg_dump, custom format');
my $plain = slurp_file("$tmp/plain.sql");
unlike($plain, qr/t_(snow|seg)_id_seq/, 'the dump names neither old sequence');
like($plain, qr/DEFAULT idgen\.snowflake_next\(\)/, 'the dump has the Snowflake default');
like($plain, qr/DEFAULT idgen\.segment_next\('t_seg'::text\)/, 'the dump has the segment default');

my $src_counts = $node->safe_psql('postgres',
	'SELECT (SELECT count(*) FROM t_snow), (SELECT count(*) FROM t_seg)');
$node->stop;

my $worker_id = 2;
for my $format ('plain', 'custom')
{
	my $dst = new_server("convert_$format", $worker_id++, 'restored');
	$dst->safe_psql('postgres', 'CREATE DATABASE restored');
	if ($format eq 'plain')
	{
		$dst->command_ok(
			[ 'psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-f', "$tmp/plain.sql", '-d', $dst->connstr('restored') ],
			'plain dump restores without an error');
	}
	else
	{
		$dst->command_ok([ 'pg_restore', '--exit-on-error', '-d', $dst->connstr('restored'), "$tmp/custom.dump" ],
			'custom dump restores without an error');
	}
	is( $dst->safe_psql('restored', 'SELECT (SELECT count(*) FROM t_snow), (SELECT count(*) FROM t_seg)'),
		$src_counts, "$format: every row restored");
	wait_for_worker($dst, 'restored');

	$dst->safe_psql(
		'restored', q{
INSERT INTO t_snow (n, src) SELECT g, 'after' FROM generate_series(1, 2000) AS g;
INSERT INTO t_seg (n, src) SELECT g, 'after' FROM generate_series(1, 2000) AS g;
});
	for my $tbl ('t_snow', 't_seg')
	{
		is( $dst->safe_psql('restored', "SELECT count(*), count(*) = count(DISTINCT id) FROM $tbl WHERE src = 'after'"),
			'2000|t', "$format: 2000 more rows into $tbl after the restore");
		is( $dst->safe_psql('restored', "SELECT count(*) = count(DISTINCT id) FROM $tbl"),
			't', "$format: $tbl has no value twice");
		is(not_rising($dst, 'restored', $tbl), '0',
			"$format: the new values of $tbl are above every restored one");
	}
	$dst->stop;
}

done_testing();
