#!/usr/bin/env bash
# The test suite under Node (20+), for `npm run test:node`: compiles tests/ and the sources they
# import with tsc (tsconfig.test.json) to dist-test/, then runs them with `node --test` from the
# repository root, where tests find their fixtures and node_modules/.bin (Deno and Bun child
# processes still run the TypeScript sources). Needs `npm ci` first. Arguments, if any, are
# test files to run instead of all of them (e.g. tests/wal_test.ts).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"
export NO_COLOR=1

echo "== tsc -p tsconfig.test.json (to dist-test/)"
rm -rf dist-test
tsc -p tsconfig.test.json

files=()
if [ $# -gt 0 ]; then
  for f in "$@"; do
    f=${f%.ts}
    files+=("dist-test/${f#./}.js")
  done
else
  files=(dist-test/tests/*_test.js)
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
echo "== node --test ($(node --version))"
status=0
node --test --test-concurrency=1 --test-reporter=spec "${files[@]}" 2>&1 | tee "$log" ||
  status=$?
passed=$(sed -nE 's/^ℹ pass ([0-9]+)$/\1/p' "$log" | tail -1)
failed=$(sed -nE 's/^ℹ fail ([0-9]+)$/\1/p' "$log" | tail -1)
skipped=$(sed -nE 's/^ℹ skipped ([0-9]+)$/\1/p' "$log" | tail -1)
echo "node: ${passed:-0} passed, ${failed:-0} failed, ${skipped:-0} skipped"
exit "$status"
