# Shared by scripts/demo and scripts/test: install what idgen needs from
# Debian's archive, build and install the extension.  Sourced, not run.
# Runs as root (PostgreSQL's servers themselves run as the 'postgres' user).

set -euo pipefail

IDGEN_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# IDGEN_PG_BIN picks another PostgreSQL installation (e.g. a private copy).
PG_BIN=${IDGEN_PG_BIN:-/usr/lib/postgresql/15/bin}
export PATH="$PG_BIN:$PATH"

# Debian packages, one per line, in scripts/packages.d/*.list (one list per
# concern, so each test layer names what it needs in its own file).
mapfile -t IDGEN_PACKAGES < <(cat "$IDGEN_ROOT"/scripts/packages.d/*.list | sed -e 's/#.*//' -e '/^[[:space:]]*$/d')

idgen_require_root() {
	if [ "$(id -u)" -ne 0 ]; then
		echo "$0: run this as root (it installs Debian packages); the servers run as 'postgres'." >&2
		exit 1
	fi
}

# Whether package $1 is installed, or provided by an installed package (as
# npm is by a nodejs package that bundles it, which conflicts with Debian's
# npm).
idgen_package_present() {
	local provided
	[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" = "install ok installed" ] && return 0
	# read the whole list before matching: grep -q stopping early would
	# break the pipe, and pipefail would then call the package missing
	provided=$(dpkg-query -W -f='${Status}|${Provides}\n' 2>/dev/null |
		sed -n 's/^install ok installed|//p' | tr ',' '\n' |
		sed -e 's/(.*//' -e 's/[[:space:]]//g' || true)
	grep -qx -- "$1" <<<"$provided"
}

idgen_install_packages() {
	local missing=()
	for p in "${IDGEN_PACKAGES[@]}"; do
		idgen_package_present "$p" || missing+=("$p")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		echo "== installing: ${missing[*]}"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
	fi
	# Debian's postgresql-15 package creates and starts a default cluster;
	# idgen's scripts start their own throwaway servers and need neither.
}

idgen_build_install() {
	echo "== building and installing idgen"
	make -C "$IDGEN_ROOT" -s PG_CONFIG="$PG_BIN/pg_config" >/dev/null
	make -C "$IDGEN_ROOT" -s PG_CONFIG="$PG_BIN/pg_config" install >/dev/null
}

# A copy of the source tree the unprivileged 'postgres' user can write in
# (pg_regress and the TAP framework write their results next to the tests).
idgen_user_copy() {
	local dir
	dir=$(mktemp -d /tmp/idgen-"$1".XXXXXX)
	cp -a "$IDGEN_ROOT"/. "$dir"/
	rm -rf "$dir"/.git
	chown -R postgres:postgres "$dir"
	echo "$dir"
}

# ---------------------------------------------------------------------------
# PostgreSQL majors and their Debian roots (scripts/roots, scripts/test,
# scripts/package).  15 runs natively on this bookworm machine (or from
# IDGEN_PG_BIN); 17 and 18 run in debootstrap roots of trixie and unstable.

IDGEN_PG_VERSIONS_ALL="15 17 18"
IDGEN_ROOTS_DIR=${IDGEN_ROOTS_DIR:-/var/cache/idgen-roots}

idgen_suite_of() {
	case $1 in
		15) echo bookworm ;;
		17) echo trixie ;;
		18) echo unstable ;;
		*) echo "idgen: no Debian suite ships PostgreSQL $1 here (tested: $IDGEN_PG_VERSIONS_ALL)" >&2; return 1 ;;
	esac
}

# The Debian archive this machine's apt uses (the URI serving its own
# release's main component), read from /etc/apt at run time.
idgen_mirror() {
	local codename
	codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
	local f
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] && { cat "$f"; echo; }
	done |
		perl -e '
			my $want = shift; local $/; my $all = <STDIN>;
			for my $para (split /\n\s*\n/, $all) {
				# deb822 stanza
				my ($uri) = $para =~ /^URIs:\s*(\S+)/mi;
				my ($suites) = $para =~ /^Suites:\s*(.+)$/mi;
				if ($uri && $suites && grep { $_ eq $want } split " ", $suites) { print "$uri\n"; exit 0 }
				# one-line format
				for (split /\n/, $para) {
					if (/^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/ && $2 eq $want) { print "$1\n"; exit 0 }
				}
			}
			exit 1' "$codename" || { echo "idgen: no Debian mirror for $codename in /etc/apt" >&2; return 1; }
}

# The Debian packages of scripts/packages.d for PostgreSQL major $1: the
# lists name PostgreSQL 15's packages (this machine's release); for other
# majors the major in the package names is substituted, and the
# postgresql-contrib metapackage (part of postgresql-N since 10, and it
# would pull the suite's default major) is left out.
idgen_packages_for() {
	local v=$1
	if [ "$v" = 15 ]; then
		printf '%s\n' "${IDGEN_PACKAGES[@]}"
	else
		printf '%s\n' "${IDGEN_PACKAGES[@]}" |
			sed -e "s/^postgresql-15\$/postgresql-$v/" -e "s/^postgresql-15-/postgresql-$v-/" \
				-e "s/^postgresql-server-dev-15\$/postgresql-server-dev-$v/" -e '/^postgresql-contrib$/d'
	fi
}

