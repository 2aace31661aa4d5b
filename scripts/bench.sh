#!/usr/bin/env bash
# warden against the servers it replaces, on loopback, with wrk (issue 17).
#
#   scripts/bench.sh [--smoke] [SECONDS] [ROUNDS] [CONNECTIONS]
#
# Starts, each on its own 127.0.0.1 port and all in front of the same Go
# upstream (scripts/benchsrv):
#   bare        a tuned httputil.ReverseProxy (pooled idle conns and copy
#               buffers): the baseline of every ratio;
#   warden      the real binary (go build ./cmd/warden) with a generated
#               policy: a deny ip_list of N CIDRs from a file, a deny rule on
#               /deny/, one upstream handler;
#   nginx       geo $blocked (the same N CIDRs) + proxy_pass with keepalive;
#   caddy       remote_ip matcher (the same N CIDRs, JSON config) + reverse_proxy;
#   minimal403  a Go net/http server that answers every request 403;
# with N = 10,000 and N = 1,000,000 (deterministic lists without 127/8, so
# wrk's 127.0.0.1 is never in them). Then ROUNDS rounds of SECONDS each per
# target (default 5 s, 2 rounds, 64 connections), in an order that rotates
# every round, so other load on the machine falls on all of them alike.
#
# Per run it prints req/s, the ratio to bare in the same round, the CPU
# time of the server's processes per request (from /proc; not wrk, not the
# upstream), wrk's p99, memory (the sum of the processes' PSS at the end of
# the run, and the largest VmHWM of one of them) and the ready time (spawn to
# the first good answer). The "refuse" rows send GET /deny/x: a 403 from a
# path rule with no upstream involved; their ratio is to minimal403.
#
# --smoke: 1 s runs (or SECONDS), the 10k list only, one round, no warm-up
# (for scripts/test.sh, so the script cannot rot). PROFILE=DIR records a
# `perf record -g` of warden-10k, nginx-10k and bare during their
# proxy runs into DIR (perf must be installed).
#
# Bounded: SECONDS <= 60, ROUNDS <= 5; a server that is not ready within
# 90 s is reported as failed and left out. Every process it starts is
# stopped by its PID on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

smoke=0
args=()
for a in "$@"; do
  case "$a" in
    --smoke) smoke=1 ;;
    *) args+=("$a") ;;
  esac
done
secs=${args[0]:-5}
rounds=${args[1]:-2}
conns=${args[2]:-64}
if [ "$smoke" = 1 ]; then
  secs=${args[0]:-1} rounds=1
fi
for v in "$secs" "$rounds" "$conns"; do
  case "$v" in
    '' | *[!0-9]* | 0) echo "usage: scripts/bench.sh [--smoke] [SECONDS] [ROUNDS] [CONNECTIONS] (positive integers)" >&2; exit 2 ;;
  esac
done
if [ "$secs" -gt 60 ] || [ "$rounds" -gt 5 ] || [ "$conns" -gt 1024 ]; then
  echo "bench: at most 60 seconds a run, 5 rounds, 1024 connections" >&2
  exit 2
fi

export PATH="$PATH:/usr/sbin:/sbin"
need=()
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v nginx >/dev/null 2>&1 || need+=(nginx)
command -v caddy >/dev/null 2>&1 || need+=(caddy)
command -v curl >/dev/null 2>&1 || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing: ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "bench: missing ${need[*]} (apt-get install ${need[*]})" >&2
    exit 1
  fi
fi

work=$(mktemp -d /tmp/warden-bench.XXXXXX)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do
    kill "$p" 2>/dev/null || true
  done
  for p in "${pids[@]}"; do
    wait "$p" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

life=$(((secs + 1) * rounds * 20 + 600)) # benchsrv stops by itself after this
go build -o "$work/warden" ./cmd/warden
go build -o "$work/benchsrv" ./scripts/benchsrv

free_port() { # a free loopback port (bound and released by the kernel's choice)
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
    echo $((20000 + RANDOM % 20000))
}

sizes=(10000 1000000)
[ "$smoke" = 1 ] && sizes=(10000)
for n in "${sizes[@]}"; do
  mkdir -p "$work/l$n"
  "$work/benchsrv" cidrs -n "$n" -out "$work/l$n"
