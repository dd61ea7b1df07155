#!/usr/bin/env bash
# idgen's coordinator made highly available with pg_auto_failover.
#
# One monitor, a coordinator primary and its synchronous standby (one
# pg_auto_failover formation), and any number of idgen nodes that lease
# their Snowflake worker ids from whichever coordinator is the primary.
# Each step below is one subcommand, run as the operating-system user that
# owns the servers (pg_autoctl refuses to run as root).  The TAP test
# test/t/060_ha_pg_auto_failover.pl runs exactly these subcommands, so this
# file is the tested deployment recipe; docs/leasing.md ("Coordinator HA
# with pg_auto_failover or Patroni") explains the choices.
#
#   formation.sh monitor PGDATA PORT
#       Create the monitor and run it (foreground: run it under systemd or
#       in the background).
#   formation.sh tune-monitor PORT
#       Shorten the monitor's failure detection so that a failover fits in
#       the nodes' lease ride-through (see docs/leasing.md, "Sizing the
#       TTL").
#   formation.sh coordinator PGDATA PORT NAME MONITOR_PORT
#       Create a coordinator server in the formation and run it
#       (foreground).  The first one becomes the primary, the second its
#       synchronous standby.
#   formation.sh run PGDATA
#       Run an existing server of the formation again (after a reboot or a
#       crash; a former primary rejoins as a standby).
#   formation.sh setup-coordinator PRIMARY_PORT
#       On the primary: CREATE EXTENSION idgen and the role nodes lease as.
#   formation.sh node-conf PORT1 PORT2
#       The idgen lines of every node's postgresql.conf.
#   formation.sh switchover MONITOR_PORT
#       A planned switchover (the standby becomes the primary).
#
# Environment: PGBIN (directory with pg_ctl and psql; default Debian's
# PostgreSQL 15), HOST (the address every server listens on and is reached
# at; default 127.0.0.1), IDGEN_TTL (idgen.lease_ttl of the nodes, s;
# default 30).  Authentication here is "trust" on loopback, for a test;
# in production use --ssl-self-signed or real certificates, scram-sha-256
# and a password file (see pg_autoctl's documentation).

set -euo pipefail

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
HOST=${HOST:-127.0.0.1}
IDGEN_TTL=${IDGEN_TTL:-30}

monitor_uri() {
	echo "postgres://autoctl_node@$HOST:$1/pg_auto_failover?sslmode=disable"
}

psql_at() {
	local port=$1 db=$2
	shift 2
	"$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$HOST" -p "$port" -d "$db" "$@"
}

cmd=${1:-}
shift || true
case $cmd in
	monitor)
		exec pg_autoctl create monitor --pgdata "$1" --pgport "$2" \
			--hostname "$HOST" --auth trust --no-ssl \
			--pgctl "$PGBIN/pg_ctl" --run
		;;
	tune-monitor)
		# Defaults: a health check every 5 s with a 5 s timeout and 2
		# retries 2 s apart, a node unhealthy after 20 s without a report,
		# and up to 30 s waiting for a dead primary to be demoted: about
		# 50 s from a crash to a writable new primary, longer than the
		# 17 s a node rides through with the default idgen.lease_ttl = 30.
		# These give about 15 s.  pg_auto_failover's default keeps
		# primary_demote_timeout above the keepers' network partition
		# timeout (20 s), so that a partitioned primary has demoted itself
		# before its standby is promoted.  A shorter one is safe here: with
		# its synchronous standby gone, a partitioned old coordinator
		# cannot acknowledge a lease write, so no node relies on one.
		psql_at "$1" pg_auto_failover <<-'SQL'
			ALTER SYSTEM SET pgautofailover.health_check_period = '1s';
			ALTER SYSTEM SET pgautofailover.health_check_timeout = '1s';
			ALTER SYSTEM SET pgautofailover.health_check_max_retries = 1;
			ALTER SYSTEM SET pgautofailover.health_check_retry_delay = '500ms';
			ALTER SYSTEM SET pgautofailover.node_considered_unhealthy_timeout = '5s';
			ALTER SYSTEM SET pgautofailover.primary_demote_timeout = '10s';
			SELECT pg_reload_conf();
		SQL
		;;
	coordinator)
		# --listen: only the address nodes and peers use.  Replication
		# quorum is on by default, so with one standby the primary runs
		# with synchronous_standby_names = 'ANY 1 (...)': a lease write
		# is acknowledged only once the standby has it.
		exec pg_autoctl create postgres --pgdata "$1" --pgport "$2" \
			--name "$3" --hostname "$HOST" --listen "$HOST" \
			--auth trust --no-ssl --pgctl "$PGBIN/pg_ctl" \
			--monitor "$(monitor_uri "$4")" --run
		;;
	run)
		exec pg_autoctl run --pgdata "$1"
		;;
	setup-coordinator)
		# The extension needs no preload on the coordinator.  The role and
		# its grants are docs/leasing.md's "N nodes and a coordinator" recipe.
		# pg_hba.conf is not replicated: allow idgen_node on both servers
		# (here initdb's loopback "trust" lines already do).
		psql_at "$1" postgres <<-'SQL'
			CREATE EXTENSION IF NOT EXISTS idgen;
			DO $$
			BEGIN
			    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'idgen_node') THEN
			        CREATE ROLE idgen_node LOGIN;
			    END IF;
			END $$;
			-- EXECUTE on the three SECURITY DEFINER lease functions is all
			-- a node needs: no privilege on idgen's tables
			GRANT EXECUTE ON FUNCTION
			    idgen.lease_acquire(text, integer, integer, integer, integer, integer,
			                        bigint, integer, integer, integer, integer, bigint),
			    idgen.lease_renew(integer, bigint, text, integer, bigint),
			    idgen.lease_release(integer, bigint, text, bigint)
			    TO idgen_node;
		SQL
		;;
	node-conf)
		# Both coordinators in one conninfo: libpq tries them in order and
		# target_session_attrs=read-write skips the standby.
		cat <<-CONF
			shared_preload_libraries = 'idgen'
			idgen.worker_id = -1
			idgen.lease_ttl = $IDGEN_TTL
			idgen.coordinator = 'host=$HOST,$HOST port=$1,$2 dbname=postgres user=idgen_node target_session_attrs=read-write'
		CONF
		;;
	switchover)
		exec pg_autoctl perform switchover --monitor "$(monitor_uri "$1")"
		;;
	*)
		sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
		exit 2
		;;
esac
