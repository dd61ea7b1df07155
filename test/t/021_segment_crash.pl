# idgen.segment_next() across crashes and restarts with synchronous_commit
# = off in the server.
#
# A grant is durable before any number from it leaves segment_next(),
# whatever the server's synchronous_commit: the worker commits its grants
# with synchronous_commit = on.  This server runs with synchronous_commit =
# off and a WAL writer that sleeps 10 s, so a grant committed
# asynchronously would still sit in WAL buffers when the server is killed,
# and after the crash the tag would hand out the same numbers again.
#
# Three rounds of: take 500 numbers (in two backends, from two tags), kill
# the server (immediate stop: no shutdown checkpoint, WAL buffers lost),
# start it.  Then a clean restart.  Throughout: no number is ever handed
# out twice, the first numbers after each restart are above everything
# before, every number lies in a grant the outbox still has after the
# crash, and the numbers buffered but unused at the crash are simply
# skipped (the next range starts where the last durable grant ended).

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use IdgenTest;
use Time::HiRes ();

my $t_start = Time::HiRes::time();

my $node = PostgreSQL::Test::Cluster->new('segment_crash');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'idgen'
idgen.worker_id = 1
idgen.database = 'postgres'
synchronous_commit = off
wal_writer_delay = 10s
wal_writer_flush_after = 0
});
$node->start;
$node->safe_psql(
	'postgres', q{
CREATE EXTENSION idgen;
SELECT idgen.segment_create('a', 1, 100);
SELECT idgen.segment_create('b', 1000, 7);
});
is($node->safe_psql('postgres', 'SHOW synchronous_commit'), 'off',
	'the server runs with synchronous_commit = off');

my %issued;       # number => "round/tag" for each tag
my %max;          # tag => largest number issued so far
my @dups;

# Record numbers, noting any repeat.
sub record
{
	my ($tag, $round, $nums) = @_;
	for my $v (@$nums)
	{
		push @dups, "$tag:$v" if exists $issued{$tag}{$v};
		$issued{$tag}{$v} = $round;
	}
	return;
}

# Every number issued so far lies in a grant event of its tag that the
# outbox still has; returns the numbers that do not.
sub outside_outbox
{
	my ($tag) = @_;
	my $ranges = $node->safe_psql('postgres',
		"SELECT string_agg(range_start || ':' || range_end, ',' ORDER BY range_start) FROM idgen.segment_events WHERE tag = '$tag' AND kind = 'grant'"
	);
	my @r = map { [ split /:/ ] } split /,/, $ranges;
	my @missing;
	for my $v (keys %{ $issued{$tag} })
	{
		push @missing, $v unless grep { $v >= $_->[0] && $v < $_->[1] } @r;
	}
	return scalar(@missing);
}

# Largest range end the outbox records for a tag.
sub outbox_end
{
	my ($tag) = @_;
	return $node->safe_psql('postgres',
		"SELECT max(range_end) FROM idgen.segment_events WHERE tag = '$tag' AND kind = 'grant'"
	);
}

