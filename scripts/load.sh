#!/usr/bin/env bash
# The long load and fault test (docs/load.md): an in-process warden on
# loopback under 5,000 keep-alive clients and 500 slowloris connections for
# 60 s, then checked for goroutine and heap growth; plus the upstream fault
# test. It is bounded and stops by itself (go test -timeout). Tune with
# WARDEN_LOAD_CLIENTS, WARDEN_LOAD_SLOWLORIS, WARDEN_LOAD_SECONDS,
# WARDEN_LOAD_INTERVAL_MS. scripts/test.sh --long runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
# Both ends of every connection live in the test process.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
WARDEN_LONG=1 go test -count=1 -timeout 10m -run '^(TestLoad|TestUpstreamFaults)$' -v ./internal/loadtest
