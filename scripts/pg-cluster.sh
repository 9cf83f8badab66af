#!/usr/bin/env bash
# Starts a throwaway PostgreSQL cluster on loopback for the tests and prints its URL.
#   scripts/pg-cluster.sh start <dir>   -> prints postgres://herald@127.0.0.1:<port>/postgres
#   scripts/pg-cluster.sh stop <dir>     (also to simulate an outage)
#   scripts/pg-cluster.sh crash <dir>    immediate shutdown (crash recovery at the next start)
#   scripts/pg-cluster.sh resume <dir>   starts a stopped cluster again on the same port
# Uses Debian's PostgreSQL binaries (installed by scripts/test.sh when missing). initdb refuses
# to run as root, so under root the cluster runs as the `postgres` system user.
set -euo pipefail
cmd="$1"
dir="$2"
bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
[ -x "$bin/initdb" ] || { echo "PostgreSQL server binaries not found" >&2; exit 1; }
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
case "$cmd" in
  start)
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    as_pg "$bin/initdb" -D "$dir/data" -U herald --auth=trust --locale=C -E UTF8 >"$dir/initdb.log" 2>&1
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    echo "$port" >"$dir/port"
    bash "$0" resume "$dir"
    echo "postgres://herald@127.0.0.1:$port/postgres"
    ;;
  resume)
    port="$(cat "$dir/port")"
    as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=300 -c fsync=on" start >/dev/null
    ;;
  stop)
    as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    ;;
  crash)
    # Immediate shutdown: no checkpoint, crash recovery at the next start (like a failover
    # onto the same data).
    as_pg "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    ;;
  *) echo "usage: $0 start|stop|crash|resume <dir>" >&2; exit 2 ;;
esac