for my $round (1 .. 4)
{
	my $how = $round <= 3 ? 'crash' : 'clean restart';

	# Take numbers: 500 of a in this backend, 150 of b in another.
	my $na = take($node, 'a', 500);
	my $nb = take($node, 'b', 150);
	is(scalar(@$na) + scalar(@$nb), 650, "round $round: took 650 numbers");
	if ($round > 1)
	{
		cmp_ok($na->[0], '>', $max{a},
			"round $round: first number of a after the $how is above all before ($na->[0] > $max{a})");
		cmp_ok($nb->[0], '>', $max{b},
			"round $round: first number of b after the $how is above all before ($nb->[0] > $max{b})");
	}
	my @sorted = sort { $a <=> $b } @$na;
	is_deeply($na, \@sorted, "round $round: numbers of a increase in call order");
	@sorted = sort { $a <=> $b } @$nb;
	is_deeply($nb, \@sorted, "round $round: numbers of b increase in call order");
	record('a', $round, $na);
	record('b', $round, $nb);
	$max{a} = $na->[-1];
	$max{b} = $nb->[-1];

	# Let a prefetch that is due (10% of the current range used) finish, so
	# that the grants before the stop are known; the crash then throws
	# buffered, unused numbers away.
	$node->poll_query_until('postgres',
		"SELECT bool_and(ranges_buffered = 2 OR current_next - current_start <= (current_end - current_start) * 10 / 100) FROM idgen.segments WHERE tag IN ('a', 'b')"
	) or die "prefetch did not finish";
	my %end_before = (a => outbox_end('a'), b => outbox_end('b'));

	if ($round <= 3)
	{
		$node->stop('immediate');
	}
	else
	{
		$node->stop('fast');
	}
	$node->start;

	# The grants made before the stop are all still there: durable before
	# their numbers were handed out (even the prefetched ones, whose
	# numbers nobody saw).
	is(outbox_end('a'), $end_before{a}, "round $round: after the $how the outbox still has every grant of a");
	is(outbox_end('b'), $end_before{b}, "round $round: after the $how the outbox still has every grant of b");
	is(outside_outbox('a') + outside_outbox('b'), 0,
		"round $round: every number issued lies in a grant the outbox kept");
	is($node->safe_psql('postgres',
			"SELECT string_agg(next_value::text, ',' ORDER BY tag) FROM idgen.segment_alloc"),
		"$end_before{a},$end_before{b}",
		"round $round: segment_alloc.next_value is where the last grant ended");
	is($node->safe_psql('postgres',
			"SELECT count(*) FROM idgen.segment_buffers()"),
		'0', "round $round: after the $how nothing is buffered");

	# The first number after the restart is the start of the first range
	# after the last durable grant: the unused buffered ranges are a gap.
	is($node->safe_psql('postgres', "SELECT idgen.segment_next('a')"),
		$end_before{a}, "round $round: a resumes at the end of its last durable grant");
	record('a', $round, [ $end_before{a} ]);
	$max{a} = $end_before{a};
}

is(scalar(@dups), 0, 'no number was handed out twice (' . join(' ', @dups[ 0 .. ($#dups < 9 ? $#dups : 9) ]) . ')');
is(scalar(keys %{ $issued{a} }), 4 * 501, 'tag a issued 2004 distinct numbers');
is(scalar(keys %{ $issued{b} }), 4 * 150, 'tag b issued 600 distinct numbers');

# Crash with callers in flight: a background session takes numbers in a
# loop, each committed into a table with synchronous_commit = on; the
# server is killed in the middle.  After the restart, every number in the
# table was issued once, and new numbers are above all of them.
$node->safe_psql('postgres',
	'CREATE TABLE taken (n bigint PRIMARY KEY)');
my $bg = $node->background_psql('postgres', on_error_stop => 0);
$bg->query_until(qr/started/, q{
SET synchronous_commit = on;
\echo started
DO $$
BEGIN
	FOR i IN 1..1000000 LOOP
		INSERT INTO taken SELECT idgen.segment_next('a') FROM generate_series(1, 10);
		COMMIT;
	END LOOP;
END
$$;
});
$node->poll_query_until('postgres', 'SELECT count(*) >= 3000 FROM taken')
  or die "background session took no numbers";
$node->stop('immediate');
# psql has lost its server; closing it may hit a broken pipe.
eval { $bg->quit; };
$node->start;
my $taken = $node->safe_psql('postgres', 'SELECT count(*), max(n) FROM taken');
my ($ntaken, $maxtaken) = split /\|/, $taken;
cmp_ok($ntaken, '>=', 3000, "in flight: $ntaken numbers committed before the crash");
my $old = join(',', sort { $a <=> $b } grep { $_ >= 0 } keys %{ $issued{a} });
is($node->safe_psql('postgres',
		"SELECT count(*) FROM taken WHERE n = ANY ('{$old}'::bigint[]) OR n <= $max{a}"),
	'0', 'in flight: the loop repeated no number issued before');
my $next = $node->safe_psql('postgres',
	"SELECT min(n) FROM (SELECT idgen.segment_next('a') AS n FROM generate_series(1, 100)) s");
cmp_ok($next, '>', $maxtaken, "in flight: after the crash numbers resume above the loop's ($next > $maxtaken)");
is(outside_outbox('a'), 0, 'in flight: the outbox covers every number issued before');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM taken t WHERE NOT EXISTS (SELECT 1 FROM idgen.segment_events e WHERE e.tag = 'a' AND e.kind = 'grant' AND t.n >= e.range_start AND t.n < e.range_end)"
	),
	'0', "in flight: the outbox covers every number the loop committed");

$node->stop;
note(sprintf('021_segment_crash ran for %.1f s', Time::HiRes::time() - $t_start));
done_testing();
