#!/usr/bin/env bash
# make bench-webhook: load `berth serve` (release build) with wrk — keep-alive, 32 connections,
# POSTs of the z2jh GPU notebook AdmissionReview — and, in the same run, nginx serving a fixed
# AdmissionReview answer over TLS with the same certificate: the practical ceiling on this machine.
# Prints req/s, p50/p99 latency and the ratio berth/nginx for each of ROUNDS rounds (default 3, nginx
# and berth alternating), then the medians. Loopback only; bounded in time (~25 s a round).
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-32}"
ROUNDS="${ROUNDS:-3}"
# With two or more CPUs the servers run on CPU 0 and wrk on CPU 1 (PIN=0 to share all CPUs):
# otherwise the load generator steals the server's CPU and p99 measures the scheduler.
PIN="${PIN:-$(( $(nproc) >= 2 ? 1 : 0 ))}"
if [[ "$PIN" == 1 ]]; then
  SERVER_CPU=(taskset -c 0); CLIENT_CPU=(taskset -c 1); WORKERS=1; THREADS="${THREADS:-1}"
else
  SERVER_CPU=(); CLIENT_CPU=(); WORKERS=auto; THREADS="${THREADS:-2}"
fi
NGINX_PORT="${NGINX_PORT:-18443}"
BERTH_PORT="${BERTH_PORT:-19443}"
for tool in wrk nginx openssl curl; do
  command -v "$tool" >/dev/null || { echo "bench-webhook: $tool is missing (apt-get install wrk nginx)" >&2; exit 1; }
done

work="$(mktemp -d)"
cleanup() {
  [[ -n "${berth_pid:-}" ]] && kill -TERM "$berth_pid" 2>/dev/null && wait "$berth_pid" 2>/dev/null || true
  [[ -f "$work/nginx.pid" ]] && kill -QUIT "$(cat "$work/nginx.pid")" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

export REVIEW="$PWD/Tests/Fixtures/admission/z2jh-gpu-notebook.review.json"
# BERTH_BIN: another berth binary to measure (e.g. an older commit's, for a before/after).
if [[ -n "${BERTH_BIN:-}" ]]; then
  BERTH="$BERTH_BIN"
else
  swift build -c release --static-swift-stdlib --product berth >/dev/null
  BERTH=.build/release/berth
fi

# One certificate for both servers (P-256, like the dev certificates).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout "$work/tls.key" -out "$work/tls.crt" 2>/dev/null

# nginx answers what Berth answers for this review, as a fixed string.
"${SERVER_CPU[@]}" "$BERTH" serve --provisioner=false --tls-cert-file "$work/tls.crt" --tls-private-key-file "$work/tls.key" --bind-address 127.0.0.1 \
  --port "$BERTH_PORT" --metrics-port 0 --log-level warning & berth_pid=$!
for _ in $(seq 100); do curl -sfk "https://127.0.0.1:$BERTH_PORT/readyz" >/dev/null && break; sleep 0.1; done
answer="$(curl -sSk -H 'Content-Type: application/json' --data-binary @"$REVIEW" "https://127.0.0.1:$BERTH_PORT/mutate")"
escaped="${answer//\\/\\\\}"; escaped="${escaped//\'/\\\'}"
mkdir -p "$work/nginx"
cat > "$work/nginx.conf" <<NGINX
worker_processes $WORKERS;
pid $work/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/nginx;
  proxy_temp_path $work/nginx; fastcgi_temp_path $work/nginx; uwsgi_temp_path $work/nginx; scgi_temp_path $work/nginx;
  client_max_body_size 8m;
  client_body_buffer_size 64k;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$NGINX_PORT ssl;
    ssl_certificate $work/tls.crt;
    ssl_certificate_key $work/tls.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    location /mutate { default_type application/json; return 200 '$escaped'; }
  }
}
NGINX
"${SERVER_CPU[@]}" nginx -c "$work/nginx.conf" -e "$work/nginx/error.log" 2>/dev/null || "${SERVER_CPU[@]}" nginx -c "$work/nginx.conf"
for _ in $(seq 100); do curl -sfk -X POST -d x "https://127.0.0.1:$NGINX_PORT/mutate" >/dev/null && break; sleep 0.1; done

# CPU time (user + system, clock ticks) of a process and its children threads/workers: with the
# machine shared, req/s moves with the neighbours' load, CPU per request much less.
cpu_ticks() {  # pid... -> ticks
  local total=0 pid
  for pid in "$@"; do
    total=$(( total + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0) ))
  done
  echo "$total"
}

