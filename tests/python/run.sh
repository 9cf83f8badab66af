#!/usr/bin/env bash
# Run the real-client test suite (official svix SDK + standardwebhooks, and schemathesis on the
# OpenAPI document) against a Herald binary.
#   HERALD_BIN      herald binary to test (default /root/.cache/herald-target/debug/herald)
#   HERALD_PY_VENV  virtualenv to use/create (default $HOME/.cache/herald-pyvenv)
# Extra arguments are passed to pytest. The exit code is pytest's.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${HERALD_PY_VENV:-$HOME/.cache/herald-pyvenv}"
REQS="$ROOT/tests/python/requirements.txt"

if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi

# Reinstall only when requirements.txt changed since the last successful install.
STAMP="$VENV/.herald-requirements.sha256"
WANT="$(sha256sum "$REQS" | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQS"
    echo "$WANT" > "$STAMP"
fi

# GitHub's own signing library for the inbound tests (npm; lockfile pinned).
if [ ! -d "$ROOT/tests/js/node_modules/@octokit/webhooks-methods" ]; then
    (cd "$ROOT/tests/js" && npm ci --no-audit --no-fund --loglevel=error)
fi

cd "$ROOT"
set +e
"$VENV/bin/python" -m pytest -q tests/python "$@"
status=$?
set -e
exit "$status"
