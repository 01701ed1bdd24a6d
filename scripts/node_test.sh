#!/usr/bin/env bash
# The test suite under Node (20+), for `npm run test:node`: compiles tests/ and the sources they
# import with tsc (tsconfig.test.json) to dist-test/, then runs them with `node --test` from the
# repository root, where tests find their fixtures and node_modules/.bin (Deno and Bun child
# processes still run the TypeScript sources). Needs `npm ci` first.
#
# Usage: node_test.sh [--build-only | --no-build] [test files...]
#   test files     run these (e.g. tests/wal_test.ts) instead of all of them
#   --build-only   only compile dist-test/ (scripts/test.sh does this once, then runs files)
#   --no-build     use the dist-test/ a previous run compiled
# Files run WAL_TEST_JOBS (default 2) at a time, the slow ones first. Prints
# `node: N passed, M failed, K skipped` and `node: took N s`; exits non-zero when a test failed
# or the counts could not be read.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"
export NO_COLOR=1

build=1
run=1
case "${1:-}" in
  --build-only) run=0; shift ;;
  --no-build) build=0; shift ;;
esac

if [ "$build" = 1 ]; then
  echo "== tsc -p tsconfig.test.json (to dist-test/)"
  rm -rf dist-test
  tsc -p tsconfig.test.json
fi
[ "$run" = 1 ] || exit 0

files=()
if [ $# -gt 0 ]; then
  for f in "$@"; do
    f=${f%.ts}
    files+=("dist-test/${f#./}.js")
  done
else
  # the slow files first, so that with concurrency the run does not end waiting on one of them
  for f in kill compat_etcd34 corruption npm_pack examples etcd_server; do
    [ -e "dist-test/tests/${f}_test.js" ] && files+=("dist-test/tests/${f}_test.js")
  done
  for f in dist-test/tests/*_test.js; do
    case " ${files[*]} " in *" $f "*) ;; *) files+=("$f") ;; esac
  done
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
echo "== node --test ($(node --version))"
status=0
node --test --test-concurrency="${WAL_TEST_JOBS:-2}" --test-reporter=spec "${files[@]}" 2>&1 |
  tee "$log" || status=$?
passed=$(sed -nE 's/^ℹ pass ([0-9]+)$/\1/p' "$log" | tail -1)
failed=$(sed -nE 's/^ℹ fail ([0-9]+)$/\1/p' "$log" | tail -1)
skipped=$(sed -nE 's/^ℹ skipped ([0-9]+)$/\1/p' "$log" | tail -1)
echo "node: ${passed:-0} passed, ${failed:-0} failed, ${skipped:-0} skipped"
echo "node: took $SECONDS s"
if [ -z "$passed" ] || [ -z "$failed" ]; then
  echo "node: could not read the test counts from node --test's output" >&2
  [ "$status" != 0 ] || status=1
fi
exit "$status"
