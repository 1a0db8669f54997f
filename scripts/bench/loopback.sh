#!/usr/bin/env bash
# Loopback load comparison: wrk straight to the echo backend ("direct"),
# through nginx, through the gateway (subscription-key check, request logs
# off) and through the gateway with request logs on (info level, to
# /dev/null). Method: /work/shared/BENCHMARKING.md, summed up in
# BENCHMARKS.md. Used by `make bench-load`.
#
#   BIN=bin DURATION=10s RUNS=3 scripts/bench/loopback.sh
#
# Pinning: the backend and `wrk -t1` on LOAD_CPU (0), the proxy under test
# on PROXY_CPU (1). The figure of merit is the proxy's CPU time per request:
# utime+stime from /proc/PID/stat (all its processes: nginx master+worker)
# before and after each wrk run, divided by the requests wrk completed.
#
# Backend connections opened per 1,000 requests: the script re-runs itself
# in a private network namespace (unshare -n, so nothing else on the machine
# shares its loopback or sees its firewall rule) and counts the TCP SYNs sent
# to the backend port with a match-only iptables rule. For "direct" these
# are wrk's own connections.
#
# Knobs (environment):
#   BIN        directory with apim-gateway and echo-backend (default bin)
#   DURATION   wrk duration of each measured run (default 10s)
#   RUNS       measured runs per variant and connection count (default 3)
#   CONNS      wrk connection counts (default "32 128")
#   OUT        output directory (default bench-results/): raw/ holds every
#              wrk output, runs.tsv one line per run, summary.md the tables
#   WARMUP     wrk warm-up per variant before measuring (default 3s)
#   VARIANTS   subset/order of "direct nginx gateway gateway-reqlog gateway-policies"
#              (gateway-policies: the typical policy stack of snapshot-policies.json)
#   LOAD_CPU, PROXY_CPU   CPUs for load+backend and for the proxy (0, 1)
#   NGINX_KEEPALIVE_REQUESTS  nginx keepalive_requests, client and upstream
#              (default 1000000: neither proxy recycles connections; nginx's
#              own default is 1000)
#   NGINX_IGNORE_CLIENT_ABORT  on (default, as the gateway behaves) or off
#              (nginx's default: a request wrk abandons at the end of a run
#              closes its upstream connection)
#   NETNS      1 (default) to run in a private network namespace; 0 runs in
#              the current one (no connection counting then)
#   KEEP_TMP   1 keeps the temporary directory (configs, logs)
set -euo pipefail

BIN=${BIN:-bin}
DURATION=${DURATION:-10s}
RUNS=${RUNS:-3}
CONNS=${CONNS:-"32 128"}
OUT=${OUT:-bench-results/}
OUT=${OUT%/}
WARMUP=${WARMUP:-3s}
VARIANTS=${VARIANTS:-"direct nginx gateway gateway-reqlog gateway-policies"}
LOAD_CPU=${LOAD_CPU:-0}
PROXY_CPU=${PROXY_CPU:-1}
NGINX_KEEPALIVE_REQUESTS=${NGINX_KEEPALIVE_REQUESTS:-1000000}
NGINX_IGNORE_CLIENT_ABORT=${NGINX_IGNORE_CLIENT_ABORT:-on}
NETNS=${NETNS:-1}
KEEP_TMP=${KEEP_TMP:-0}

here=$(cd "$(dirname "$0")" && pwd)
log() { printf '%s\n' "$*" >&2; }
die() {
	log "loopback.sh: $*"
	exit 1
}

