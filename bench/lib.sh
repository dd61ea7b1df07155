# bench/lib.sh: what the bench/ commands share.  Sourced, not run.
#
# Installs what the benchmarks need, builds and installs idgen (unless
# BENCH_SKIP_BUILD=1), starts a throwaway PostgreSQL server as the
# 'postgres' user in a temporary directory (unix socket only) and stops it
# again when the script exits, and describes the machine for the results.

source "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"

BENCH_DIR=$IDGEN_ROOT/bench
BENCH_SKIP_BUILD=${BENCH_SKIP_BUILD:-0}

# Debian packages the benchmarks need beyond the test packages:
# pgstattuple (leaf density) is in postgresql-contrib, pgbench in
# postgresql-client, the charts come from gnuplot.
BENCH_PACKAGES=(postgresql-contrib postgresql-client-15 gnuplot-nox)

as_pg() { runuser -u postgres -- "$@"; }

# Root check, packages, build and install; sets idgen_build (what was measured).
bench_prepare() {
	local missing=() p
	idgen_require_root
	idgen_install_packages >&2
	for p in "${BENCH_PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		echo "== installing: ${missing[*]}" >&2
		apt-get update -qq >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
	fi
	local libdir sharedir
	libdir=$("$PG_BIN/pg_config" --pkglibdir)
	sharedir=$("$PG_BIN/pg_config" --sharedir)
	if [ "$BENCH_SKIP_BUILD" = 1 ]; then
		[ -f "$libdir/idgen.so" ] && [ -f "$sharedir/extension/idgen.control" ] ||
			{ echo "$0: BENCH_SKIP_BUILD=1 but idgen is not installed in $libdir" >&2; exit 1; }
		# Recorded now: the installed file can change while the server runs.
		idgen_build="installed idgen.so of $(date -r "$libdir/idgen.so" '+%F %T') (BENCH_SKIP_BUILD=1)"
		echo "== measuring the $idgen_build" >&2
	else
		idgen_build_install >&2
		idgen_build="built from $(git -C "$IDGEN_ROOT" describe --always --dirty 2>/dev/null || echo 'an unknown tree')"
	fi
	[ -f "$sharedir/extension/pgstattuple.control" ] ||
		{ echo "$0: pgstattuple is not installed in $sharedir (postgresql-contrib)" >&2; exit 1; }
}

# bench_start_server NAME 'setting = value' ...: initdb and start a server in
# a new temporary directory $bench_tmp with idgen preloaded, the given extra
# settings, and database idgen_bench with idgen, pgstattuple and
# bench/setup.sql loaded.  It is stopped and removed on exit.
bench_start_server() {
	local name=$1 setting
	shift
	bench_tmp=$(mktemp -d /tmp/idgen-"$name".XXXXXX)
	chown postgres:postgres "$bench_tmp"
	trap bench_stop_server EXIT
	trap 'exit 130' INT TERM
	as_pg initdb -D "$bench_tmp/data" -A trust >/dev/null
	{
		echo "listen_addresses = ''"
		echo "unix_socket_directories = '$bench_tmp'"
		echo "shared_preload_libraries = 'idgen'"
		echo "idgen.worker_id = 1"
		echo "idgen.database = 'idgen_bench'"
		echo "jit = off"
		for setting; do echo "$setting"; done
	} >>"$bench_tmp/data/postgresql.conf"
	as_pg pg_ctl -D "$bench_tmp/data" -l "$bench_tmp/server.log" -w start >/dev/null
	echo "== throwaway server running in $bench_tmp" >&2
	as_pg psql -X -q -h "$bench_tmp" -d postgres -v ON_ERROR_STOP=1 -c 'CREATE DATABASE idgen_bench' >/dev/null
	pg -c 'CREATE EXTENSION idgen' -c 'CREATE EXTENSION pgstattuple' >/dev/null
	pg <"$BENCH_DIR/setup.sql" >/dev/null
}

# Stopping the server also ends any session still running.
bench_stop_server() {
	[ -n "${bench_tmp:-}" ] || return 0
	as_pg pg_ctl -D "$bench_tmp/data" -m fast stop >/dev/null 2>&1 || true
	rm -rf "$bench_tmp"
	bench_tmp=
}

pg() { as_pg psql -X -q -At -h "$bench_tmp" -d idgen_bench -v ON_ERROR_STOP=1 "$@"; }

# One line: CPUs, CPU model, memory, kernel, PostgreSQL, clocksource.
bench_machine() {
	local cpu_model mem_gib clocksource
	cpu_model=$(awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo)
	mem_gib=$(awk '/^MemTotal/ {printf "%.1f", $2 / 1048576}' /proc/meminfo)
	clocksource=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource 2>/dev/null || echo unknown)
	echo "$(nproc) CPUs (nproc), ${cpu_model:-unknown CPU}, $mem_gib GiB RAM, Linux $(uname -r), PostgreSQL $(pg -c 'SHOW server_version'), clocksource $clocksource"
}
