# Interoperability of idgen's text forms and types with real clients.
#
#  - TypeID and ULID: the reference npm packages typeid-js and ulid decode
#    idgen's TypeIDs (from idgen.typeid()) and ULIDs (from
#    idgen.ulid_encode(idgen.uuidv7())) to the same UUID bytes and the same
#    millisecond time, and sort them in generation order; idgen decodes
#    the TypeIDs and ULIDs those packages generate to the UUID and time
#    they report.
#  - Drivers: Python's psycopg (Debian python3-psycopg) reads
#    idgen.uuidv7() as uuid.UUID and snowflake_next() as int, in text and
#    binary format; node's pg reads the UUID as its string and int8 as a
#    string by default (Number() would lose digits of a Snowflake ID), and
#    as an exact BigInt with types.setTypeParser(20, BigInt).
#
# The npm packages are installed by this test with npm, at pinned versions,
# into a cache directory kept between runs (IDGEN_CLIENTS_CACHE, default
# /tmp/idgen-clients-<uid>).  If they cannot be installed the test fails:
# it never skips.  node, npm and python3-psycopg come from
# scripts/packages.d/clients.list.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use IdgenTest;
use File::Path qw(make_path remove_tree);
use IPC::Run ();
use JSON::PP ();

my %npm_packages = ('typeid-js' => '1.2.0', 'ulid' => '3.0.2', 'pg' => '8.23.1');
my $python = '/usr/bin/python3';

# The node_modules directory with the pinned packages, installed on first
# use.  A finished install is marked complete; an interrupted one is
# started again.
sub npm_modules
{
	my $spec = join(' ', map { "$_\@$npm_packages{$_}" } sort keys %npm_packages);
	(my $key = $spec) =~ s/[^A-Za-z0-9.]+/-/g;
	my $root = $ENV{IDGEN_CLIENTS_CACHE} // "/tmp/idgen-clients-$<";
	my $dir = "$root/$key";
	return "$dir/node_modules" if -e "$dir/.complete";

	remove_tree($dir);
	make_path($dir, "$root/npm-cache");
	my ($out, $err) = ('', '');
	my $ok = IPC::Run::run(
		[
			'npm', 'install', '--no-audit', '--no-fund', '--no-save',
			'--cache', "$root/npm-cache", '--prefix', $dir,
			map { "$_\@$npm_packages{$_}" } sort keys %npm_packages
		],
		'>', \$out, '2>', \$err,
		IPC::Run::timeout(600));
	die "npm install $spec failed (is the npm registry reachable?):\n$out$err"
	  unless $ok && -d "$dir/node_modules/typeid-js";
	open my $fh, '>', "$dir/.complete" or die "$dir/.complete: $!";
	close $fh;
	return "$dir/node_modules";
}

# Run a program with $stdin on its standard input; die on failure; return
# its standard output decoded from JSON.
sub run_json
{
	my ($cmd, $stdin, %env) = @_;
	my ($out, $err) = ('', '');
	local @ENV{ keys %env } = values %env;
	IPC::Run::run($cmd, '<', \$stdin, '>', \$out, '2>', \$err,
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default))
	  or die "@$cmd failed: $err$out";
	return JSON::PP::decode_json($out);
}

for my $tool ('node', 'npm')
{
	my ($ok) = IPC::Run::run([ 'which', $tool ], '>', \my $where);
	ok($ok, "$tool is installed") or BAIL_OUT("$tool is missing: see scripts/packages.d/clients.list");
}
ok(IPC::Run::run([ $python, '-c', 'import psycopg' ]), 'python3-psycopg is installed')
  or BAIL_OUT('python3-psycopg is missing: see scripts/packages.d/clients.list');

my $modules = npm_modules();
ok(-d "$modules/ulid" && -d "$modules/pg", "npm packages installed in $modules");
my %node_env = (NODE_PATH => $modules);

my $node = PostgreSQL::Test::Cluster->new('clients');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'idgen'
idgen.worker_id = 1
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION idgen');

########################################################################
# idgen's TypeIDs and ULIDs, read by typeid-js and ulid.
########################################################################

# 500 of each, in generation order, with the UUID and the millisecond time
# idgen itself decodes them to (the time from uuidv7_time(), exactly).
my $ours = $node->safe_psql(
	'postgres', q{
WITH g AS (SELECT i, idgen.typeid('order') AS typeid, idgen.uuidv7() AS u
             FROM generate_series(1, 500) AS i),
     d AS (SELECT i, typeid, (idgen.typeid_decode(typeid)).id AS tu, u FROM g)
SELECT json_agg(json_build_object(
         'typeid', typeid, 'typeid_uuid', tu,
         'typeid_ms', floor(extract(epoch FROM idgen.uuidv7_time(tu)) * 1000)::bigint,
         'ulid', idgen.ulid_encode(u), 'uuid', u,
         'ms', floor(extract(epoch FROM idgen.uuidv7_time(u)) * 1000)::bigint)
       ORDER BY i)
FROM d;
});

