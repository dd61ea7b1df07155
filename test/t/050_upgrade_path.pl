# The upgrade path: every SQL version of idgen, from the oldest released
# one, with the shared library of this tree.
#
#  - A preloaded server whose idgen.database ('postgres') gets
#    CREATE EXTENSION idgen VERSION '1.0' (the frozen 1.0 script) while the
#    installed shared library is this tree's: every 1.0 function works with
#    that catalog (the generators, the segment functions, probe_register /
#    probe_run, the audits, status and stats), and the server's own lease
#    worker leases its worker id through 1.0's lease functions.
#  - Data is created on 1.0: segment tags with draws, a registered probe,
#    the lease held by the lease worker.
#  - The extension is walked along pg_extension_update_paths() from 1.0 to
#    the control file's default_version, one ALTER EXTENSION ... UPDATE TO
#    per step, checking extversion after each.
#  - The upgraded catalog equals a fresh install of the default version in
#    another database of the same server: pg_dump --binary-upgrade
#    --schema-only of everything but the user's schema public (which,
#    unlike a plain dump, writes every member of an extension, with its
#    privileges and comment) with OIDs, config-dump sequence positions
#    (data) and the random \restrict key normalised away; the member objects;
#    every function's signature, result, kind, volatility, parallel label,
#    strictness, SECURITY DEFINER, proconfig, privileges and comment; the
#    extension's config-dump tables (extconfig/extcondition) by name.
#  - The data survived: the segment tags continue above their draws, the
#    probe is still registered and runs, the lease is still held with the
#    same worker id and generation, Snowflake IDs keep increasing.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use IdgenTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('upgrade_path');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'idgen'
idgen.lease_ttl = 6
});
$node->start;

my $oldest = '1.0';
my $default = $node->safe_psql('postgres',
	"SELECT default_version FROM pg_available_extensions WHERE name = 'idgen'");
my $path = $node->safe_psql('postgres', qq{
SELECT path FROM pg_extension_update_paths('idgen')
 WHERE source = '$oldest' AND target = '$default'});
isnt($path, '', "an update path leads from $oldest to the default version $default");
my @chain = split /--/, $path;
note("update chain: @chain");

# ---------------------------------------------------------------------------
# The 1.0 catalog with this tree's shared library.
# ---------------------------------------------------------------------------
$node->safe_psql('postgres', "CREATE EXTENSION idgen VERSION '$oldest'");
is($node->safe_psql('postgres', "SELECT extversion FROM pg_extension WHERE extname = 'idgen'"),
	$oldest, "installed version $oldest from its own script");

ok(wait_state($node, 'held', 30), '1.0 catalog: the lease worker leases a worker id through the 1.0 lease functions');
my $worker = status_of($node, 'worker_id');
my $generation = status_of($node, 'lease_generation');

# Every function of 1.0, called.
my @calls = (
	'uuidv7()' => q{SELECT idgen.uuidv7() < idgen.uuidv7()},
	'uuidv7(timestamptz)' =>
	  q{SELECT idgen.uuidv7_time(idgen.uuidv7('2024-01-02 03:04:05.678+00')) = '2024-01-02 03:04:05.678+00'},
	'uuidv7_min(timestamptz)' =>
	  q{SELECT idgen.uuidv7_min(now() - interval '1 minute') < idgen.uuidv7()},
	'uuidv7_time(uuid)' =>
	  q{SELECT abs(extract(epoch FROM idgen.uuidv7_time(idgen.uuidv7()) - clock_timestamp())) < 60},
	'snowflake_next()' => q{SELECT idgen.snowflake_next() < idgen.snowflake_next()},
	"snowflake_decode(bigint)" =>
	  qq{SELECT (idgen.snowflake_decode(idgen.snowflake_next())).worker_id = $worker},
	'snowflake_min(timestamptz)' =>
	  q{SELECT idgen.snowflake_min(now() - interval '1 minute') < idgen.snowflake_next()},
	'bit_budget()' => q{SELECT timestamp_bits > 0 FROM idgen.bit_budget()},
	'segment_create(text,bigint,integer)' =>
	  q{SELECT idgen.segment_create('orders', 100, 10); SELECT idgen.segment_create('invoices');
	    SELECT idgen._segment_exists('orders')},
	'segment_next(text)' => q{SELECT idgen.segment_next('orders') = 100},
	'segment_buffers()' => q{SELECT count(*) >= 0 FROM idgen.segment_buffers()},
	'segments (view)' => q{SELECT count(*) = 2 FROM idgen.segments},
	'audit_leases()' => q{SELECT count(*) = 0 FROM idgen.audit_leases()},
	'audit_segments()' => q{SELECT count(*) = 0 FROM idgen.audit_segments()},
	'stats()' => q{SELECT count(*) > 0 FROM idgen.stats},
	'status()' => qq{SELECT worker_id = $worker FROM idgen.status},
	'probe_register(regclass,name,interval)' => q{
CREATE TABLE public.orders_t (id bigint DEFAULT idgen.snowflake_next(), n bigint);
INSERT INTO public.orders_t (n) SELECT idgen.segment_next('orders') FROM generate_series(1, 50);
SELECT idgen.probe_register('public.orders_t', 'id');
SELECT count(*) = 1 FROM idgen.probes},
	'probe_run()' => q{SELECT duplicates = 0 AND ids_checked = 50 FROM idgen.probe_run()},
	'probe_status (view)' => q{SELECT count(*) = 1 FROM idgen.probe_status},
	'segment_drop(text)' =>
	  q{SELECT idgen.segment_create('scratch'); SELECT idgen.segment_drop('scratch');
	    SELECT NOT idgen._segment_exists('scratch')},
);
while (my ($f, $sql) = splice(@calls, 0, 2))
{
	my $r = try_sql($node, $sql);
	my $last = (split /\n/, $r->{stdout})[-1] // '';
	ok($r->{ret} == 0 && $last eq 't', "1.0 catalog, new library: $f works")
	  or diag("stdout: $r->{stdout}\nstderr: $r->{stderr}");
}

