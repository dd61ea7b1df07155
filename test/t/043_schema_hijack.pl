# CREATE EXTENSION idgen refuses a schema idgen that someone else could
# have prepared.
#
# idgen.control says schema = idgen; PostgreSQL then uses a schema of that
# name if it exists.  idgen's SECURITY DEFINER functions call idgen's own
# functions by schema-qualified name, so whoever owns that schema, or may
# create objects in it, could otherwise plant code they run.
#
#  - A schema idgen created beforehand by an ordinary role (eve, who may
#    create schemas in the database): refused with 42501, a hint, and
#    nothing installed.
#  - A superuser's schema idgen in which eve may create objects: refused.
#  - A superuser's schema idgen holding a function eve planted (its CREATE
#    privilege since revoked): refused.
#  - No schema idgen: installs.  After DROP EXTENSION the empty schema the
#    installation left (owned by the superuser, nobody else may create in
#    it) is taken again, so DROP EXTENSION; CREATE EXTENSION keeps working.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use IdgenTest;

my $node = PostgreSQL::Test::Cluster->new('schema_hijack');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'idgen'
idgen.worker_id = 1
idgen.database = 'postgres'
});
$node->start;

$node->safe_psql('postgres', q{
CREATE ROLE eve LOGIN;
GRANT CREATE ON DATABASE postgres TO eve;
});

sub not_installed
{
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM pg_extension WHERE extname = 'idgen'") eq '0';
}

# An ordinary role's schema.
my $r = try_sql($node, 'CREATE SCHEMA idgen', user => 'eve');
is($r->{ret}, 0, 'eve created schema idgen') or diag($r->{stderr});
$r = try_sql($node, 'CREATE EXTENSION idgen');
is($r->{sqlstate}, '42501', "CREATE EXTENSION in eve's schema idgen: 42501");
like($r->{stderr}, qr/schema "idgen" .*not created by/,
	'the error says the schema was not created by the extension');
like($r->{stderr}, qr/HINT:\s+.*DROP SCHEMA idgen/, 'the hint says what to do');
ok(not_installed(), 'nothing was installed');
$node->safe_psql('postgres', 'DROP SCHEMA idgen');

# A superuser's schema in which eve may create objects.
$node->safe_psql('postgres',
	'CREATE SCHEMA idgen; GRANT CREATE ON SCHEMA idgen TO eve');
$r = try_sql($node, 'CREATE EXTENSION idgen');
is($r->{sqlstate}, '42501',
	'CREATE EXTENSION in a schema idgen where another role may create objects: 42501');
ok(not_installed(), 'nothing was installed');

# ... holding a function eve planted there.
$r = try_sql(
	$node,
	'CREATE FUNCTION idgen.snowflake_min(timestamp) RETURNS bigint LANGUAGE sql AS $$ SELECT 0::bigint $$',
	user => 'eve');
is($r->{ret}, 0, 'eve planted a function in schema idgen') or diag($r->{stderr});
$node->safe_psql('postgres', 'REVOKE CREATE ON SCHEMA idgen FROM eve');
$r = try_sql($node, 'CREATE EXTENSION idgen');
is($r->{sqlstate}, '42501',
	'CREATE EXTENSION in a schema idgen that already holds objects: 42501');
like($r->{stderr}, qr/DETAIL:\s+.*already holds/, 'the detail says it holds objects');
ok(not_installed(), 'nothing was installed');
$node->safe_psql('postgres', 'DROP SCHEMA idgen CASCADE');

# No schema: installs; DROP EXTENSION then CREATE EXTENSION works again.
$r = try_sql($node, 'CREATE EXTENSION idgen');
is($r->{ret}, 0, 'CREATE EXTENSION without a schema idgen installs') or diag($r->{stderr});
$node->safe_psql('postgres', 'DROP EXTENSION idgen');
is( $node->safe_psql('postgres',
		"SELECT count(*) FROM pg_namespace WHERE nspname = 'idgen'"),
	'1',
	'DROP EXTENSION leaves the empty schema behind');
$r = try_sql($node, 'CREATE EXTENSION idgen; SELECT idgen.snowflake_next() > 0');
is($r->{ret}, 0, 'CREATE EXTENSION again takes the empty schema it left')
  or diag($r->{stderr});

$node->stop;
done_testing();
