# idgen.uuidv7() in hundreds of fresh connections.
#
# Every connection is a new backend forked from the postmaster.  The random
# bits of UUIDv7 come from a per-process buffer of CSPRNG output (random.c);
# RFC 9562 section 6.9 forbids sharing random state between processes.  If a
# buffer (or the generator state behind it) were inherited through fork, two
# backends would hand out the same random tails -- most visibly the first
# value of a fresh buffer.  So: many fresh connections, each taking a few
# IDs, and all random tails must differ; on a preloaded server (where the
# postmaster has loaded idgen before forking) and on a not-preloaded one.
#
# Connections are opened with psql's \connect, fifty per psql run: each
# \connect is a new connection and so a new backend forked from the
# postmaster, exactly as a new client would get, without starting psql (and
# IPC::Run) once per connection, which on a loaded test machine cost ~100 ms
# a time and pushed this test well past a minute.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $CONNECTIONS = 200;    # fresh connections per server (400 in all)
my $PER_CONNECTION = 3;   # uuidv7() calls per connection
my $TS_EVERY = 5;         # every 5th connection first calls uuidv7(ts)
my $PER_PSQL = 50;        # connections per psql run
my $TS = '2024-01-01 00:00:00+00';
my $TS_PREFIX = '018cc251-f400-7000-';    # 1704067200000 ms, fraction 0

my $UUID_V7 = qr/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