# Run "$@" in root directory $1 with /proc and /dev mounted, in a private
# mount namespace (the mounts vanish with the command).  PG_TEST_PORT_DIR,
# when set, names a directory of the root's own: the root's postgres user
# has another uid than the host's and could not take over the host's stale
# port reservations (the test servers listen on unix sockets in private
# directories only, so equal port numbers inside and outside never clash).
idgen_root_exec() {
	local root=$1
	shift
	unshare --mount --propagation private -- bash -euc '
		r=$1; shift
		mount -t proc proc "$r/proc"
		mount --rbind /dev "$r/dev"
		if [ -n "${PG_TEST_PORT_DIR:-}" ]; then
			mkdir -p "$r$PG_TEST_PORT_DIR"
			chmod 1777 "$r$PG_TEST_PORT_DIR"
		fi
		exec chroot "$r" /usr/bin/env -i HOME=/root LANG=C.UTF-8 \
			PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
			NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt \
			PG_TEST_PORT_DIR="${PG_TEST_PORT_DIR:-}" DEBIAN_FRONTEND=noninteractive \
			"$@"' _ "$root" "$@"
}

# A pristine root of suite $1 (debootstrap, apt configured, PostgreSQL's
# packages told not to start services or create a default cluster).
# Caller holds the suite's lock.
idgen_root_debootstrap() {
	local suite=$1 dir=$2 mirror
	[ -f "$dir/.debootstrapped" ] && return 0
	command -v debootstrap >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
	mirror=$(idgen_mirror)
	echo "== debootstrap $suite into $dir" >&2
	rm -rf "$dir"
	debootstrap --variant=minbase "$suite" "$dir" "$mirror" >"$dir.debootstrap.log" 2>&1 ||
		{ tail -n 30 "$dir.debootstrap.log" >&2; return 1; }
	echo "deb $mirror $suite main" >"$dir/etc/apt/sources.list"
	# unstable's Release file as served can be past its Valid-Until.
	[ "$suite" = unstable ] && echo 'Acquire::Check-Valid-Until "false";' >"$dir/etc/apt/apt.conf.d/99idgen-valid-until"
	printf '#!/bin/sh\nexit 101\n' >"$dir/usr/sbin/policy-rc.d"
	chmod 755 "$dir/usr/sbin/policy-rc.d"
	touch "$dir/.debootstrapped"
}

# apt-get install "$@" in root $1, with postgresql-common installed first
# and told to create no default cluster.
idgen_root_install() {
	local dir=$1
	shift
	idgen_root_exec "$dir" apt-get update -qq >/dev/null
	idgen_root_exec "$dir" apt-get install -y -qq --no-install-recommends postgresql-common >/dev/null
	sed -i 's/^#\? *create_main_cluster.*/create_main_cluster = false/' "$dir/etc/postgresql-common/createcluster.conf"
	idgen_root_exec "$dir" apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# The certificate authorities this machine adds to Debian's (for example
# a TLS-inspecting proxy's, in /usr/local/share/ca-certificates): a root
# must trust what the host trusts, or npm in it cannot reach its registry.
idgen_root_sync_cas() {
	local dir=$1 f changed=0
	[ -d /usr/local/share/ca-certificates ] || return 0
	mkdir -p "$dir/usr/local/share/ca-certificates"
	for f in /usr/local/share/ca-certificates/*.crt; do
		[ -e "$f" ] || continue
		if ! cmp -s "$f" "$dir/usr/local/share/ca-certificates/${f##*/}"; then
			cp "$f" "$dir/usr/local/share/ca-certificates/"
			changed=1
		fi
	done
	if [ $changed = 1 ] && [ -x "$dir/usr/sbin/update-ca-certificates" ]; then
		idgen_root_exec "$dir" update-ca-certificates >/dev/null 2>&1
	fi
	return 0
}

# Path of the test root for PostgreSQL major $1, created (or brought up to
# date with the package lists) first.
idgen_root_ensure() {
	local v=$1 suite dir want
	suite=$(idgen_suite_of "$v")
	dir=$IDGEN_ROOTS_DIR/$suite
	mkdir -p "$IDGEN_ROOTS_DIR"
	want=$( (idgen_packages_for "$v"; cat "$IDGEN_ROOT"/scripts/roots.d/*.list) | sed -e 's/#.*//' -e '/^[[:space:]]*$/d' | sort -u | tr '\n' ' ')
	(
		flock 9
		if [ -f "$dir/.ready" ] && [ "$(cat "$dir/.ready")" = "$want" ]; then
			idgen_root_sync_cas "$dir"
			exit 0
		fi
		idgen_root_debootstrap "$suite" "$dir.clean"
		if [ ! -f "$dir/.debootstrapped" ]; then
			rm -rf "$dir"
			cp -a "$dir.clean" "$dir"
		fi
		echo "== installing into the $suite root: $want" >&2
		# shellcheck disable=SC2086
		idgen_root_install "$dir" $want
		idgen_root_sync_cas "$dir"
		echo "$want" >"$dir/.ready"
	) 9>"$IDGEN_ROOTS_DIR/.$suite.lock" >&2 || return 1
	echo "$dir"
}

# Path of the pristine root for PostgreSQL major $1 (never modified; use it
# as the lower layer of an overlay).
idgen_root_clean() {
	local v=$1 suite dir
	suite=$(idgen_suite_of "$v")
	dir=$IDGEN_ROOTS_DIR/$suite.clean
	mkdir -p "$IDGEN_ROOTS_DIR"
	( flock 9; idgen_root_debootstrap "$suite" "$dir" ) 9>"$IDGEN_ROOTS_DIR/.$suite.lock" >&2 || return 1
	echo "$dir"
}

idgen_roots_main() {
	local cmd=${1:-}
	shift || true
	case $cmd in
		ensure) idgen_root_ensure "$1" ;;
		clean) idgen_root_clean "$1" ;;
		run)
			local dir
			dir=$(idgen_root_ensure "$1")
			shift
			idgen_root_exec "$dir" "$@"
			;;
		*) echo "usage: $0 ensure|clean|run MAJOR [CMD...]" >&2; return 2 ;;
	esac
}
