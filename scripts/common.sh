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