run_wrk() {  # name port pid... -> "req/s p50 p99 cpu-µs/request errors"
  local name=$1 port=$2; shift 2
  "${CLIENT_CPU[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d2s -s Tests/bench/review.lua "https://127.0.0.1:$port" >/dev/null  # warm-up
  local before after
  before=$(cpu_ticks "$@")
  "${CLIENT_CPU[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s Tests/bench/review.lua "https://127.0.0.1:$port" > "$work/$name.txt"
  after=$(cpu_ticks "$@")
  local rps p50 p99 errors requests cpu
  rps=$(awk '/^Requests\/sec:/ {print $2}' "$work/$name.txt")
  p50=$(awk '$1 == "50%" {print $2}' "$work/$name.txt")
  p99=$(awk '$1 == "99%" {print $2}' "$work/$name.txt")
  requests=$(awk '/requests in/ {print $1}' "$work/$name.txt")
  cpu=$(awk -v t=$(( after - before )) -v hz="$(getconf CLK_TCK)" -v n="$requests" 'BEGIN { printf "%.1f", (n > 0 ? t / hz * 1e6 / n : 0) }')
  errors=$(awk '/Non-2xx|Socket errors/ {print}' "$work/$name.txt" | tr '\n' ' ')
  echo "$rps $p50 $p99 $cpu ${errors:-none}"
}

nginx_pids=("$(cat "$work/nginx.pid")" $(pgrep -P "$(cat "$work/nginx.pid")" || true))
placement="servers and wrk share $(nproc) CPUs"
[[ "$PIN" == 1 ]] && placement="server pinned to CPU 0 (nginx: 1 worker, berth: 1 event loop), wrk to CPU 1"
echo "bench-webhook: wrk -t$THREADS -c$CONNECTIONS -d$DURATION, keep-alive, POST $(wc -c < "$REVIEW") B z2jh AdmissionReview over TLS; $placement; $ROUNDS rounds ($(date -u +%F))"

to_us() {  # wrk's "847.00us" / "1.82ms" / "1.10s" -> microseconds
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /ms$/) n *= 1000; else if (v ~ /[0-9]s$/) n *= 1000000; printf "%.0f", n }'
}
median() {  # numbers... -> the median (the lower middle for an even count)
  printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

# Rounds alternate nginx and berth, so both see the same spells of a shared machine; one round's
# p99 moves by a factor of two with the VM's stalls (BENCHMARKS.md), the median of several less.
ratios=(); cpu_ratios=(); berth_p99s=(); nginx_p99s=(); berth_rpss=(); nginx_rpss=()
for round in $(seq "$ROUNDS"); do
  read -r nginx_rps nginx_p50 nginx_p99 nginx_cpu nginx_errors < <(run_wrk nginx "$NGINX_PORT" "${nginx_pids[@]}")
  read -r berth_rps berth_p50 berth_p99 berth_cpu berth_errors < <(run_wrk berth "$BERTH_PORT" "$berth_pid")
  ratio=$(awk -v b="$berth_rps" -v n="$nginx_rps" 'BEGIN { printf "%.2f", b / n }')
  cpu_ratio=$(awk -v b="$berth_cpu" -v n="$nginx_cpu" 'BEGIN { printf "%.2f", (b > 0 ? n / b : 0) }')
  echo " round $round (load: $(cut -d' ' -f1-3 /proc/loadavg))"
  printf "  %-34s %10s req/s   p50 %-9s p99 %-9s CPU %6s µs/req   errors: %s\n" "nginx (fixed answer, the ceiling)" "$nginx_rps" "$nginx_p50" "$nginx_p99" "$nginx_cpu" "$nginx_errors"
  printf "  %-34s %10s req/s   p50 %-9s p99 %-9s CPU %6s µs/req   errors: %s\n" "berth serve (the real policy)" "$berth_rps" "$berth_p50" "$berth_p99" "$berth_cpu" "$berth_errors"
  echo "  ratio berth / nginx = $ratio   by server CPU per request: $cpu_ratio"
  ratios+=("$ratio"); cpu_ratios+=("$cpu_ratio"); berth_rpss+=("$berth_rps"); nginx_rpss+=("$nginx_rps")
  berth_p99s+=("$(to_us "$berth_p99")"); nginx_p99s+=("$(to_us "$nginx_p99")")
done
echo "median of $ROUNDS rounds: nginx $(median "${nginx_rpss[@]}") req/s, p99 $(median "${nginx_p99s[@]}") µs;" \
  "berth $(median "${berth_rpss[@]}") req/s, p99 $(median "${berth_p99s[@]}") µs;" \
  "ratio $(median "${ratios[@]}") (by CPU $(median "${cpu_ratios[@]}"))   goal: ratio >= 0.5, berth p99 <= 2000 µs"
