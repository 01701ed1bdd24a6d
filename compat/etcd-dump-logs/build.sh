#!/bin/sh
# Build etcd's own etcd-dump-logs (main.go: tools/etcd-dump-logs/main.go of etcd v3.4.23,
# unchanged) against Debian's etcd 3.4 sources (offline, GOPATH mode), as the reference the
# `wal dump-logs` tests compare with byte for byte.
# Usage: build.sh [output-path]   (default: compat/etcd-dump-logs/bin/etcd-dump-logs)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-"$here/bin/etcd-dump-logs"}
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac
cd "$here"
GO111MODULE=off GOPATH=/usr/share/gocode go build -o "$out" .