my $read_ours = <<'JS';
const { TypeID } = require('typeid-js');
const { decodeTime, ulidToUUID, uuidToULID, isValid } = require('ulid');
const rows = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const bad = [];
const check = (cond, what) => { if (!cond && bad.length < 20) bad.push(what); };
for (const r of rows) {
  const t = TypeID.fromString(r.typeid);
  check(t.getType() === 'order', `prefix of ${r.typeid}`);
  check(t.toUUID() === r.typeid_uuid, `uuid of ${r.typeid}: ${t.toUUID()}`);
  // The suffix is a ULID in lowercase: same 48-bit time.
  check(decodeTime(t.getSuffix().toUpperCase()) === r.typeid_ms, `time of ${r.typeid}`);
  check(TypeID.fromUUID('order', r.typeid_uuid).toString() === r.typeid, `encode ${r.typeid_uuid}`);
  check(isValid(r.ulid), `ulid ${r.ulid} valid`);
  check(decodeTime(r.ulid) === r.ms, `time of ${r.ulid}: ${decodeTime(r.ulid)} vs ${r.ms}`);
  check(ulidToUUID(r.ulid).toLowerCase() === r.uuid, `uuid of ${r.ulid}`);
  check(uuidToULID(r.uuid) === r.ulid, `ulid of ${r.uuid}`);
}
const inOrder = (a) => a.every((x, i) => i === 0 || a[i - 1] < x);
console.log(JSON.stringify({
  n: rows.length, bad,
  typeids_sorted: inOrder(rows.map((r) => r.typeid)),
  ulids_sorted: inOrder(rows.map((r) => r.ulid)),
}));
JS
my $res = run_json([ 'node', '-e', $read_ours ], $ours, %node_env);
is($res->{n}, 500, 'node read 500 TypeIDs and 500 ULIDs from idgen');
is_deeply($res->{bad}, [],
	'typeid-js and ulid decode idgen\'s TypeIDs and ULIDs to the same UUIDs and milliseconds, and encode them back identically');
ok($res->{typeids_sorted}, 'idgen\'s TypeIDs sort in generation order as JavaScript strings');
ok($res->{ulids_sorted}, 'idgen\'s ULIDs sort in generation order as JavaScript strings');

########################################################################
# TypeIDs and ULIDs made by typeid-js and ulid, read by idgen.
########################################################################

my $make_theirs = <<'JS';
const { typeid, TypeID } = require('typeid-js');
const { monotonicFactory, decodeTime, ulidToUUID } = require('ulid');
const next = monotonicFactory();
const out = [];
for (let i = 0; i < 500; i++) {
  const t = i % 2 ? typeid('user') : typeid('user_account');
  const u = next();
  out.push({ typeid: t.toString(), prefix: t.getType(), typeid_uuid: t.toUUID(),
             typeid_ms: decodeTime(t.getSuffix().toUpperCase()),
             ulid: u, uuid: ulidToUUID(u).toLowerCase(), ms: decodeTime(u) });
}
// and the ULID spec's own example
out.push({ typeid: TypeID.fromUUID('', '01563e3a-b5d3-d676-4c61-efb99302bd5b').toString(),
           prefix: '', typeid_uuid: '01563e3a-b5d3-d676-4c61-efb99302bd5b',
           typeid_ms: decodeTime('01ARZ3NDEKTSV4RRFFQ69G5FAV'),
           ulid: '01ARZ3NDEKTSV4RRFFQ69G5FAV', uuid: ulidToUUID('01ARZ3NDEKTSV4RRFFQ69G5FAV').toLowerCase(),
           ms: decodeTime('01ARZ3NDEKTSV4RRFFQ69G5FAV') });
