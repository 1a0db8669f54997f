# Reads the output of `wrk --latency` and prints one tab-separated line:
#   requests  seconds  req_per_s  p50_us  p99_us  socket_errors  non_2xx_3xx
# Used by loopback.sh; POSIX awk (mawk is enough).

# dur converts a wrk duration ("812.00us", "1.23ms", "2.00s", "1.00m") to µs.
function dur(s,    n, u) {
	n = s + 0
	u = s
	sub(/^[0-9.]+/, "", u)
	if (u == "us") return n
	if (u == "ms") return n * 1000
	if (u == "s") return n * 1000000
	if (u == "m") return n * 60000000
	if (u == "h") return n * 3600000000
	return -1
}

BEGIN { req = -1; secs = 0; rps = 0; p50 = -1; p99 = -1; serr = 0; non2xx = 0 }
/^ +Latency Distribution/ { dist = 1; next }
dist && $1 == "50%" { p50 = dur($2) }
dist && $1 == "99%" { p99 = dur($2); dist = 0 }
/ requests in / {
	req = $1
	secs = $4
	sub(/,$/, "", secs)
	secs = dur(secs) / 1000000
}
/^ +Socket errors:/ {
	# Socket errors: connect 0, read 0, write 0, timeout 0
	for (i = 3; i <= NF; i += 2) { v = $(i + 1); sub(/,$/, "", v); serr += v }
}
/^ +Non-2xx or 3xx responses:/ { non2xx = $NF }
/^Requests\/sec:/ { rps = $2 }
END {
	if (req < 0) { print "wrk.awk: no request count in wrk output" > "/dev/stderr"; exit 1 }
	printf "%d\t%.3f\t%.2f\t%.1f\t%.1f\t%d\t%d\n", req, secs, rps, p50, p99, serr, non2xx
}