# --- tools (before entering the namespace, which has no network) --------
if [ -z "${_BENCH_IN_NETNS:-}" ]; then
	need=()
	command -v wrk >/dev/null || need+=(wrk)
	command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx)
	command -v curl >/dev/null || need+=(curl)
	command -v taskset >/dev/null || need+=(util-linux)
	command -v pgrep >/dev/null || need+=(procps)
	if [ "$NETNS" = 1 ]; then
		command -v iptables >/dev/null || [ -x /usr/sbin/iptables ] || need+=(iptables)
		command -v ip >/dev/null || [ -x /usr/sbin/ip ] || need+=(iproute2)
	fi
	if [ ${#need[@]} -gt 0 ]; then
		[ "$(id -u)" = 0 ] || die "missing ${need[*]}; install them (apt-get) or run as root"
		log "installing ${need[*]}"
		apt-get update -qq
		# The nginx package may start the system nginx service (not on
		# machines whose policy-rc.d forbids it); this script never uses it.
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
	fi
	if [ "$NETNS" = 1 ]; then
		if unshare -n true 2>/dev/null; then
			exec unshare -n -- env _BENCH_IN_NETNS=1 bash "$0" "$@"
		fi
		log "warning: cannot create a network namespace (needs root/CAP_SYS_ADMIN); running in the current one, backend connections not counted"
		NETNS=0
	fi
fi
PATH=$PATH:/usr/sbin:/sbin

if [ ! -x "$BIN/apim-gateway" ] || [ ! -x "$BIN/echo-backend" ]; then
	die "no $BIN/apim-gateway or $BIN/echo-backend: run make build"
fi
BIN=$(cd "$BIN" && pwd)
nproc_all=$(nproc --all)
if [ "$LOAD_CPU" -ge "$nproc_all" ] || [ "$PROXY_CPU" -ge "$nproc_all" ]; then
	die "LOAD_CPU=$LOAD_CPU/PROXY_CPU=$PROXY_CPU but the machine has $nproc_all CPUs"
fi
[ "$LOAD_CPU" != "$PROXY_CPU" ] || log "warning: LOAD_CPU and PROXY_CPU are the same CPU"
for v in $VARIANTS; do
	case $v in direct | nginx | gateway | gateway-reqlog | gateway-policies) ;; *) die "unknown variant $v" ;; esac
done
CLK_TCK=$(getconf CLK_TCK)
KEY=$(sed -n 's/.*"primaryKey": *"\([^"]*\)".*/\1/p' "$here/snapshot.json" | head -1)
[ -n "$KEY" ] || die "no primaryKey in $here/snapshot.json"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/apim-bench.XXXXXX")
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	if [ "$KEEP_TMP" = 1 ]; then log "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- network: private namespace, SYN counters -----------------------------
count_syns=0
if [ -n "${_BENCH_IN_NETNS:-}" ]; then
	ip link set lo up
	count_syns=1
fi
port_free() { ! ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }
next_port=18080
pick_port() { # NAME: sets the variable NAME to the next free port
	while ! port_free "$next_port"; do next_port=$((next_port + 1)); done
	printf -v "$1" '%s' "$next_port"
	next_port=$((next_port + 1))
}
pick_port BACKEND_PORT
pick_port NGINX_PORT
pick_port GW_PORT
pick_port GW_TEL_PORT
pick_port GWLOG_PORT
pick_port GWLOG_TEL_PORT
pick_port GWPOL_PORT
pick_port GWPOL_TEL_PORT
if [ "$count_syns" = 1 ]; then
	# Match-only rule (no target): its packet counter is the number of
	# connection attempts (SYN without ACK) to the backend.
	iptables -w -I INPUT -p tcp --dport "$BACKEND_PORT" --tcp-flags SYN,ACK,RST,FIN SYN ||
		{ log "warning: iptables failed; backend connections not counted"; count_syns=0; }
fi
backend_syns() {
	if [ "$count_syns" != 1 ]; then echo -; return; fi
	iptables -w -L INPUT -v -n -x | awk -v d="dpt:$BACKEND_PORT" '{ for (i = 1; i <= NF; i++) if ($i == d) { print $1; exit } }'
}

# --- configuration ---------------------------------------------------------
mkdir -p "$tmp/gw" "$tmp/nginx/tmp"
sed "s#http://127.0.0.1:18080#http://127.0.0.1:$BACKEND_PORT#" "$here/snapshot.json" >"$tmp/gw/snapshot.json"
mkdir -p "$tmp/gwpol"
sed "s#http://127.0.0.1:18080#http://127.0.0.1:$BACKEND_PORT#" "$here/snapshot-policies.json" >"$tmp/gwpol/snapshot.json"
cat >"$tmp/nginx/nginx.conf" <<EOF
# Equivalent of the gateway's bench API: /bench/X -> backend /X, subscription
# key checked in the Ocp-Apim-Subscription-Key header (401 otherwise), the
# same X-Forwarded-* headers the gateway adds, upstream keep-alive.
worker_processes 1;
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests $NGINX_KEEPALIVE_REQUESTS;
    client_body_temp_path $tmp/nginx/tmp/body;
    proxy_temp_path $tmp/nginx/tmp/proxy;
    fastcgi_temp_path $tmp/nginx/tmp/fastcgi;
    uwsgi_temp_path $tmp/nginx/tmp/uwsgi;
    scgi_temp_path $tmp/nginx/tmp/scgi;

    upstream bench_backend {
        server 127.0.0.1:$BACKEND_PORT;
        keepalive 256;
        keepalive_requests $NGINX_KEEPALIVE_REQUESTS;
    }
    map \$http_ocp_apim_subscription_key \$bench_key_ok {
        default 0;
        "$KEY" 1;
    }
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location /bench/ {
            if (\$bench_key_ok = 0) { return 401; }
            proxy_pass http://bench_backend/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_set_header X-Forwarded-Host \$host;
            # Like the gateway (fasthttp finishes the backend call when the
            # client goes away): otherwise each request wrk abandons at the
            # end of a run closes an upstream connection.
            proxy_ignore_client_abort $NGINX_IGNORE_CLIENT_ABORT;
        }
    }
}
EOF
NGINX=$(command -v nginx)
"$NGINX" -t -q -p "$tmp/nginx" -e "$tmp/nginx/error.log" -c "$tmp/nginx/nginx.conf" || die "nginx config test failed"

