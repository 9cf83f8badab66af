#!/usr/bin/env bash
# Runs every Herald test on a fresh machine: installs what the tests need (Debian packages
# including PostgreSQL), starts a throwaway PostgreSQL cluster on loopback, builds, runs the Rust
# unit/property/integration tests (the storage suite on SQLite and PostgreSQL, the multi-node
# cluster tests, broker destinations against real Redis, NATS and RabbitMQ), then the real-client Python suite (official `svix` SDK and `standardwebhooks`
# from PyPI, schemathesis on the OpenAPI document, the console in Debian's chromium via
# Playwright) against the real binary.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/herald-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

need_apt=()
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need_apt+=(python3-venv)
command -v cc >/dev/null 2>&1 || need_apt+=(build-essential)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
# The console's browser test drives the system's chromium (Playwright never downloads one).
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
# Broker destinations are tested against real brokers, each started by the tests themselves as
# a child process on loopback (crates/herald/tests/it/broker_procs.rs). In a container without
# an init system invoke-rc.d does not start the packages' services (checked on bookworm: the
# install succeeds and no broker is left running).
[ -x /usr/bin/redis-server ] || need_apt+=(redis-server)
[ -x /usr/sbin/nats-server ] || need_apt+=(nats-server)
[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || need_apt+=(rabbitmq-server)
# The mutual-TLS and TLS-broker tests (mtls, brokers_tls) make their CA and certificates with
# the openssl command line; the Debian redis-server (TLS built in) and rabbitmq-server (with
# erlang-ssl) serve TLS as they are.
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "==> installing Debian packages: ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "${need_apt[@]}"
fi

# A throwaway PostgreSQL cluster on loopback for the PostgreSQL storage suite and the cluster
# tests; stopped on exit.
pg_dir="$(mktemp -d)"
chmod 755 "$pg_dir"
cleanup() { bash scripts/pg-cluster.sh stop "$pg_dir/pg"; rm -rf "$pg_dir"; }
trap cleanup EXIT
echo "==> starting PostgreSQL for the tests"
export TEST_DATABASE_URL="$(bash scripts/pg-cluster.sh start "$pg_dir/pg")"
echo "    $TEST_DATABASE_URL"

echo "==> cargo fmt --check"
cargo fmt --all -- --check

echo "==> structure (no import circles, layering, file and function sizes)"
python3 scripts/check-structure.py

echo "==> cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

echo "==> cargo test (unit, property and integration tests)"
HERALD_SIM_SEEDS="${HERALD_SIM_SEEDS:-2000}" cargo test --workspace

echo "==> real-client tests (svix Python SDK, standardwebhooks)"
export HERALD_BIN="$CARGO_TARGET_DIR/debug/herald"
bash tests/python/run.sh

# Torture runs at a small scale (docs/reliability.md has the full-scale figures and commands).
# Each exits non-zero when an invariant breaks: an accepted message lost, a refusal that is not
# a JSON 5xx, an incomplete attempt log, no recovery after the disk is freed.
echo "==> torture runs (small scale)"
cargo build -q -p herald -p herald-torture
torture=("$CARGO_TARGET_DIR/debug/herald-torture" --bin "$HERALD_BIN" --deadline-secs 300)
"${torture[@]}" kill-loop --cycles 5
"${torture[@]}" chaos --messages 100
"${torture[@]}" disk-full --tmpfs-mib 32
"${torture[@]}" pg-restart --database-url "$TEST_DATABASE_URL" --pg-dir "$pg_dir/pg" --restarts 2
"${torture[@]}" spool-full --database-url "$TEST_DATABASE_URL" --pg-dir "$pg_dir/pg" --tmpfs-mib 32
