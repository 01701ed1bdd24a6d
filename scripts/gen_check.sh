#!/usr/bin/env bash
# Fails when gen/ is not what `buf generate` makes from proto/ (someone edited a schema
# and forgot `deno task gen`, or edited generated code by hand).
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r proto buf.yaml "$tmp/"
sed "s#node_modules/.bin/protoc-gen-es#$PWD/node_modules/.bin/protoc-gen-es#" buf.gen.yaml > "$tmp/buf.gen.yaml"
(cd "$tmp" && "$OLDPWD/node_modules/.bin/buf" generate)
if ! diff -r gen "$tmp/gen"; then
  echo "gen/ is stale: run 'deno task gen' and commit the result" >&2
  exit 1
fi
echo "gen/ is up to date"
