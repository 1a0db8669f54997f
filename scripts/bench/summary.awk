# Turns runs.tsv (one line per wrk run, written by loopback.sh) into the
# markdown summary: medians and min–max per variant and connection count,
# then the gateway/nginx and gateway/direct ratios. POSIX awk (mawk is
# enough). Variables: order = variants in display order (space-separated).
#
# runs.tsv columns (a "-" means not measured for that variant):
#   variant conns run requests secs rps p50_us p99_us sock_err non2xx
#   proxy_ticks backend_ticks clk_tck backend_syns rss_kib wall_s
#   load_cpu_busy_ticks proxy_cpu_busy_ticks wrk_ticks
# Ticks are USER_HZ (clk_tck per second); busy ticks are the whole core's
# user+nice+system+irq+softirq+steal from /proc/stat.

function isnum(s) { return s != "-" && s != "" }

# add appends v to the list named k.
function add(k, v) { vals[k] = (k in vals) ? vals[k] " " v : v }

# sorted fills s[1..n] with the list k sorted ascending and returns n.
function sorted(k, s,    n, i, j, t) {
	if (!(k in vals)) return 0
	n = split(vals[k], s, " ")
	for (i = 2; i <= n; i++) {
		t = s[i] + 0
		for (j = i - 1; j >= 1 && s[j] + 0 > t; j--) s[j + 1] = s[j]
		s[j + 1] = t
	}
	return n
}

function median(k,    s, n) {
	n = sorted(k, s)
	if (n == 0) return "-"
	return (n % 2) ? s[(n + 1) / 2] : (s[n / 2] + s[n / 2 + 1]) / 2
}

# spread prints "median [min–max]" with format f, or "—".
function spread(k, f,    s, n, m) {
	n = sorted(k, s)
	if (n == 0) return "—"
	m = median(k)
	if (n == 1) return sprintf(f, m)
	return sprintf(f " [" f "–" f "]", m, s[1], s[n])
}

function one(k, f,    m) {
	m = median(k)
	return m == "-" ? "—" : sprintf(f, m)
}

function ratio(a, b) {
	if (a == "-" || b == "-" || b + 0 == 0) return "—"
	return sprintf("%.2f×", a / b)
}

