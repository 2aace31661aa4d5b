#!/usr/bin/env bash
# Runs every test of warden. Installs the real programs the tests drive
# (from Debian's packages) when they are missing.
#
#   scripts/test.sh           the default run: vet + all tests (well under 20 minutes)
#   scripts/test.sh --long    also the fuzzers (60 s each), the load/fault test and scripts/bench.sh --smoke
#
# With CI=true a test whose program is still missing fails instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."

long=0
for a in "$@"; do
  case "$a" in
    --long) long=1 ;;
    *) echo "usage: scripts/test.sh [--long]" >&2; exit 2 ;;
  esac
done

# Programs the tests use, and the Debian package that brings each.
need=()
command -v htpasswd >/dev/null 2>&1 || need+=(apache2-utils)
command -v nginx    >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]   || need+=(nginx)
command -v apache2  >/dev/null 2>&1 || [ -x /usr/sbin/apache2 ] || need+=(apache2)
command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || need+=(redis-server)
command -v chromium >/dev/null 2>&1 || need+=(chromium)   # the challenge page's browser test
command -v caddy    >/dev/null 2>&1 || need+=(caddy)
if [ "$long" = 1 ]; then
  command -v wrk >/dev/null 2>&1 || need+=(wrk)
fi
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing: ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "warning: missing ${need[*]} and cannot install (not root or no apt-get); their tests will skip (or fail with CI=true)" >&2
  fi
fi

export PATH="$PATH:/usr/sbin:/sbin"
go vet ./...
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change: $unformatted" >&2
  exit 1
fi

go test -count=1 -timeout 15m ./...
# The zero-allocation benchmarks (issue 17), briefly, so they cannot rot.
go test -run '^$' -bench 'Zero' -benchtime 100x ./internal/engine/ ./internal/gateway/ ./internal/refusal/

if [ "$long" = 1 ]; then
  # Each fuzz target runs for a bounded time; a crasher is saved under
  # testdata/fuzz and becomes a regression seed of the default run.
  for pkg_target in $(grep -rl --include='*_test.go' '^func Fuzz' . | xargs grep -ho '^func Fuzz[A-Za-z0-9_]*' -H | sed 's#^\./##; s#/[^/]*_test.go:func # #' | sort -u | tr ' ' '|'); do
    pkg="./${pkg_target%%|*}"; target="${pkg_target##*|}"
    echo "fuzz $pkg $target (60s)"
    go test -run='^$' -fuzz="^${target}\$" -fuzztime=60s "$pkg"
  done
  # The decision-service benchmarks (issue 12) and the OPA comparison, a
  # module of its own so that warden's go.mod does not carry OPA; briefly,
  # so that neither can rot.
  go test -run '^$' -bench DecisionServices -benchtime 2000x ./internal/authz/
  (cd internal/authz/benchopa && go test -run '^$' -bench . -benchtime 2000x)
  if [ -x scripts/load.sh ]; then
    scripts/load.sh
  fi
  # warden, the bare Go proxy, nginx and Caddy side by side (issue 17), one
  # 1-second round on the 10k list, so the benchmark script cannot rot.
  scripts/bench.sh --smoke
fi