# --- processes --------------------------------------------------------------
wait_http() { # URL PID: wait until URL answers anything but 000/503
	local code
	for _ in $(seq 100); do
		kill -0 "$2" 2>/dev/null || die "process $2 for $1 exited; logs in $tmp"
		code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$1" || true)
		case $code in 000 | 503) sleep 0.1 ;; *) return 0 ;; esac
	done
	die "$1 did not come up"
}
taskset -c "$LOAD_CPU" "$BIN/echo-backend" --addr "127.0.0.1:$BACKEND_PORT" --fixed-body 100 2>"$tmp/backend.log" &
backend_pid=$!
pids+=("$backend_pid")
wait_http "http://127.0.0.1:$BACKEND_PORT/" "$backend_pid"

declare -A proc url
url[direct]="http://127.0.0.1:$BACKEND_PORT/resource"
url[nginx]="http://127.0.0.1:$NGINX_PORT/bench/resource"
url[gateway]="http://127.0.0.1:$GW_PORT/bench/resource"
url[gateway-reqlog]="http://127.0.0.1:$GWLOG_PORT/bench/resource"
url[gateway-policies]="http://127.0.0.1:$GWPOL_PORT/bench/resource"
for v in $VARIANTS; do
	case $v in
	nginx)
		taskset -c "$PROXY_CPU" "$NGINX" -p "$tmp/nginx" -e "$tmp/nginx/error.log" -c "$tmp/nginx/nginx.conf" &
		proc[nginx]=$!
		pids+=("$!")
		wait_http "${url[nginx]}" "${proc[nginx]}"
		;;
	gateway)
		taskset -c "$PROXY_CPU" "$BIN/apim-gateway" --config "$tmp/gw/snapshot.json" \
			--http-addr "127.0.0.1:$GW_PORT" --https-addr "" --telemetry-addr "127.0.0.1:$GW_TEL_PORT" \
			--shutdown-delay 0 --log-level warn --request-log-sampling 0 >"$tmp/gateway.log" 2>&1 &
		proc[gateway]=$!
		pids+=("$!")
		wait_http "http://127.0.0.1:$GW_PORT/status-0123456789abcdef" "${proc[gateway]}"
		;;
	gateway-reqlog)
		taskset -c "$PROXY_CPU" "$BIN/apim-gateway" --config "$tmp/gw/snapshot.json" \
			--http-addr "127.0.0.1:$GWLOG_PORT" --https-addr "" --telemetry-addr "127.0.0.1:$GWLOG_TEL_PORT" \
			--shutdown-delay 0 --log-level info --request-log-sampling 1 >/dev/null 2>"$tmp/gateway-reqlog.err" &
		proc[gateway-reqlog]=$!
		pids+=("$!")
		wait_http "http://127.0.0.1:$GWLOG_PORT/status-0123456789abcdef" "${proc[gateway-reqlog]}"
		;;
	gateway-policies)
		taskset -c "$PROXY_CPU" "$BIN/apim-gateway" --config "$tmp/gwpol/snapshot.json" \
			--http-addr "127.0.0.1:$GWPOL_PORT" --https-addr "" --telemetry-addr "127.0.0.1:$GWPOL_TEL_PORT" \
			--shutdown-delay 0 --log-level warn --request-log-sampling 0 >"$tmp/gateway-policies.log" 2>&1 &
		proc[gateway-policies]=$!
		pids+=("$!")
		wait_http "http://127.0.0.1:$GWPOL_PORT/status-0123456789abcdef" "${proc[gateway-policies]}"
		;;
	esac
done