BEGIN { FS = "\t" }
NR == 1 { next } # header
{
	v = $1; c = $2
	key = v SUBSEP c
	if (!(c in seenc)) { seenc[c] = 1; nc++; cl[nc] = c }
	seenv[v] = 1
	runs[key]++
	req = $4; secs = $5; tck = $13
	add(key SUBSEP "rps", $6)
	add(key SUBSEP "p50", $7 / 1000)
	add(key SUBSEP "p99", $8 / 1000)
	errs[key] += $9 + $10
	totreq[key] += req
	if (isnum($11) && req > 0) add(key SUBSEP "cpu", $11 * 1000000 / tck / req)
	if (isnum($12) && req > 0) add(key SUBSEP "becpu", $12 * 1000000 / tck / req)
	if (isnum($14)) { syns[key] += $14; synreq[key] += req }
	if (isnum($15)) add(key SUBSEP "rss", $15 / 1024)
	if ($16 > 0) {
		add(key SUBSEP "load", 100 * $17 / tck / $16)
		add(key SUBSEP "pbusy", 100 * $18 / tck / $16)
	}
	# Busy time on the proxy core not spent by the proxy: other processes
	# (for "direct", everything on that core).
	if ($16 > 0) add(key SUBSEP "other", 100 * ($18 - (isnum($11) ? $11 : 0)) / tck / $16)
	# The same on the load core: what neither wrk nor the backend used.
	if ($16 > 0 && isnum($19)) add(key SUBSEP "lother", 100 * ($17 - $12 - $19) / tck / $16)
}
END {
	nv = split(order, vl, " ")
	# Variants in the data but not in order go last.
	for (v in seenv) {
		found = 0
		for (i = 1; i <= nv; i++) if (vl[i] == v) found = 1
		if (!found) vl[++nv] = v
	}
	# Connection counts ascending.
	for (i = 2; i <= nc; i++) {
		t = cl[i]
		for (j = i - 1; j >= 1 && cl[j] + 0 > t + 0; j--) cl[j + 1] = cl[j]
		cl[j + 1] = t
	}

	print "| variant | conns | runs | req/s median [min–max] | p50 ms (median) | p99 ms (median) | proxy CPU µs/req median [min–max] | backend conns per 1k req | RSS MiB | errors |"
	print "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
	for (ci = 1; ci <= nc; ci++) {
		c = cl[ci]
		for (i = 1; i <= nv; i++) {
			v = vl[i]; key = v SUBSEP c
			if (!(key in runs)) continue
			bc = (key in synreq && synreq[key] > 0) ? sprintf("%.3f", 1000 * syns[key] / synreq[key]) : "n/a"
			printf "| %s | %s | %d | %s | %s | %s | %s | %s | %s | %d |\n", v, c, runs[key],
				spread(key SUBSEP "rps", "%.0f"), one(key SUBSEP "p50", "%.2f"), one(key SUBSEP "p99", "%.2f"),
				spread(key SUBSEP "cpu", "%.1f"), bc, one(key SUBSEP "rss", "%.1f"), errs[key]
		}
	}

	print ""
	print "Ratios of medians (throughput: req/s; CPU: proxy CPU µs per request, lower is better; \"direct\" has no proxy, so the gateway's CPU/request is set against the echo backend's, a fasthttp server that only answers):"
	print ""
	for (ci = 1; ci <= nc; ci++) {
		c = cl[ci]
		for (i = 1; i <= nv; i++) {
			v = vl[i]
			if (v !~ /^gateway/) continue
			key = v SUBSEP c; ng = "nginx" SUBSEP c; dk = "direct" SUBSEP c
			if (!(key in runs)) continue
			printf "- -c %s %s: throughput %s nginx, %s direct; CPU/request %s nginx, %s the backend's own CPU/request in direct\n", c, v,
				ratio(median(key SUBSEP "rps"), median(ng SUBSEP "rps")),
				ratio(median(key SUBSEP "rps"), median(dk SUBSEP "rps")),
				ratio(median(key SUBSEP "cpu"), median(ng SUBSEP "cpu")),
				ratio(median(key SUBSEP "cpu"), median(dk SUBSEP "becpu"))
		}
	}

	print ""
	print "Context (medians over runs): how busy each core was (100 = one core); how much of it went to processes other than the ones under test (wrk and the backend on the load core, the proxy on the proxy core: noise, should be near 0); the backend's CPU per request."
	print ""
	print "| variant | conns | load core busy % | load core used by others % | proxy core busy % | proxy core used by others % | backend CPU µs/req |"
	print "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
	for (ci = 1; ci <= nc; ci++) {
		c = cl[ci]
		for (i = 1; i <= nv; i++) {
			v = vl[i]; key = v SUBSEP c
			if (!(key in runs)) continue
			printf "| %s | %s | %s | %s | %s | %s | %s |\n", v, c, one(key SUBSEP "load", "%.0f"), one(key SUBSEP "lother", "%.0f"),
				one(key SUBSEP "pbusy", "%.0f"), one(key SUBSEP "other", "%.0f"), one(key SUBSEP "becpu", "%.1f")
			o = median(key SUBSEP "lother")
			if (o != "-" && o > worst) worst = o
			if (v == "direct") continue # its whole proxy core is "others"
			o = median(key SUBSEP "other")
			if (o != "-" && o > worst) worst = o
		}
	}
	if (worst > 5) {
		print ""
		printf "**Noisy:** up to %.0f %% of a core went to other processes during the runs (medians); CPU per request and throughput are then not comparable with a quiet run.\n", worst
	}
}
