#!/usr/bin/env bash
# The whole test suite, on Deno, Bun and Node: what `npm test` and CI run. Needs `npm ci`
# first (it brings Deno, Bun, buf, protoc-gen-es and TypeScript). The etcd compatibility tests also need Go, etcd's sources and
# an etcd server from Debian (`apt-get install golang-go golang-etcd-server-dev etcd-server
# etcd-client`); without them they are skipped with a message, except in CI, where they run.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"
export NO_COLOR=1

echo "== gen/ freshness"
bash scripts/gen_check.sh
echo "== deno fmt --check"
deno fmt --check
echo "== deno lint"
deno lint
echo "== deno check"
deno check mod.ts cli.ts testing.ts src/ tests/ compat/ bench/ demo.ts
echo "== deno doc --lint, and the doc examples type-check"
deno doc --lint mod.ts cli.ts testing.ts
deno check --doc-only mod.ts cli.ts testing.ts src/

log=$(mktemp)
trap 'rm -f "$log"' EXIT
echo "== deno test"
deno test -A tests/ 2>&1 | tee "$log"
deno_line=$(grep -E '^(ok|FAILED) \| ' "$log" | tail -1 || true)
deno_passed=$(sed -nE 's/.* ([0-9]+) passed \(([0-9]+) steps?\).*/\2/p' <<<"$deno_line")
deno_failed=$(sed -nE 's/.*\| ([0-9]+) failed.*/\1/p' <<<"$deno_line")
echo "== bun test"
bun test --timeout 120000 ./tests/ 2>&1 | tee "$log"
bun_passed=$(sed -nE 's/^ *([0-9]+) pass$/\1/p' "$log" | tail -1 || true)
bun_failed=$(sed -nE 's/^ *([0-9]+) fail$/\1/p' "$log" | tail -1 || true)

echo "== node --test (the same tests, compiled with tsc)"
bash scripts/node_test.sh 2>&1 | tee "$log"
node_passed=$(sed -nE 's/^node: ([0-9]+) passed.*/\1/p' "$log" | tail -1 || true)
node_failed=$(sed -nE 's/^node: [0-9]+ passed, ([0-9]+) failed.*/\1/p' "$log" | tail -1 || true)

echo "deno: ${deno_passed:-0} passed, ${deno_failed:-0} failed; bun: ${bun_passed:-0} passed, ${bun_failed:-0} failed; node: ${node_passed:-0} passed, ${node_failed:-0} failed"
echo "$(( ${deno_passed:-0} + ${bun_passed:-0} + ${node_passed:-0} )) passed, $(( ${deno_failed:-0} + ${bun_failed:-0} + ${node_failed:-0} )) failed"
