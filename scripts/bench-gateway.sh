#!/usr/bin/env bash
# Load test with wrk: warden's gateway against a bare httputil reverse proxy,
# both on 127.0.0.1 in front of the same upstream (the servers of
# internal/gateway/bench_test.go: a ~50-rule policy with a 100,000-entry ip
# list, decision log on refusals only).
#
#   scripts/bench-gateway.sh [SECONDS] [CONNECTIONS] [ROUNDS]
#
# Each of the three targets (bare, bare-pooled, gateway) gets ROUNDS runs of
# SECONDS (default 10 s, 64 connections, 2 rounds), in rotating order so
# that other load on the machine falls on all of them alike. The script
# stops by itself: about 3 x ROUNDS x SECONDS plus warm-up and build time.
#
# Besides requests/second it reports the server process's CPU time per
# request (proxy + upstream, from /proc; wrk's own CPU is not in it): on a
# machine shared with other work that figure moves far less than req/s.
# PROFILE=FILE also writes a CPU profile of the servers, labelled by target:
#   go tool pprof -tags FILE;  go tool pprof -tagfocus target=gateway -top FILE
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-10}
conns=${2:-64}
rounds=${3:-2}
for v in "$secs" "$conns" "$rounds"; do
  case "$v" in
    '' | *[!0-9]* | 0) echo "usage: scripts/bench-gateway.sh [SECONDS] [CONNECTIONS] [ROUNDS] (positive integers)" >&2; exit 2 ;;
  esac
done
if [ "$secs" -gt 120 ] || [ "$rounds" -gt 10 ]; then
  echo "bench-gateway: at most 120 seconds a run and 10 rounds" >&2
  exit 2
fi

if ! command -v wrk >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing wrk"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends wrk >/dev/null
  else
    echo "bench-gateway: wrk is missing (apt-get install wrk)" >&2
    exit 1
  fi
fi

work=$(mktemp -d)
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

go test -c -o "$work/gateway.test" ./internal/gateway

targets=(bare bare-pooled gateway)
# Long enough for every run, the warm-ups and some slack; the server also
# stops as soon as the addresses file is removed at the end.
serve=$((secs * rounds * ${#targets[@]} + 2 * ${#targets[@]} + 60))
profile=${PROFILE:-}
[ -n "$profile" ] && profile=$(realpath -m "$profile")
WARDEN_BENCH_SERVE_SECONDS=$serve WARDEN_BENCH_ADDRS="$work/addrs" WARDEN_BENCH_CPUPROFILE="$profile" \
  "$work/gateway.test" -test.run '^TestServeForLoadScript$' -test.v -test.timeout "$((serve + 60))s" \
  >"$work/serve.log" 2>&1 &
pid=$!

for _ in $(seq 1 600); do
  [ -s "$work/addrs" ] && break
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "bench-gateway: the servers did not start:" >&2
    cat "$work/serve.log" >&2
    exit 1
  fi
  sleep 0.1
done
[ -s "$work/addrs" ] || { echo "bench-gateway: the servers did not start within 60 s" >&2; exit 1; }

declare -A url total cpu
while read -r name u; do
  url[$name]=$u
  total[$name]=0
  cpu[$name]=0
done <"$work/addrs"

ticks=$(getconf CLK_TCK)
server_ticks() { # utime + stime of the server process, in clock ticks
  awk '{print $14 + $15}' "/proc/$pid/stat"
}

threads=$(nproc)
[ "$threads" -gt 4 ] && threads=4

run() { # target seconds → "requests/sec server-CPU-microseconds/request" on stdout
  local out t0 t1
  t0=$(server_ticks)
  out=$(wrk -t"$threads" -c"$conns" -d"$2"s "${url[$1]}")
  t1=$(server_ticks)
  if grep -q 'Non-2xx' <<<"$out" || grep -q 'Socket errors' <<<"$out"; then
    echo "bench-gateway: $1 had failures:" >&2
    echo "$out" >&2
    exit 1
  fi
  awk -v dt=$((t1 - t0)) -v hz="$ticks" '
    / requests in / {n = $1}
    /^Requests\/sec:/ {rps = $2}
    END {printf "%s %.1f\n", rps, (n > 0 ? dt / hz * 1e6 / n : 0)}' <<<"$out"
}

echo "wrk -t$threads -c$conns, $rounds rounds of ${secs}s per target, $(nproc) CPUs"
for t in "${targets[@]}"; do run "$t" 2 >/dev/null; done # warm-up: open the connections

for r in $(seq 1 "$rounds"); do
  n=${#targets[@]}
  for k in $(seq 0 $((n - 1))); do
    t=${targets[$(((k + r) % n))]}
    read -r rps us < <(run "$t" "$secs")
    printf 'round %d  %-12s %10.0f req/s  %6.1f server-CPU-us/req\n' "$r" "$t" "$rps" "$us"
    total[$t]=$(awk -v a="${total[$t]}" -v b="$rps" 'BEGIN {print a + b}')
    cpu[$t]=$(awk -v a="${cpu[$t]}" -v b="$us" 'BEGIN {print a + b}')
  done
done

# Tell the servers to stop, and let them report how many decision-log lines
# the allowed requests produced (there must be none).
rm -f "$work/addrs"
status=0
wait "$pid" || status=$?
pid=""
grep -h 'decision-log lines' "$work/serve.log" | sed 's/^ *bench_test.go:[0-9]*: /servers: /' || true
if [ "$status" != 0 ]; then
  echo "bench-gateway: the servers reported a failure:" >&2
  cat "$work/serve.log" >&2
  exit 1
fi

awk -v b="${total[bare]}" -v p="${total[bare-pooled]}" -v g="${total[gateway]}" \
  -v cb="${cpu[bare]}" -v cp="${cpu[bare-pooled]}" -v cg="${cpu[gateway]}" -v r="$rounds" 'BEGIN {
  printf "mean   bare %.0f req/s   bare-pooled %.0f req/s   gateway %.0f req/s\n", b / r, p / r, g / r
  printf "server CPU per request: bare %.1f us   bare-pooled %.1f us   gateway %.1f us\n", cb / r, cp / r, cg / r
  printf "ratio gateway/bare %.3f   gateway/bare-pooled %.3f   (req/s; target >= 0.90)\n", g / b, g / p
  printf "cpu-ratio bare/gateway %.3f   bare-pooled/gateway %.3f   (CPU per request)\n", cb / cg, cp / cg
}'
[ -n "$profile" ] && echo "CPU profile: $profile (go tool pprof -tags $profile)"
exit 0
