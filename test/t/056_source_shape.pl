# The shape of src/ (issue 13), checked on the tree and the installed
# library; no server needed.
#
#  1. idgen.so exports only idgen_*, pg_finfo_idgen_*, Pg_magic_func and
#     _PG_init (nm -D --defined-only): on PostgreSQL 15 every other extern
#     lands in the server's global symbol space.
#  2. No two src/*.c modules depend on each other in a circle, except
#     through shmem.c (the shared-memory sizing hub) and idgen.c (_PG_init).
#     A module depends on another when it includes, directly or through
#     other src/*.h files, the header x.h of the module x.c.
#  3. Every src/*.c over 500 lines says at its top (its file banner) why:
#     a line with "over 500 lines".

use strict;
use warnings;

use FindBin;
use Test::More;

my $src = "$FindBin::RealBin/../../src";

sub slurp
{
	my ($f) = @_;
	open(my $fh, '<', $f) or die "could not open $f: $!";
	local $/;
	return scalar <$fh>;
}

# 1. Exported symbols
my $pkglibdir = `pg_config --pkglibdir`;
chomp $pkglibdir;
my $so = "$pkglibdir/idgen.so";
ok(-f $so, "installed library $so exists");
my @nm = `nm -D --defined-only '$so'`;
is($?, 0, 'nm -D --defined-only ran');
my @symbols = map { (split ' ')[-1] } grep { /\S/ } @nm;
cmp_ok(scalar(@symbols), '>', 10, 'nm listed the exported symbols');
my @foreign = grep { !/^(idgen_\w+|pg_finfo_idgen_\w+|Pg_magic_func|_PG_init)$/ } @symbols;
is_deeply(\@foreign, [], 'every exported symbol is idgen_-prefixed or required by PostgreSQL')
  or diag('not prefixed: ' . join(' ', @foreign));

# 2. Include cycles between modules
opendir(my $dh, $src) or die "could not open $src: $!";
my @files = sort grep { /\.[ch]$/ } readdir($dh);
closedir($dh);
my %exists = map { $_ => 1 } @files;
my %includes;    # file -> [src headers it includes]
for my $f (@files)
{
	my $text = slurp("$src/$f");
	$includes{$f} = [ grep { $exists{$_} } $text =~ /^#include\s+"([^"]+)"/mg ];
}

# headers a file reaches, through src headers
sub reach
{
	my ($f) = @_;
	my %seen;
	my @todo = @{ $includes{$f} };
	while (my $h = shift @todo)
	{
		next if $seen{$h}++;
		push @todo, @{ $includes{$h} // [] };
	}
	return keys %seen;
}

my %hub = ('shmem.c' => 1, 'idgen.c' => 1);
my @modules = grep { /\.c$/ && !$hub{$_} } @files;
my %edges;
for my $c (@modules)
{
	for my $h (reach($c))
	{
		(my $dep = $h) =~ s/\.h$/.c/;
		$edges{$c}{$dep} = 1 if $exists{$dep} && !$hub{$dep} && $dep ne $c;
	}
}
cmp_ok(scalar(keys %edges), '>', 5, 'module dependencies found');

# Tarjan's strongly connected components: every one of two or more
# modules is a cycle.
my ($index, @stack, %on_stack, %idx, %low, @cycles) = (0);
my $strong;
$strong = sub {
	my ($v) = @_;
	$idx{$v} = $low{$v} = $index++;
	push @stack, $v;
	$on_stack{$v} = 1;
	for my $w (sort keys %{ $edges{$v} // {} })
	{
		if (!defined $idx{$w})
		{
			$strong->($w);
			$low{$v} = $low{$w} if $low{$w} < $low{$v};
		}
		elsif ($on_stack{$w})
		{
			$low{$v} = $idx{$w} if $idx{$w} < $low{$v};
		}
	}
	if ($low{$v} == $idx{$v})
	{
		my @scc;
		my $w;
		do
		{
			$w = pop @stack;
			$on_stack{$w} = 0;
			push @scc, $w;
		} while ($w ne $v);
		push @cycles, join(' <-> ', sort @scc) if @scc > 1;
	}
};
$strong->($_) for grep { !defined $idx{$_} } sort @modules;

is_deeply(\@cycles, [], 'no include cycle between modules (shmem.c and idgen.c excepted)')
  or diag('cycle: ' . join('; ', @cycles));

# 3. Long files say why
my @long;
for my $c (grep { /\.c$/ } @files)
{
	my $text = slurp("$src/$c");
	my $lines = () = $text =~ /\n/g;
	next if $lines <= 500;
	my ($banner) = $text =~ m{\A(/\*.*?\*/)}s;
	push @long, "$c ($lines lines)" unless ($banner // '') =~ /over 500 lines/i;
}
is_deeply(\@long, [], 'every .c over 500 lines says why in its banner')
  or diag('without a reason: ' . join(', ', @long));

done_testing();
