#!/usr/bin/env bash
# Checks the import layers, then runs the whole suite on SQLite, then on PostgreSQL when
# URJA_TEST_DATABASE_URL names one.
# pytest's "no tests collected" (exit 5) is a failure here, never a silent pass.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python

markers=()
if [ -z "${URJA_CHROMIUM:-}" ]; then
  for c in /usr/bin/chromium /usr/bin/chromium-browser; do [ -x "$c" ] && export URJA_CHROMIUM=$c && break; done
fi
if [ -z "${URJA_CHROMIUM:-}" ]; then
  echo "######################################################################"
  echo "# NO CHROMIUM FOUND: browser (Playwright) tests are NOT run.          #"
  echo "# Install Debian's chromium (apt-get install chromium) to run them.  #"
  echo "######################################################################"
  markers=(-m "not browser")
fi

run_suite() {
  local label=$1
  echo "=== Urja test suite on $label ==="
  $PY -m pytest -q -n "${URJA_TEST_WORKERS:-2}" "${markers[@]}" "${@:2}"
  local rc=$?
  if [ $rc -eq 5 ]; then echo "pytest collected no tests on $label: failing"; return 1; fi
  return $rc
}

# The layers contract (pyproject.toml, docs/architecture.md "Layers") first: a second, and no suite
# runs on a tree whose imports break it.
echo "=== Import layers (lint-imports) ==="
.venv/bin/lint-imports --no-cache || { echo "lint-imports: the layers contract is broken (see above)"; exit 1; }

rc=0
tmpdir=$(mktemp -d)
DATABASE_URL="sqlite:///$tmpdir/test.sqlite3" run_suite SQLite "$@" || rc=1
if [ -n "${URJA_TEST_DATABASE_URL:-}" ]; then
  DATABASE_URL="$URJA_TEST_DATABASE_URL" URJA_TEST_ON_POSTGRES=1 run_suite PostgreSQL "$@" || rc=1
else
  echo "URJA_TEST_DATABASE_URL is not set: the PostgreSQL run is skipped (CI sets it)."
fi
rm -rf "$tmpdir"
exit $rc
