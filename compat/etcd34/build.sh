#!/bin/sh
# Build etcd34compat against Debian's etcd 3.4 sources (offline, GOPATH mode).
# Usage: build.sh [output-path]   (default: compat/etcd34/bin/etcd34compat)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-"$here/bin/etcd34compat"}
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac
cd "$here"
GO111MODULE=off GOPATH=/usr/share/gocode go build -o "$out" .
