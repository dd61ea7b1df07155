# Snowflake availability after a crash restart of a self-coordinating node.
#
# A node that is its own coordinator (idgen.coordinator empty, worker id
# leased) crashes (immediate stop) while issuing.  On restart it leases its
# own worker id again.  The id's recorded horizon lies up to a TTL ahead,
# but the node proves from its WAL-replayed durable time floor what it can
# have issued, so it need not wait for the horizon.  For idgen.lease_ttl =
# 30 and 6: three crash restarts with the clock right, whose unavailability
# (from the server accepting connections to the first Snowflake ID) is
# printed, not asserted; then one with the server's clock set back 1 s
# (libfaketime).  Asserted: the node keeps its worker id, and no ID ever
# repeats or falls below one issued before a crash.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use IdgenTest;
use Time::HiRes qw(usleep);

require_libfaketime();

# Issue Snowflake IDs into table ids for about $secs seconds, committed.
sub issue_for
{
	my ($node, $phase, $secs) = @_;
	$node->safe_psql(
		'postgres', qq{
DO \$\$
DECLARE t0 timestamptz := clock_timestamp();
BEGIN
    WHILE clock_timestamp() < t0 + make_interval(secs => $secs) LOOP
        INSERT INTO ids (phase, id) SELECT '$phase', idgen.snowflake_next() FROM generate_series(1, 20);
        COMMIT;
        PERFORM pg_sleep(0.01);
    END LOOP;
END \$\$});
	return;
}

# Seconds from now until snowflake_next() succeeds (polling every 20 ms),
# or undef after $timeout s; the first ID goes into ids as $phase.
sub seconds_to_first_id
{
	my ($node, $phase, $timeout) = @_;
	my $t0 = Time::HiRes::time();
	while (Time::HiRes::time() - $t0 < $timeout)
	{
		my ($ret) = $node->psql('postgres',
			"INSERT INTO ids (phase, id) VALUES ('$phase', idgen.snowflake_next())");
		return Time::HiRes::time() - $t0 if $ret == 0;
		usleep(20_000);
	}
	return undef;
}

for my $ttl (30, 6)
{
	my $node = PostgreSQL::Test::Cluster->new("self_coordinating_ttl$ttl");
	$node->init;
	$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'idgen'
idgen.lease_ttl = $ttl
idgen.time_floor_reserve = 500ms
restart_after_crash = on
});
	my $clock = $node->basedir . '/faketime_offset';
	set_clock($clock, '+0');
	start_faked($node, $clock);
	$node->safe_psql(
		'postgres', q{
CREATE EXTENSION idgen;
CREATE TABLE ids (ord bigserial PRIMARY KEY, phase text NOT NULL, id bigint NOT NULL);
});
	ok(wait_state($node, 'held', 2 * $ttl), "ttl $ttl: lease held");
	my $worker = status_of($node, 'worker_id');
	my @waits;

	for my $round (1 .. 4)
	{
		my $offset = $round == 4 ? '-1' : '+0';
		issue_for($node, "before $round", 1.5);
		my $max_old = $node->safe_psql('postgres', 'SELECT max(id) FROM ids');
		$node->stop('immediate');
		set_clock($clock, $offset);
		start_faked($node, $clock);
		my $wait = seconds_to_first_id($node, "after $round", 3 * $ttl + 10);
		ok(defined $wait, "ttl $ttl, crash $round (clock $offset s): Snowflake IDs again");
		push @waits, $wait if $round <= 3 && defined $wait;
		diag(sprintf('ttl %d, crash restart %d (clock %s s): no Snowflake ID for %.2f s after accepting connections',
				$ttl, $round, $offset, $wait // -1));
		is(status_of($node, 'worker_id'), $worker, "ttl $ttl, crash $round: same worker id");
		issue_for($node, "after $round", 0.5);
		is( $node->safe_psql(
				'postgres',
				"SELECT count(*) FILTER (WHERE id <= $max_old) FROM ids WHERE phase = 'after $round'"),
			'0',
			"ttl $ttl, crash $round: every new ID above every ID issued before the crash");
	}
	is($node->safe_psql('postgres', 'SELECT count(*) - count(DISTINCT id) FROM ids'),
		'0', "ttl $ttl: no ID issued twice");
	diag("ttl $ttl: unavailability after crash restarts: "
		  . join(', ', map { sprintf('%.2f s', $_) } @waits));
	$node->stop;
}

done_testing();