# proxy_pids VARIANT: the processes whose CPU counts as the proxy's.
proxy_pids() {
	case $1 in
	direct) ;;
	nginx) echo "${proc[nginx]}" "$(pgrep -d ' ' -P "${proc[nginx]}" || true)" ;;
	*) echo "${proc[$1]}" ;;
	esac
}
cpu_ticks() { # PIDS...: summed utime+stime, or "-" without pids
	[ $# -gt 0 ] || { echo -; return; }
	local p s t=0 f
	for p in "$@"; do
		s=$(cat "/proc/$p/stat")
		s=${s##*) } # drop "pid (comm) "; the rest starts at field 3
		read -r -a f <<<"$s"
		t=$((t + f[11] + f[12]))
	done
	echo "$t"
}
rss_kib() { # PIDS...: summed VmRSS
	[ $# -gt 0 ] || { echo -; return; }
	local p t=0 r
	for p in "$@"; do
		r=$(awk '$1 == "VmRSS:" { print $2 }' "/proc/$p/status")
		t=$((t + r))
	done
	echo "$t"
}
core_busy() { # CPU: busy ticks (user nice system irq softirq steal)
	awk -v c="cpu$1" '$1 == c { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat
}
child_ticks() { # user+system CPU of this shell's reaped children, in ticks
	# `times` must run in this shell, not in a pipe or $(...) subshell.
	times >"$tmp/times"
	awk -v hz="$CLK_TCK" 'NR == 2 {
		t = 0
		for (i = 1; i <= 2; i++) { split($i, a, "m"); sub(/s$/, "", a[2]); t += a[1] * 60 + a[2] }
		printf "%d\n", t * hz + 0.5
	}' "$tmp/times"
}

# --- functional check: every variant answers 200 with the 100-byte body, and
# the proxies refuse a request without the key ---------------------------------
for v in $VARIANTS; do
	res=$(curl -s -o /dev/null -w '%{http_code} %{size_download}' -H "Ocp-Apim-Subscription-Key: $KEY" "${url[$v]}")
	[ "$res" = "200 100" ] || die "$v: expected 200 with 100 bytes, got $res (${url[$v]})"
	if [ "$v" != direct ]; then
		res=$(curl -s -o /dev/null -w '%{http_code}' "${url[$v]}")
		[ "$res" = 401 ] || die "$v: expected 401 without a key, got $res"
		res=$(curl -s -o /dev/null -w '%{http_code}' -H "Ocp-Apim-Subscription-Key: wrong" "${url[$v]}")
		[ "$res" = 401 ] || die "$v: expected 401 with a wrong key, got $res"
	fi
done

# --- how busy is the machine without load? (our processes are idle) --------
l0=$(core_busy "$LOAD_CPU")
q0=$(core_busy "$PROXY_CPU")
sleep 1
l1=$(core_busy "$LOAD_CPU")
q1=$(core_busy "$PROXY_CPU")
idle_note="CPU $LOAD_CPU $(((l1 - l0) * 100 / CLK_TCK)) %, CPU $PROXY_CPU $(((q1 - q0) * 100 / CLK_TCK)) % busy over 1 s before the runs"
log "$idle_note"

# --- measuring --------------------------------------------------------------
mkdir -p "$OUT/raw"
rm -f "$OUT"/raw/*.txt "$OUT/runs.tsv" "$OUT/summary.md"
tsv="$OUT/runs.tsv"
printf 'variant\tconns\trun\trequests\tsecs\trps\tp50_us\tp99_us\tsock_err\tnon2xx\tproxy_ticks\tbackend_ticks\tclk_tck\tbackend_syns\trss_kib\twall_s\tload_cpu_busy_ticks\tproxy_cpu_busy_ticks\twrk_ticks\n' >"$tsv"

wrk_run() { # VARIANT CONNS DURATION OUTFILE
	taskset -c "$LOAD_CPU" wrk -t1 -c"$2" -d"$3" --latency \
		-H "Ocp-Apim-Subscription-Key: $KEY" "${url[$1]}" >"$4"
}

measure() { # VARIANT CONNS RUN
	local v=$1 c=$2 r=$3 raw pp s0 s1 p0 p1 b0 b1 l0 l1 q0 q1 t0 t1 w0 w1 wall rss
	raw="$OUT/raw/$v-c$c-r$r.txt"
	read -r -a pp <<<"$(proxy_pids "$v")"
	s0=$(backend_syns)
	p0=$(cpu_ticks ${pp[@]+"${pp[@]}"})
	b0=$(cpu_ticks "$backend_pid")
	child_ticks >"$tmp/w0"
	w0=$(cat "$tmp/w0")
	l0=$(core_busy "$LOAD_CPU")
	q0=$(core_busy "$PROXY_CPU")
	t0=$(date +%s%N)
	wrk_run "$v" "$c" "$DURATION" "$raw"
	t1=$(date +%s%N)
	l1=$(core_busy "$LOAD_CPU")
	q1=$(core_busy "$PROXY_CPU")
	child_ticks >"$tmp/w1"
	w1=$(cat "$tmp/w1")
	b1=$(cpu_ticks "$backend_pid")
	p1=$(cpu_ticks ${pp[@]+"${pp[@]}"})
	s1=$(backend_syns)
	rss=$(rss_kib ${pp[@]+"${pp[@]}"})
	local parsed
	parsed=$(awk -f "$here/wrk.awk" "$raw") || die "cannot parse $raw"
	local req secs rps p50 p99 serr non2xx
	IFS=$'\t' read -r req secs rps p50 p99 serr non2xx <<<"$parsed"
	[ "$p0" = - ] || p0=$((p1 - p0))
	[ "$s0" = - ] || s0=$((s1 - s0))
	wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
		"$v" "$c" "$r" "$req" "$secs" "$rps" "$p50" "$p99" "$serr" "$non2xx" \
		"$p0" $((b1 - b0)) "$CLK_TCK" "$s0" "$rss" "$wall" $((l1 - l0)) $((q1 - q0)) $((w1 - w0)) >>"$tsv"
	local note=""
	[ "$serr" = 0 ] && [ "$non2xx" = 0 ] || note="  ERRORS: socket $serr, non-2xx $non2xx"
	log "$(printf '  %-15s -c %-4s run %s: %8.0f req/s%s' "$v" "$c" "$r" "$rps" "$note")"
}

read -r -a variants <<<"$VARIANTS"
read -r -a conns <<<"$CONNS"
maxc=0
for c in "${conns[@]}"; do [ "$c" -gt "$maxc" ] && maxc=$c; done
log "warm-up: $WARMUP per variant at -c $maxc"
for v in "${variants[@]}"; do
	wrk_run "$v" "$maxc" "$WARMUP" "$OUT/raw/$v-warmup.txt"
done
log "measuring: $RUNS run(s) of $DURATION per variant at -c ${conns[*]}, interleaved"
for r in $(seq "$RUNS"); do
	for c in "${conns[@]}"; do
		# Rotate the variant order every run so none always goes first.
		n=${#variants[@]}
		for i in $(seq 0 $((n - 1))); do
			measure "${variants[$(((i + r - 1) % n))]}" "$c" "$r"
			sleep 0.5
		done
	done
done

# --- summary ------------------------------------------------------------------
fasthttp=$(go version -m "$BIN/apim-gateway" 2>/dev/null | awk '$2 == "github.com/valyala/fasthttp" { print $3 }' || true)
{
	echo "## Loopback benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	echo "- Command: \`BIN=$BIN DURATION=$DURATION RUNS=$RUNS CONNS=\"$CONNS\" WARMUP=$WARMUP scripts/bench/loopback.sh\`"
	echo "- Machine: $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), $nproc_all CPUs, Linux $(uname -r); load on CPU $LOAD_CPU (echo-backend, \`wrk -t1\`), proxy on CPU $PROXY_CPU"
	echo "- Tools: $("$NGINX" -v 2>&1 | sed 's/^nginx version: //'), wrk $(wrk -v 2>&1 | awk 'NR == 1 { print $2 }'), gateway $("$BIN/apim-gateway" version 2>/dev/null || echo '?') with fasthttp ${fasthttp:-?}"
	echo "- Background load: $idle_note (should be near 0)"
	echo "- Request: GET /bench/resource with the Ocp-Apim-Subscription-Key header, 100-byte response body; nginx checks the key with a map + if (401 otherwise), like the gateway"
	echo "- nginx: worker_processes 1, access_log off, upstream keepalive 256, keepalive_requests $NGINX_KEEPALIVE_REQUESTS (client and upstream), proxy_ignore_client_abort $NGINX_IGNORE_CLIENT_ABORT"
	if [ "$count_syns" = 1 ]; then
		echo "- Backend connections: SYNs to the backend port (iptables counter, private network namespace), pooled over all runs"
	else
		echo "- Backend connections: not counted (no private network namespace)"
	fi
	echo
	awk -v order="$VARIANTS" -f "$here/summary.awk" "$tsv"
} >"$OUT/summary.md"
echo
cat "$OUT/summary.md"
log ""
log "raw wrk outputs: $OUT/raw/, per-run figures: $tsv, summary: $OUT/summary.md"