done

declare -A url pidof ready_s started
now_ns() { date +%s%N; }

# spawn NAME CMD... : starts a server in the background and remembers its PID.
spawn() {
  local name=$1
  shift
  "$@" >"$work/$name.log" 2>&1 &
  pidof[$name]=$!
  pids+=("$!")
  started[$name]=$(now_ns)
}

# await NAME URL STATUS : waits (at most 90 s) until URL answers STATUS.
await() {
  local name=$1 u=$2 want=$3 deadline code
  deadline=$(($(date +%s) + 90))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    if ! kill -0 "${pidof[$name]}" 2>/dev/null; then
      echo "bench: $name exited:" >&2
      tail -5 "$work/$name.log" >&2
      return 1
    fi
    code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$u" || true)
    if [ "$code" = "$want" ]; then
      ready_s[$name]=$(awk -v a="${started[$name]}" -v b="$(now_ns)" 'BEGIN {printf "%.2f", (b - a) / 1e9}')
      return 0
    fi
    sleep 0.05
  done
  echo "bench: $name not ready within 90 s" >&2
  return 1
}

up_port=$(free_port)
spawn upstream "$work/benchsrv" upstream -listen "127.0.0.1:$up_port" -for "${life}s"
await upstream "http://127.0.0.1:$up_port/" 200

# start NAME CMD... : spawns a front and waits for its first good answer
# (one at a time, so that a ready time is not another's start-up load).
declare -A failed
start() {
  local name=$1 want=200
  shift
  [ "$name" = minimal403 ] && want=403
  spawn "$name" "$@"
  if ! await "$name" "${url[$name]}" "$want"; then
    failed[$name]=1
    ready_s[$name]=fail
    kill "${pidof[$name]}" 2>/dev/null || true
  fi
}

p=$(free_port)
url[bare]="http://127.0.0.1:$p/"
start bare "$work/benchsrv" bare -listen "127.0.0.1:$p" -upstream "127.0.0.1:$up_port" -for "${life}s"
p=$(free_port)
url[minimal403]="http://127.0.0.1:$p/deny/x"
start minimal403 "$work/benchsrv" minimal403 -listen "127.0.0.1:$p" -for "${life}s"
[ -z "${failed[bare]:-}${failed[minimal403]:-}" ] || exit 1

for n in "${sizes[@]}"; do
  k=$((n / 1000))k
  [ "$n" -ge 1000000 ] && k=$((n / 1000000))m
  d="$work/l$n"

  p=$(free_port)
  cat >"$d/warden.yaml" <<EOF
listen: 127.0.0.1:$p
default: allow
ip_lists:
  blocked: { files: [cidrs.txt] }
rules:
  - name: blocked-addresses
    when: { ip_list: blocked }
    action: deny
  - name: refused-path
    when: { path: { prefix: [/deny/] } }
    action: deny
handle:
  - path: /
    upstream: http://127.0.0.1:$up_port
EOF
  url[warden-$k]="http://127.0.0.1:$p/"
  start "warden-$k" "$work/warden" serve --config "$d/warden.yaml"

  p=$(free_port)
  mkdir -p "$d/nginx-tmp"
  cat >"$d/nginx.conf" <<EOF
