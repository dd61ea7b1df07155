# The UUIDv7 position file (idgen_uuidv7.state) is a checked state record.
#
# A clean shutdown writes it through the shared state-file writer: magic
# "IDGU", a format version and a CRC-32C (statefile.c).  At start-up a
# damaged file is ignored (logged) rather than trusted: its first bytes
# read as a position could put every later UUIDv7 at a time far from the
# clock.  A file in the format of libraries before 1.1 (the bare 8-byte
# position) is still honoured, so that the restart that installs this
# library keeps the order.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('uuid_state');
$node->init;
$node->append_conf('postgresql.conf', qq(
shared_preload_libraries = 'idgen'
idgen.worker_id = 1
));
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION idgen');
$node->safe_psql('postgres', 'SELECT idgen.uuidv7()');
$node->stop('fast');

my $file = $node->data_dir . '/idgen_uuidv7.state';
my $bytes = slurp_file($file);
is(length($bytes), 24, 'clean shutdown wrote a 24-byte state record');
is(unpack('V', $bytes), 0x49444755, 'it starts with the magic number "IDGU"');

# Seconds between the newest UUIDv7 and the server's clock.
sub ahead_of_clock
{
	return $node->safe_psql('postgres',
		'SELECT round(extract(epoch FROM idgen.uuidv7_time(idgen.uuidv7()) - clock_timestamp()))');
}

# A damaged record: every byte 0x7f, which read as a bare position lies
# thousands of years ahead.
open(my $fh, '>:raw', $file) or die "open $file: $!";
print $fh "\x7f" x 24;
close($fh);
my $log_offset = -s $node->logfile;
$node->start;
ok(!-e $file, 'the damaged file is consumed at start-up');
my $ahead = ahead_of_clock();
cmp_ok(abs($ahead), '<=', 60, "a damaged file is not trusted (UUIDv7 time is ${ahead} s from the clock)");
like(slurp_file($node->logfile, $log_offset),
	qr/ignoring damaged file "idgen_uuidv7.state"/, 'the damaged file is logged');
$node->stop('fast');

# The format before 1.1: the position alone, native byte order, here one
# hour ahead of the clock ((ms << 12 | fraction) << 10 | counter).
my $position = ((time() + 3600) * 1000) << 22;
open($fh, '>:raw', $file) or die "open $file: $!";
print $fh pack('Q', $position);
close($fh);
$node->start;
$ahead = ahead_of_clock();
cmp_ok($ahead, '>=', 3500, "a pre-1.1 position file is honoured (UUIDv7 time is ${ahead} s ahead)");
$node->stop('fast');

done_testing();
