# META.json, the PGXN distribution metadata, against the required keys and
# value formats of the PGXN Meta Spec 1.0.0 (no network, no server), and
# against this tree: the provided extension's file exists and its version
# is the control file's default_version.

use strict;
use warnings;

use FindBin;
use JSON::PP;
use Test::More;

my $top = "$FindBin::RealBin/../..";

sub slurp
{
	my ($f) = @_;
	open(my $fh, '<', $f) or die "could not open $f: $!";
	local $/;
	return scalar <$fh>;
}

my $meta = eval { JSON::PP->new->decode(slurp("$top/META.json")) };
ok($meta, 'META.json is valid JSON') or diag($@);
$meta //= {};

my $semver = qr/^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$/;
my $term = qr/^[A-Za-z][A-Za-z0-9_-]*$/;    # no spaces, no slashes, no backslashes

# Required keys of the 1.0.0 spec.
for my $k (qw(name abstract maintainer version license provides meta-spec))
{
	ok(exists $meta->{$k}, "required key $k present");
}
is($meta->{'meta-spec'}{version}, '1.0.0', 'meta-spec version is 1.0.0');
like($meta->{name} // '', $term, 'name is a term (at least two characters, no spaces or slashes)');
cmp_ok(length($meta->{name} // ''), '>=', 2, 'name has two characters or more');
like($meta->{version} // '', $semver, 'version is a semantic version');
ok(defined $meta->{abstract} && !ref $meta->{abstract} && length $meta->{abstract},
	'abstract is a non-empty string');

my @maint = ref $meta->{maintainer} eq 'ARRAY' ? @{ $meta->{maintainer} } : ($meta->{maintainer} // ());
ok(@maint && !grep({ ref $_ || !length $_ } @maint), 'maintainer: a string or a list of strings');

my %licenses = map { $_ => 1 } qw(agpl_3 apache_1_1 apache_2_0 artistic_1 artistic_2 bsd
  freebsd gfdl_1_2 gfdl_1_3 gpl_1 gpl_2 gpl_3 lgpl_2_1 lgpl_3_0 mit mozilla_1_0 mozilla_1_1
  openssl perl_5 postgresql qpl_1_0 ssleay sun zlib open_source restricted unrestricted unknown);
my $lic = $meta->{license};
ok( (!ref $lic && $licenses{ $lic // '' })
	  || (ref $lic eq 'ARRAY' && @$lic && !grep { !$licenses{$_} } @$lic)
	  || (ref $lic eq 'HASH' && %$lic),
	'license is one of the spec\'s strings, a list of them, or a name => URL object');

# provides
ok(ref $meta->{provides} eq 'HASH' && %{ $meta->{provides} }, 'provides is a non-empty object');
my ($default) = slurp("$top/idgen.control") =~ /^default_version\s*=\s*'([^']+)'/m;
for my $ext (sort keys %{ $meta->{provides} // {} })
{
	my $p = $meta->{provides}{$ext};
	like($ext, $term, "provides: $ext is a term");
	ok(defined $p->{file} && -f "$top/$p->{file}", "provides $ext: file $p->{file} exists");
	like($p->{version} // '', $semver, "provides $ext: version is a semantic version");
	ok(!defined $p->{docfile} || -f "$top/$p->{docfile}", "provides $ext: docfile exists");
}
my $idgen = $meta->{provides}{idgen} // {};
(my $want = $default // '') =~ s/^(\d+)\.(\d+)$/$1.$2.0/;
is($idgen->{version}, $want, "provides idgen: version matches the control file's default_version ($default)");
is($idgen->{file}, "idgen--$default.sql", 'provides idgen: file is the default version\'s full script');
is($meta->{version}, $want, 'the distribution version is the extension\'s');

# Optional keys, when present, have the spec's shapes.
my %phases = map { $_ => 1 } qw(configure build runtime test develop);
my %rels = map { $_ => 1 } qw(requires recommends suggests conflicts);
my $bad = 0;
for my $ph (keys %{ $meta->{prereqs} // {} })
{
	$bad++ unless $phases{$ph};
	for my $rel (keys %{ $meta->{prereqs}{$ph} })
	{
		$bad++ unless $rels{$rel};
		for my $v (values %{ $meta->{prereqs}{$ph}{$rel} })
		{
			$bad++ unless $v =~ /^(?:0|(?:[<>]=?|[=!]=)?\s*\d+\.\d+\.\d+(?:\s*,\s*(?:[<>]=?|[=!]=)\s*\d+\.\d+\.\d+)*)$/;
		}
	}
}
ok(exists $meta->{prereqs} && !$bad, 'prereqs: phases, relationships and version ranges as the spec defines them');
ok(ref $meta->{prereqs}{runtime}{requires} eq 'HASH' && $meta->{prereqs}{runtime}{requires}{PostgreSQL},
	'prereqs: runtime requires a PostgreSQL version');
like($meta->{release_status} // '', qr/^(stable|testing|unstable)$/, 'release_status is stable, testing or unstable');
ok(ref $meta->{tags} eq 'ARRAY' && @{ $meta->{tags} }
	  && !grep({ ref $_ || !length $_ || length $_ > 255 } @{ $meta->{tags} }),
	'tags: a list of strings of 1 to 255 characters');
my %res = map { $_ => 1 } qw(homepage bugtracker repository);
ok(ref $meta->{resources} eq 'HASH' && %{ $meta->{resources} }
	  && !grep({ !$res{$_} && !/^x_/i } keys %{ $meta->{resources} }),
	'resources: only homepage, bugtracker, repository (or x_ keys)');

done_testing();