daemon off;
master_process on;
user root;
worker_processes auto;
pid $d/nginx.pid;
error_log $d/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $d/nginx-tmp/body;
  proxy_temp_path $d/nginx-tmp/proxy;
  fastcgi_temp_path $d/nginx-tmp/fastcgi;
  uwsgi_temp_path $d/nginx-tmp/uwsgi;
  scgi_temp_path $d/nginx-tmp/scgi;
  geo \$blocked {
    default 0;
    include $d/geo.conf;
  }
  upstream up {
    server 127.0.0.1:$up_port;
    keepalive 512;
  }
  server {
    listen 127.0.0.1:$p;
    location /deny/ { return 403; }
    location / {
      if (\$blocked) { return 403; }
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
EOF
  url[nginx-$k]="http://127.0.0.1:$p/"
  start "nginx-$k" nginx -c "$d/nginx.conf" -p "$d"

  p=$(free_port)
  {
    printf '{"admin":{"disabled":true},"logging":{"logs":{"default":{"level":"ERROR"}}},"apps":{"http":{"servers":{"bench":{"listen":["127.0.0.1:%s"],"routes":[' "$p"
    printf '{"match":[{"remote_ip":{"ranges":'
    cat "$d/caddy-ranges.json"
    printf '}}],"handle":[{"handler":"static_response","status_code":403}]},'
    printf '{"match":[{"path":["/deny/*"]}],"handle":[{"handler":"static_response","status_code":403}]},'
    printf '{"handle":[{"handler":"reverse_proxy","upstreams":[{"dial":"127.0.0.1:%s"}]}]}' "$up_port"
    printf ']}}}}}\n'
  } >"$d/caddy.json"
  url[caddy-$k]="http://127.0.0.1:$p/"
  start "caddy-$k" caddy run --config "$d/caddy.json"
done

# A front that failed to start is reported and left out of the runs.
fronts=(bare)
for n in "${sizes[@]}"; do
  k=$((n / 1000))k
  [ "$n" -ge 1000000 ] && k=$((n / 1000000))m
  fronts+=("warden-$k" "nginx-$k" "caddy-$k")
done

# The runs: a proxy run per front and a refusal run (GET /deny/x) for
# minimal403 and the 10k fronts.
runs=()
for f in "${fronts[@]}"; do
  [ -n "${failed[$f]:-}" ] || runs+=("proxy:$f")
done
runs+=("refuse:minimal403")
for f in warden-10k nginx-10k caddy-10k; do
  [ -n "${failed[$f]:-}" ] || runs+=("refuse:$f")
done

ticks=$(getconf CLK_TCK)
procs() { # the PIDs of a server: itself and its children (nginx's workers)
  local p=${pidof[$1]}
  echo "$p"
  pgrep -P "$p" 2>/dev/null || true
}
cpu_ticks() {
  local t=0 p v
  for p in $(procs "$1"); do
    v=$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)
    t=$((t + v))
  done
  echo "$t"
}
memory() { # "PSS-sum-MiB largest-VmHWM-MiB"
  local pss=0 hwm=0 p a b
  for p in $(procs "$1"); do
    a=$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)
    b=$(awk '/^VmHWM:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
    pss=$((pss + ${a:-0}))
    [ "${b:-0}" -gt "$hwm" ] && hwm=${b:-0}
  done
  awk -v a="$pss" -v b="$hwm" 'BEGIN {printf "%.0f %.0f", a / 1024, b / 1024}'
}

threads=$(nproc)
[ "$threads" -gt 4 ] && threads=4
profile=${PROFILE:-}
[ -n "$profile" ] && mkdir -p "$profile" && profile=$(realpath "$profile")

# run KIND:NAME SECONDS → "req/s cpu-us/req p99-ms timeouts" (fails on a
# wrong answer)
run() {
  local kind=${1%%:*} name=${1#*:} u out t0 t1 perfpid=""
  u=${url[$name]}
  [ "$kind" = refuse ] && u="${u%/}"
  [ "$kind" = refuse ] && [ "$name" != minimal403 ] && u="$u/deny/x"
  if [ -n "$profile" ] && [ "$kind" = proxy ] && [[ "$name" =~ ^(bare|warden-10k|nginx-10k)$ ]]; then
    perf record -g -o "$profile/$name.perf" -p "$(procs "$name" | paste -sd,)" -- sleep "$2" >/dev/null 2>&1 &
    perfpid=$!
  fi
  t0=$(cpu_ticks "$name")
  out=$(wrk -t"$threads" -c"$conns" -d"$2"s --latency "$u")
  t1=$(cpu_ticks "$name")
  [ -n "$perfpid" ] && wait "$perfpid" 2>/dev/null || true
  local n non2xx
  n=$(awk '/ requests in / {print $1}' <<<"$out")
  non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' <<<"$out")
  non2xx=${non2xx:-0}
  # wrk's socket errors: connect/read/write errors are failures; timeouts
  # (no answer within wrk's 2 s) are a result, shown in the "timeouts" column.
  local sockerr timeouts
  sockerr=$(awk '/Socket errors:/ {gsub(",", ""); print $4 + $6 + $8}' <<<"$out")
  timeouts=$(awk '/Socket errors:/ {print $NF}' <<<"$out")
  if [ "${sockerr:-0}" != 0 ] || [ -z "$n" ] || [ "$n" = 0 ] ||
    { [ "$kind" = proxy ] && [ "$non2xx" != 0 ]; } || { [ "$kind" = refuse ] && [ "$non2xx" != "$n" ]; }; then
    echo "bench: $1 had wrong answers or errors:" >&2
    echo "$out" >&2
    return 1
  fi
  awk -v dt=$((t1 - t0)) -v hz="$ticks" -v n="$n" -v to="${timeouts:-0}" '
    /^Requests\/sec:/ {rps = $2}
    $1 == "99%" {v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v)
                 p99 = (u == "us" ? v / 1000 : u == "s" ? v * 1000 : u == "m" ? v * 60000 : v)}
    END {printf "%s %.1f %.2f %d\n", rps, dt / hz * 1e6 / n, p99, to}' <<<"$out"
}

echo "# scripts/bench.sh $* — wrk -t$threads -c$conns --latency, $rounds round(s) of ${secs}s per run, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# warden $(git describe --always --dirty 2>/dev/null || echo ?), nginx $(nginx -v 2>&1 | sed 's/.*nginx\///'), caddy $(caddy version | cut -d' ' -f1)"
echo "# ready: spawn to first good answer (s)"
for f in minimal403 "${fronts[@]}"; do
  printf '#   %-12s %s\n' "$f" "${ready_s[$f]}"
done
if [ "$smoke" = 0 ]; then
  for r in "${runs[@]}"; do run "$r" 1 >/dev/null || true; done # warm-up: open the connections
fi

declare -A sum_rps sum_cpu sum_n
printf '%-5s %-6s %-12s %10s %7s %10s %8s %8s %8s %8s %7s\n' round kind target req/s ratio cpu-us/req p99-ms timeouts PSS-MiB HWM-MiB ready-s
for r in $(seq 1 "$rounds"); do
  declare -A rps=() line=()
  nr=${#runs[@]}
  for i in $(seq 0 $((nr - 1))); do
    x=${runs[$(((i + r - 1) % nr))]}
    read -r a c q to < <(run "$x" "$secs") || exit 1
    [ -n "$a" ] || exit 1
    rps[$x]=$a
    line[$x]="$a $c $q $to $(memory "${x#*:}")"
  done
  for x in "${runs[@]}"; do
    read -r a c q to pss hwm <<<"${line[$x]}"
    base=${rps[proxy:bare]}
    [ "${x%%:*}" = refuse ] && base=${rps[refuse:minimal403]}
    ratio=$(awk -v a="$a" -v b="$base" 'BEGIN {printf "%.3f", a / b}')
    printf '%-5s %-6s %-12s %10.0f %7s %10s %8s %8s %8s %8s %7s\n' "$r" "${x%%:*}" "${x#*:}" "$a" "$ratio" "$c" "$q" "$to" "$pss" "$hwm" "${ready_s[${x#*:}]}"
    sum_rps[$x]=$(awk -v s="${sum_rps[$x]:-0}" -v v="$ratio" 'BEGIN {print s + v}')
    sum_cpu[$x]=$(awk -v s="${sum_cpu[$x]:-0}" -v v="$c" 'BEGIN {print s + v}')
  done
done

echo "# mean over rounds: ratio (req/s to bare, or to minimal403 for refusals), cpu-us/req, cpu-ratio (target's CPU per request / the baseline's)"
for x in "${runs[@]}"; do
  b=proxy:bare
  [ "${x%%:*}" = refuse ] && b=refuse:minimal403
  awk -v n="$x" -v r="$rounds" -v s="${sum_rps[$x]}" -v c="${sum_cpu[$x]}" -v cb="${sum_cpu[$b]}" \
    'BEGIN {printf "#   %-18s ratio %.3f   cpu %.1f us/req   cpu-ratio %.3f\n", n, s / r, c / r, c / cb}'
done
for f in "${fronts[@]}"; do
  [ -n "${failed[$f]:-}" ] && echo "#   $f: FAILED to start (see above)"
done
[ -n "$profile" ] && echo "# perf profiles in $profile (perf report -i $profile/warden-10k.perf --no-children)"
exit 0
