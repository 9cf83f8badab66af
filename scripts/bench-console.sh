#!/usr/bin/env bash
# Console page timing with N (default 1,000,000) messages on SQLite (docs/benchmarks.md, "console
# pages"): the application page with and without a delivery-status filter, the next page of a
# filtered list, the name search and health. Rows are written with sqlite3 directly (minutes
# faster than publishing); the server runs with role `api` so nothing is delivered. Needs
# sqlite3 and curl. Prints the median of 5 requests each (curl total time; the server's own
# time is in its access log, duration_ms).
set -euo pipefail
BIN=${HERALD_BIN:?set HERALD_BIN to the herald binary}
DIR=$(mktemp -d); mkdir -p "$DIR/data"; trap 'rm -rf "$DIR"' EXIT
PORT=18987; TOKEN=benchtoken0123456789abcdef012345
export HERALD_DATA_DIR="$DIR/data" HERALD_LISTEN=127.0.0.1:$PORT HERALD_ADMIN_TOKEN=$TOKEN HERALD_ROLE=api HERALD_LOG_FORMAT=json
cd "$DIR"
start() { "$BIN" serve >>"$DIR/herald.log" 2>&1 & echo $! > "$DIR/pid"; for i in $(seq 100); do curl -sf http://127.0.0.1:$PORT/api/v1/health >/dev/null && return; sleep 0.1; done; echo "no start"; exit 1; }
stop() { kill "$(cat "$DIR/pid")"; while kill -0 "$(cat "$DIR/pid")" 2>/dev/null; do sleep 0.1; done; }
start
APP=$(curl -sf -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' -d '{"name":"bench"}' http://127.0.0.1:$PORT/api/v1/app | python3 -c 'import sys,json;print(json.load(sys.stdin)["id"])')
EP=$(curl -sf -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' -d '{"url":"https://example.com/hook"}' http://127.0.0.1:$PORT/api/v1/app/$APP/endpoint | python3 -c 'import sys,json;print(json.load(sys.stdin)["id"])')
stop
N=${N:-1000000}
time sqlite3 "$DIR/data/herald.db" <<SQL
PRAGMA journal_mode=WAL;
BEGIN;
WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM s WHERE n < $N)
INSERT INTO messages (id, app_id, event_id, event_type, payload, channels, created_at, retention_ms, ordering_key, headers)
SELECT 'msg_0' || printf('%025d', n), '$APP', NULL, CASE n % 3 WHEN 0 THEN 'order.created' WHEN 1 THEN 'invoice.paid' ELSE 'user.signup' END,
       '{"n":' || n || '}', NULL, 1764000000000 + n * 10, NULL, NULL, NULL FROM s;
WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM s WHERE n < $N)
INSERT INTO deliveries (msg_id, endpoint_id, app_id, status, attempts, failures, manual, next_at, lease_owner, updated_at)
SELECT 'msg_0' || printf('%025d', n), '$EP', '$APP', CASE WHEN n % 100 < 2 THEN 2 WHEN n % 100 = 2 THEN 1 ELSE 0 END,
       1, 0, 0, CASE WHEN n % 100 = 2 THEN 1764000000000 + n * 10 ELSE NULL END, NULL, 1764000000000 + n * 10 FROM s;
COMMIT;
ANALYZE;
PRAGMA wal_checkpoint(TRUNCATE);
SQL
ls -la "$DIR/data"
start
JAR="$DIR/cookies"
curl -s -o /dev/null -c "$JAR" -H "Origin: http://127.0.0.1:$PORT" --data-urlencode "token=$TOKEN" http://127.0.0.1:$PORT/console
t() { # median of 5 of a GET
  local url=$1 best=() ; for i in 1 2 3 4 5; do best+=($(curl -s -o "$DIR/last.html" -b "$JAR" -w '%{time_total}' "http://127.0.0.1:$PORT$url")); done
  printf '%s\n' "${best[@]}" | sort -n | sed -n 3p | awk -v u="$url" '{printf "%7.1f ms  %s\n", $1*1000, u}'
}
t "/console/app/$APP"
t "/console/app/$APP?status=success"
t "/console/app/$APP?status=fail"
t "/console/app/$APP?status=pending"
t "/console/app/$APP?status=sending"
t "/console/app/$APP?status=fail&event_type=invoice.paid"
t "/console/app/$APP?status=fail&within=1"
OLDER=$(grep -o 'msgs=msg_0[0-9]*' "$DIR/last.html" | head -1 || true)
curl -s -o "$DIR/fail.html" -b "$JAR" "http://127.0.0.1:$PORT/console/app/$APP?status=fail"
NEXT=$(grep -o 'msgs=msg_0[0-9]*' "$DIR/fail.html" | tail -1)
t "/console/app/$APP?status=fail&$NEXT"
t "/console/?q=ben"
t "/console/health"
grep -c "msg_0" "$DIR/fail.html" || true
stop
