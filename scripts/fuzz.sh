#!/usr/bin/env bash
# Long fuzzing run: every property-based fuzz target, in release mode, for a time budget.
#   scripts/fuzz.sh [minutes-per-target]      (default 10)
#   FUZZ_TARGETS="herald-core:fuzz_inbound" scripts/fuzz.sh 3    (a subset)
#   FUZZ_PROFILE=debug scripts/fuzz.sh 2   (debug build: slower, but integer overflow panics)
# The budget of a target is shared by its properties (HERALD_FUZZ_SECONDS each, run one at a
# time); each target is also bounded by `timeout`. Prints the cases run per property. A failure
# is shrunk, saved under <crate>/proptest-regressions/ (commit it) and fails the script.
# The ordinary `cargo test` runs the same properties with small case counts (CI).
set -euo pipefail
cd "$(dirname "$0")/.."

minutes="${1:-10}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/herald-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
profile=(--release)
[ "${FUZZ_PROFILE:-release}" = debug ] && profile=()
targets="${FUZZ_TARGETS:-herald-core:fuzz_inbound herald-core:fuzz_config herald-core:fuzz_filters herald-api:fuzz_json herald-store:fuzz_pagination}"

echo "==> building the fuzz targets (${FUZZ_PROFILE:-release})"
for t in $targets; do
  cargo test "${profile[@]}" -q -p "${t%%:*}" --test "${t#*:}" --no-run
done

failed=0
summary=()
for t in $targets; do
  crate="${t%%:*}" target="${t#*:}"
  # The properties: fuzz_* tests, except the fixed fuzz_found_* regression tests.
  props="$(cargo test "${profile[@]}" -q -p "$crate" --test "$target" -- --list 2>/dev/null \
    | sed -n 's/^\(fuzz_[a-z0-9_]*\): test$/\1/p' | grep -v '^fuzz_found_' || true)"
  count="$(printf '%s\n' "$props" | grep -c . || true)"
  [ "$count" -gt 0 ] || { echo "no properties in $t" >&2; failed=1; continue; }
  per=$(( minutes * 60 / count ))
  [ "$per" -gt 0 ] || per=1
  echo "==> $t: $count properties, ${per}s each"
  log="$(mktemp)"
  if HERALD_FUZZ_SECONDS="$per" timeout --kill-after=30 $(( minutes * 60 + 300 )) \
      cargo test "${profile[@]}" -q -p "$crate" --test "$target" -- --nocapture --test-threads=1 \
      >"$log" 2>&1; then
    status=ok
  else
    status=FAILED
    failed=1
    tail -n 60 "$log"
  fi
  while IFS= read -r line; do
    summary+=("$t [$status] ${line#fuzz }")
  done < <(grep -oE 'fuzz .*: [0-9]+ cases in [0-9.]+s' "$log" || true)
  [ "$status" = ok ] || summary+=("$t [$status] see the output above")
  rm -f "$log"
done

echo "==> fuzzing summary (${minutes} min per target)"
printf '%s\n' "${summary[@]}"
exit "$failed"
