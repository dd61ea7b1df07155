# A column converted to a segment tag, used in the conversion's transaction.
#
# convert_to_segment() creates the tag in the caller's transaction, and the
# segment worker grants ranges in its own: until the conversion commits, the
# worker cannot see the tag.  An insert that relies on the new default in
# the same transaction (a migration that converts and then backfills) fails
# with "segment tag ... does not exist", whose detail says the tag "was
# dropped while this call waited": it was never committed.  The same holds
# for segment_create() and segment_next() in one transaction.
#
# Expected: either the numbers come (the grant sees the caller's tag), or a
# refusal that says what to do (commit the tag first) with its own
# SQLSTATE, not a message about a dropped tag.  The segment code is not
# red2's to change; the check runs with IDGEN_KNOWN_HOLES=1 until it is
# fixed (see below).  What the test
# does assert: nothing is left behind, and after the commit the numbers
# start above the column's values.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use IdgenTest;

my $node = PostgreSQL::Test::Cluster->new('convert_tx');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'idgen'
idgen.worker_id = 1
idgen.database = 'postgres'
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION idgen');
wait_for_worker($node);

$node->safe_psql('postgres', q{
CREATE TABLE t (id bigserial PRIMARY KEY, note text);
INSERT INTO t (note) SELECT 'old' FROM generate_series(1, 10);
});

my ($ret, $out, $err) = $node->psql('postgres', q{
BEGIN;
SELECT idgen.convert_to_segment('t', 'id', 'ttag');
INSERT INTO t (note) VALUES ('in the conversion') RETURNING id;
COMMIT;
}, extra_params => [ '-v', 'VERBOSITY=verbose' ]);

# scripts/test counts a TODO's "not ok" as a failure: the expected
# behaviour is checked only with IDGEN_KNOWN_HOLES=1 until the segment code
# is fixed; otherwise the test records today's behaviour.
SKIP:
{
	skip 'known hole: set IDGEN_KNOWN_HOLES=1 to check the fix', 2
	  unless $ENV{IDGEN_KNOWN_HOLES};
	is($ret, 0, 'an insert in the conversion\'s transaction gets a number')
	  or diag($err);
	unlike($err, qr/was dropped while this call waited/,
		'no message about a dropped tag for one never committed');
}
note("in the conversion's transaction: exit $ret; $err");

# Whatever happened above, the converted column works once committed.
$node->safe_psql('postgres', q{
SELECT idgen.convert_to_segment('t', 'id', 'ttag')
 WHERE NOT idgen._segment_exists('ttag');
});
is( $node->safe_psql('postgres', q{
INSERT INTO t (note) VALUES ('after') RETURNING id > 10}),
	't', 'after the commit, numbers start above the column\'s values');
is($node->safe_psql('postgres', 'SELECT count(*) = count(DISTINCT id) FROM t'),
	't', 'every id distinct');

done_testing();
