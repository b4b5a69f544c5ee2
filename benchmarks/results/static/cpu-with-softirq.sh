#!/usr/bin/env bash
# cpu-with-softirq.sh ROUNDS DURATION FILE_SIZE NAME=BIN... [nginx]
# Each round, in order: each server pinned to CPU 1, wrk -t1 -c64 on CPU 0, keep-alive GETs
# of one file; prints per run: requests, server ticks, ksoftirqd/1 ticks, cpu1 softirq ticks.
set -u
rounds=$1 duration=$2 size=$3; shift 3
work=$(mktemp -d /tmp/sfb/run.XXXXXX); chmod 755 $work
mkdir -p $work/www; head -c $size /dev/urandom > $work/www/f.bin; chmod -R 755 $work/www
ksoft=$(pgrep -x ksoftirqd/1)
tck=$(getconf CLK_TCK)
ticks() { local t=0; for p in "$@"; do read -r -a f < /proc/$p/stat 2>/dev/null || continue; t=$((t + f[13] + f[14])); done; echo $t; }
tree() { echo $1 $(pgrep -P $1); }
cpu1() { awk '/^cpu1 / {print $7, $8, $2+$3+$4+$7+$8}' /proc/stat; } # irq softirq busy
hconf() { cat > $work/h.toml <<T
[server]
address = "127.0.0.1"
port = 19000
shards = 1
placement = "pinned"
max_connections = 100000
[[route]]
handler = "static"
path = "/static"
dir = "$work/www"
[[route]]
handler = "stats"
path = "/stats"
T
}
nconf() { mkdir -p $work/nginx/logs; cat > $work/nginx/nginx.conf <<C
$( [ "$(id -u)" = 0 ] && echo "user root;")
worker_processes 1; daemon off; master_process on; pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log warn;
events { worker_connections 1024; multi_accept on; }
http { access_log off; keepalive_requests 1000000000; keepalive_timeout 60s;
  client_body_temp_path $work/nginx/cb; proxy_temp_path $work/nginx/p; fastcgi_temp_path $work/nginx/f;
  uwsgi_temp_path $work/nginx/u; scgi_temp_path $work/nginx/s;
  server { listen 127.0.0.1:19000 reuseport backlog=1024; location /static/ { alias $work/www/; sendfile on; } } }
C
}
hconf; nconf
for r in $(seq $rounds); do
  for spec in "$@"; do
    name=${spec%%=*} bin=${spec#*=}
    if [ "$name" = nginx ]; then taskset -c 1 nginx -p $work/nginx -e $work/nginx/logs/error.log -c $work/nginx/nginx.conf & pid=$!
    else taskset -c 1 $bin --config $work/h.toml >/dev/null 2>&1 & pid=$!; fi
    for i in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:19000/static/f.bin && break; sleep 0.1; done
    taskset -c 0 wrk -t1 -c64 -d2s http://127.0.0.1:19000/static/f.bin >/dev/null 2>&1
    p=$(tree $pid); s0=$(ticks $p); k0=$(ticks $ksoft); read i0 q0 b0 < <(cpu1)
    out=$(taskset -c 0 wrk -t1 -c64 -d${duration}s http://127.0.0.1:19000/static/f.bin 2>&1)
    p=$(tree $pid); s1=$(ticks $p); k1=$(ticks $ksoft); read i1 q1 b1 < <(cpu1)
    st=""; [ "$name" = nginx ] || st=$(curl -s http://127.0.0.1:19000/stats | python3 -c 'import json,sys; t=json.load(sys.stdin)["total"]; print("sendfile_bodies=%s" % t.get("sendfile_bodies"))' 2>/dev/null)
    kill $pid; wait $pid 2>/dev/null
    req=$(grep -o '[0-9]* requests in' <<<"$out" | cut -d' ' -f1)
    errs=$(grep -E 'Socket errors|Non-2xx' <<<"$out" | tr '\n' ' ')
    awk -v n=$name -v r=$req -v s=$((s1-s0)) -v k=$((k1-k0)) -v q=$((q1-q0)) -v b=$((b1-b0)) -v t=$tck -v d=$duration -v e="$errs $st" 'BEGIN {
      printf "%-8s req/s=%7.0f server_us/req=%7.1f ksoftirqd_us/req=%6.1f server+ksoftirqd=%7.1f cpu1_softirq_us/req=%6.1f cpu1_busy_us/req=%7.1f %s\n", n, r/d, s/t/r*1e6, k/t/r*1e6, (s+k)/t/r*1e6, q/t/r*1e6, b/t/r*1e6, e }'
  done
done