# The 52 random bits below the counter: the last 13 hex digits.
sub tail { my ($u) = @_; (my $h = $u) =~ s/-//g; return substr($h, 19); }

# Open $CONNECTIONS fresh connections one after another.  Connection $i runs
# sql_for($i) as its first statements; returns one array of output rows per
# connection.
sub fresh_connections
{
	my ($node, $sql_for) = @_;
	my @result;
	while (@result < $CONNECTIONS)
	{
		my $first = @result;
		my $last = $first + $PER_PSQL - 1;
		$last = $CONNECTIONS - 1 if $last > $CONNECTIONS - 1;
		my $out = $node->safe_psql('postgres',
			join('', map { "\\connect\n" . $sql_for->($_) . "\\echo --\n" } $first .. $last));
		my @conns = split /^--\n?/m, $out;
		die "expected output of " . ($last - $first + 1) . " connections, got " . scalar(@conns)
		  unless @conns == $last - $first + 1;
		push @result, map { [ split /\n/ ] } @conns;
	}
	return @result;
}

sub is_ts_connection { return $_[0] % $TS_EVERY == 0; }

sub check_server
{
	my ($node, $label, $preloaded) = @_;
	my $started = time;

	$node->safe_psql('postgres', 'CREATE EXTENSION idgen');

	my @conns = fresh_connections(
		$node,
		sub {
			my ($i) = @_;
			my $sql = '';
			$sql .= "SELECT pg_backend_pid(), idgen.uuidv7('$TS');\n"
			  if is_ts_connection($i);
			return $sql
			  . "SELECT pg_backend_pid(), idgen.uuidv7() FROM generate_series(1, $PER_CONNECTION);\n";
		});

	# @first: the first uuidv7() of connections where it was the very first
	# draw from the buffer; @ts: the uuidv7(ts) of the others; @all: every
	# uuidv7(); @per_conn: the uuidv7()s of each connection.
	my (%pids, @first, @ts, @all, @per_conn, $malformed_rows);
	$malformed_rows = 0;
	for my $i (0 .. $#conns)
	{
		my @rows = map { [ split /\|/ ] } @{ $conns[$i] };
		my $want = $PER_CONNECTION + (is_ts_connection($i) ? 1 : 0);
		$malformed_rows++ unless @rows == $want;
		my %pid_here = map { $_->[0] => 1 } @rows;
		$malformed_rows++ unless keys %pid_here == 1;
		$pids{ $rows[0][0] }++;
		if (is_ts_connection($i))
		{
			push @ts, (shift @rows)->[1];
		}
		else
		{
			push @first, $rows[0][1];
		}
		my @ids = map { $_->[1] } @rows;
		push @all, @ids;
		push @per_conn, \@ids;
	}
	my $n_all = scalar(@all);
	my $n_ts = scalar(@ts);
	my $n_first = scalar(@first);

	is($malformed_rows, 0,
		"$label: every connection returned its rows, from one backend");
	is(scalar(keys %pids), $CONNECTIONS,
		"$label: $CONNECTIONS connections, each a distinct backend");
	is(scalar(grep { !/$UUID_V7/ } @all, @ts),
		0, "$label: every ID is a well-formed version 7 UUID");

	my %ids = map { $_ => 1 } @all;
	is(scalar(keys %ids), $n_all, "$label: all $n_all uuidv7() IDs distinct");

	my %tails = map { tail($_) => 1 } @all, @ts;
	is(scalar(keys %tails), $n_all + $n_ts,
		"$label: all " . ($n_all + $n_ts) . " random tails (52 bits) distinct");

	my %first_tails = map { tail($_) => 1 } @first;
	is(scalar(keys %first_tails), $n_first,
		"$label: the first random value of a fresh buffer differs in all $n_first connections (uuidv7())"
	);

	# uuidv7(ts) takes all 62 bits of rand_b from the buffer's first word:
	# with a fixed ts, whole UUIDs from fresh connections must differ.
	my %ts = map { $_ => 1 } @ts;
	is(scalar(keys %ts), $n_ts,
		"$label: the first random value of a fresh buffer differs in all $n_ts connections (uuidv7(ts), whole UUIDs)"
	);
	is(scalar(grep { index($_, $TS_PREFIX) != 0 } @ts),
		0, "$label: uuidv7('$TS') embeds exactly that time");

	# Within each connection the IDs increase, as they must per backend.
	my $bad_within = 0;
	for my $ids (@per_conn)
	{
		for my $k (1 .. $#$ids)
		{
			$bad_within++ unless $ids->[ $k - 1 ] lt $ids->[$k];
		}
	}
	is($bad_within, 0, "$label: IDs strictly increasing within each connection");

	# Connections run one after another; on a preloaded server the shared
	# position makes that order exact.  (The hex text of a UUID sorts as the
	# uuid type does.)
	if ($preloaded)
	{
		my @violations;
		for my $k (1 .. $#all)
		{
			push @violations, "$all[$k-1] >= $all[$k]"
			  unless $all[ $k - 1 ] lt $all[$k];
		}
		is(scalar(@violations), 0,
			"$label: IDs strictly increasing across successive connections")
		  or diag(join("\n", @violations[ 0 .. ($#violations < 4 ? $#violations : 4) ]));
	}

	# The tails look random: every bit of the 52 is set in some but not all
	# first values (binomial(160, 1/2): 20%..80% is more than 7 sigma).
	my @bit_counts = (0) x 52;
	for my $u (@first)
	{
		my $t = tail($u);
		for my $d (0 .. 12)
		{
			my $nibble = hex(substr($t, $d, 1));
			for my $b (0 .. 3)
			{
				$bit_counts[ $d * 4 + $b ]++ if $nibble & (8 >> $b);
			}
		}
	}
	my @skewed =
	  grep { $bit_counts[$_] < 0.2 * $n_first || $bit_counts[$_] > 0.8 * $n_first }
	  0 .. 51;
	is(scalar(@skewed), 0,
		"$label: no bit of the first random values is stuck or heavily skewed")
	  or diag("bit counts: @bit_counts");
	my %lead = map { substr(tail($_), 0, 1) => 1 } @first;
	is(scalar(keys %lead), 16,
		"$label: the leading tail digit of the first values takes all 16 values");

	# The same in SQL, comparing as uuid: load every uuidv7() into a table.
	$node->safe_psql('postgres',
		'CREATE TABLE fresh (n int PRIMARY KEY, u uuid NOT NULL)');
	my $n = 0;
	$node->safe_psql('postgres',
		'INSERT INTO fresh VALUES ' . join(',', map { $n++; "($n, '$_')" } @all));
	is( $node->safe_psql(
			'postgres', q{
SELECT count(*), count(DISTINCT u), count(DISTINCT substr(replace(u::text, '-', ''), 20))
  FROM fresh
}),
		"$n_all|$n_all|$n_all",
		"$label: in SQL: IDs and their 52-bit tails all distinct");
	if ($preloaded)
	{
		is( $node->safe_psql(
				'postgres', q{
SELECT count(*) FROM (SELECT u, lag(u) OVER (ORDER BY n) AS prev FROM fresh) s
 WHERE u <= prev
}),
			'0',
			"$label: in SQL: IDs strictly increasing as uuid across all connections"
		);
	}

	note sprintf("%s: %d fresh connections in %.1f s",
		$label, $CONNECTIONS, time - $started);
	return [ @first, @ts ];
}

my $preloaded = PostgreSQL::Test::Cluster->new('fresh_preloaded');
$preloaded->init;
$preloaded->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'idgen'
idgen.worker_id = 1
});
$preloaded->start;

my $plain = PostgreSQL::Test::Cluster->new('fresh_not_preloaded');
$plain->init;
$plain->start;

my $first_pre = check_server($preloaded, 'preloaded', 1);
my $first_plain = check_server($plain, 'not preloaded', 0);

# Across the two servers as well: no first value repeats.
my %both = map { tail($_) => 1 } @$first_pre, @$first_plain;
is(scalar(keys %both), 2 * $CONNECTIONS,
	'first random values are distinct across both servers');

$preloaded->stop;
$plain->stop;
done_testing();