# Data made on 1.0.
my $orders_before = take($node, 'orders', 25);
my $invoices_before = take($node, 'invoices', 5);
my $last_sf = $node->safe_psql('postgres', 'SELECT idgen.snowflake_next()');
my $leases_before = $node->safe_psql('postgres',
	'SELECT worker_id, holder, generation FROM idgen.leases WHERE released_at IS NULL ORDER BY worker_id');

# ---------------------------------------------------------------------------
# Walk the chain.
# ---------------------------------------------------------------------------
for my $i (1 .. $#chain)
{
	my $to = $chain[$i];
	my $r = try_sql($node, "ALTER EXTENSION idgen UPDATE TO '$to'");
	is($r->{ret}, 0, "ALTER EXTENSION idgen UPDATE TO '$to' (from $chain[$i-1])")
	  or diag($r->{stderr});
	is($node->safe_psql('postgres', "SELECT extversion FROM pg_extension WHERE extname = 'idgen'"),
		$to, "extversion is $to");
}

# ---------------------------------------------------------------------------
# The catalog equals a fresh install.
# ---------------------------------------------------------------------------
$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('fresh', 'CREATE EXTENSION idgen');

sub dump_idgen
{
	my ($db) = @_;
	my ($out, $err);
	IPC::Run::run [
		'pg_dump', '--binary-upgrade', '--schema-only', '--exclude-schema=public',
		'--no-owner', '-d', $node->connstr($db)
	  ],
	  '>', \$out, '2>', \$err
	  or die "pg_dump $db failed: $err";
	my @keep;
	for my $l (split /\n/, $out)
	{
		next if $l =~ /binary_upgrade_set_next_\w+_oid|binary_upgrade_set_next_\w+_relfilenode|binary_upgrade_set_next_\w+_relfilenumber/;
		next if $l =~ /binary_upgrade_set_next_attribute_versions/;
		next if $l =~ /^\\(un)?restrict /;
		# transaction ids and OIDs of the binary-upgrade bookkeeping
		$l =~ s/relfrozenxid = '\d+', relminmxid = '\d+'/relfrozenxid = <xid>, relminmxid = <mxid>/;
		$l =~ s/^WHERE oid = '\d+';/WHERE oid = <oid>;/;
		next if $l =~ /^-- Dumped (from|by)/;
		# a config-dump sequence's position is data, not catalog
		next if $l =~ /^SELECT pg_catalog\.setval\(/;
		# OIDs of the config-dump tables in binary_upgrade_create_empty_extension
		$l =~ s/\b\d{4,}\b/<oid>/g if $l =~ /binary_upgrade_create_empty_extension/;
		push @keep, $l;
	}
	return join("\n", @keep) . "\n";
}

my $catalog_sql = q{
SELECT 'member: ' || pg_describe_object(classid, objid, objsubid)
  FROM pg_depend
 WHERE refclassid = 'pg_extension'::regclass
   AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'idgen')
   AND deptype = 'e'
UNION ALL
SELECT format('function: %s returns %s kind=%s volatile=%s parallel=%s strict=%s leakproof=%s secdef=%s config=%s acl=%s comment=%s',
	      p.oid::regprocedure, pg_get_function_result(p.oid), p.prokind, p.provolatile,
	      p.proparallel, p.proisstrict, p.proleakproof, p.prosecdef, p.proconfig,
	      p.proacl, obj_description(p.oid, 'pg_proc'))
  FROM pg_proc p WHERE p.pronamespace = 'idgen'::regnamespace
UNION ALL
SELECT format('relation: %s kind=%s acl=%s comment=%s', c.oid::regclass, c.relkind, c.relacl,
	      obj_description(c.oid, 'pg_class'))
  FROM pg_class c WHERE c.relnamespace = 'idgen'::regnamespace
UNION ALL
SELECT format('column: %s.%s #%s %s acl=%s comment=%s', a.attrelid::regclass, a.attname, a.attnum,
	      format_type(a.atttypid, a.atttypmod), a.attacl, col_description(a.attrelid, a.attnum))
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
 WHERE c.relnamespace = 'idgen'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT format('config dump: %s where %L', cfg::regclass, cond)
  FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS u(cfg, cond)
 WHERE e.extname = 'idgen'
UNION ALL
SELECT format('extension: version=%s relocatable=%s schema=%s', extversion, extrelocatable,
	      extnamespace::regnamespace)
  FROM pg_extension WHERE extname = 'idgen'
UNION ALL
SELECT format('schema: acl=%s comment=%s', n.nspacl, obj_description(n.oid, 'pg_namespace'))
  FROM pg_namespace n WHERE n.nspname = 'idgen'
ORDER BY 1};

my $upgraded = $node->safe_psql('postgres', $catalog_sql);
my $fresh = $node->safe_psql('fresh', $catalog_sql);
like($upgraded, qr/^config dump: /m, 'the catalog listing includes the config-dump tables');
is($upgraded, $fresh,
	"catalog after 1.0 -> $default equals a fresh install of $default: members, function properties, privileges, comments, config-dump tables"
);

my $dump_upgraded = dump_idgen('postgres');
my $dump_fresh = dump_idgen('fresh');
like($dump_fresh, qr/CREATE FUNCTION idgen\.snowflake_next\(\)/,
	'pg_dump --binary-upgrade writes the extension members');
is($dump_upgraded, $dump_fresh,
	"pg_dump --binary-upgrade --schema-only: upgraded equals fresh");
if ($dump_upgraded ne $dump_fresh)
{
	my $dir = PostgreSQL::Test::Utils::tempdir();
	PostgreSQL::Test::Utils::append_to_file("$dir/upgraded.sql", $dump_upgraded);
	PostgreSQL::Test::Utils::append_to_file("$dir/fresh.sql", $dump_fresh);
	my ($diff) = ('');
	IPC::Run::run [ 'diff', '-u', "$dir/fresh.sql", "$dir/upgraded.sql" ], '>', \$diff;
	diag($diff);
}

# ---------------------------------------------------------------------------
# The data survived.
# ---------------------------------------------------------------------------
my $orders_after = take($node, 'orders', 5);
cmp_ok($orders_after->[0], '>', $orders_before->[-1],
	'segment tag orders continues above its 1.0 draws');
my $invoices_after = take($node, 'invoices', 1);
cmp_ok($invoices_after->[0], '>', $invoices_before->[-1],
	'segment tag invoices continues above its 1.0 draws');
cmp_ok($node->safe_psql('postgres', 'SELECT idgen.snowflake_next()'),
	'>', $last_sf, 'Snowflake IDs keep increasing across the update');
is($node->safe_psql('postgres',
		q{SELECT count(*) FROM idgen.probes WHERE tbl = 'public.orders_t'::regclass}),
	'1', 'the probe registered on 1.0 is still registered');
is($node->safe_psql('postgres',
		q{SELECT duplicates = 0 AND ids_checked >= 50 FROM idgen.probe_run() WHERE tbl = 'public.orders_t'::regclass}),
	't', 'probe_run() after the update still checks the 1.0 probe');
is($node->safe_psql('postgres',
		'SELECT worker_id, holder, generation FROM idgen.leases WHERE released_at IS NULL ORDER BY worker_id'),
	$leases_before, 'the lease rows survived the update');
ok(wait_state($node, 'held', 30), 'the lease worker still holds its lease after the update');
is(status_of($node, 'worker_id') . '/' . status_of($node, 'lease_generation'),
	"$worker/$generation", 'same worker id and lease generation');
# A renewal through the updated lease functions: wait past one renewal
# period (a third of the TTL).
my $renewed = $node->safe_psql('postgres',
	"SELECT renewed_at FROM idgen.leases WHERE worker_id = $worker AND released_at IS NULL");
my ($ok) = poll_until($node,
	"SELECT renewed_at > '$renewed' FROM idgen.leases WHERE worker_id = $worker AND released_at IS NULL",
	't', 30);
ok($ok, 'the lease worker renews through the updated lease functions');

$node->stop;
done_testing();