console.log(JSON.stringify(out));
JS
my $theirs = run_json([ 'node', '-e', $make_theirs ], '', %node_env);
is(scalar(@$theirs), 501, 'node made 500 TypeIDs and ULIDs (and the spec example)');
my $json = JSON::PP::encode_json($theirs);
my $read_theirs = $node->safe_psql(
	'postgres', qq{
WITH j AS (SELECT r FROM json_array_elements(\$json\$$json\$json\$::json) AS r),
     d AS (SELECT r, t.prefix, t.id, idgen.ulid_decode(r->>'ulid') AS u
             FROM j, LATERAL idgen.typeid_decode(r->>'typeid') AS t)
SELECT count(*),
       count(*) FILTER (WHERE prefix = r->>'prefix' AND id = (r->>'typeid_uuid')::uuid),
       count(*) FILTER (WHERE ('x' || left(replace(id::text, '-', ''), 12))::bit(48)::bigint = (r->>'typeid_ms')::bigint),
       count(*) FILTER (WHERE u = (r->>'uuid')::uuid),
       count(*) FILTER (WHERE ('x' || left(replace(u::text, '-', ''), 12))::bit(48)::bigint = (r->>'ms')::bigint),
       count(*) FILTER (WHERE idgen.ulid_encode(u) = r->>'ulid' AND idgen.ulid_decode(lower(r->>'ulid')) = u),
       count(*) FILTER (WHERE idgen.typeid_encode(prefix, id) = r->>'typeid'),
       count(*) FILTER (WHERE r->>'prefix' <> '' AND floor(extract(epoch FROM idgen.uuidv7_time(id)) * 1000)::bigint = (r->>'typeid_ms')::bigint)
FROM d;
});
is($read_theirs, '501|501|501|501|501|501|501|500',
	'idgen decodes typeid-js TypeIDs and ulid ULIDs to their UUIDs and times (uuidv7_time() reads typeid-js UUIDv7s), and encodes them back identically'
);

########################################################################
# Drivers: native UUID and exact 64-bit integers.
########################################################################

my $host = $node->host;
my $port = $node->port;

my $psycopg = <<'PY';
import json, sys, uuid
import psycopg
conninfo = sys.argv[1]
out = {}
with psycopg.connect(conninfo) as conn:
    for binary in (False, True):
        with conn.cursor(binary=binary) as cur:
            cur.execute("SELECT u, u::text, s, s::text FROM (SELECT idgen.uuidv7() AS u, idgen.snowflake_next() AS s"
                        " FROM generate_series(1, 200)) g")
            rows = cur.fetchall()
        key = "binary" if binary else "text"
        out[key] = {
            "n": len(rows),
            "uuid_native": all(isinstance(u, uuid.UUID) and str(u) == ut and u.version == 7 for u, ut, s, st in rows),
            "int_exact": all(type(s) is int and str(s) == st for u, ut, s, st in rows),
            "above_2_53": all(s > 2**53 for u, ut, s, st in rows),
        }
print(json.dumps(out))
PY
$res = run_json([ $python, '-c', $psycopg, "host=$host port=$port dbname=postgres" ], '');
for my $format ('text', 'binary')
{
	is($res->{$format}{n}, 200, "psycopg ($format format) read 200 rows");
	ok($res->{$format}{uuid_native}, "psycopg ($format format) reads idgen.uuidv7() as a version 7 uuid.UUID");
	ok($res->{$format}{int_exact},
		"psycopg ($format format) reads snowflake_next() as an int equal to its decimal text");
}
ok($res->{text}{above_2_53}, 'the Snowflake IDs read are above 2^53, where a double loses digits');

my $node_pg = <<'JS';
const { Client, types } = require('pg');
const [host, port] = process.argv.slice(1);
const sql = 'SELECT u, u::text AS ut, s, s::text AS st FROM (SELECT idgen.uuidv7() AS u, idgen.snowflake_next() AS s FROM generate_series(1, 200)) g';
(async () => {
  const c = new Client({ host, port: Number(port), database: 'postgres' });
  await c.connect();
  const def = (await c.query(sql)).rows;
  const uuidRe = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
  const out = {
    n: def.length,
    uuid_string: def.every((r) => typeof r.u === 'string' && uuidRe.test(r.u) && r.u === r.ut),
    int8_string: def.every((r) => typeof r.s === 'string' && r.s === r.st),
    number_loses_digits: def.some((r) => String(Number(r.s)) !== r.s),
  };
  types.setTypeParser(20, BigInt);    // int8 -> BigInt, for every query
  const big = (await c.query(sql)).rows;
  out.bigint_exact = big.every((r) => typeof r.s === 'bigint' && r.s.toString() === r.st);
  await c.end();
  console.log(JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(1); });
JS
$res = run_json([ 'node', '-e', $node_pg, $host, $port ], '', %node_env);
is($res->{n}, 200, 'node pg read 200 rows');
ok($res->{uuid_string}, 'node pg reads idgen.uuidv7() as its canonical UUID string');
ok($res->{int8_string}, 'node pg reads snowflake_next() as a string by default, digit for digit');
ok($res->{number_loses_digits}, 'Number() of a Snowflake ID loses digits (why the default is a string)');
ok($res->{bigint_exact}, 'with types.setTypeParser(20, BigInt) node pg reads snowflake_next() as an exact BigInt');

$node->stop;
done_testing();
