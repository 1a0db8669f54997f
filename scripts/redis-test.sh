#!/usr/bin/env bash
# Starts a throwaway redis-server for the rate-limit tests: loopback only,
# a free port, no persistence, in a temporary folder. Prints
#   REDIS_URL=redis://127.0.0.1:PORT
#   REDIS_PID=PID
# Stop it with: kill "$REDIS_PID" (the folder is left in /tmp).
# The Go tests start their own redis-server when the binary is on PATH, or
# use REDIS_URL when it is set:
#   eval "$(scripts/redis-test.sh)" && REDIS_URL=$REDIS_URL go test ./gateway/policy/...
set -euo pipefail

if ! command -v redis-server >/dev/null 2>&1; then
	echo "redis-server is not installed (apt-get install redis-server)" >&2
	exit 1
fi
dir=$(mktemp -d /tmp/redis-test.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()' 2>/dev/null || echo $((20000 + RANDOM % 20000)))
redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no --dir "$dir" \
	--daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" >/dev/null
for _ in $(seq 50); do
	if [ -s "$dir/redis.pid" ] && { ! command -v redis-cli >/dev/null || redis-cli -p "$port" ping >/dev/null 2>&1; }; then
		echo "REDIS_URL=redis://127.0.0.1:$port"
		echo "REDIS_PID=$(cat "$dir/redis.pid")"
		exit 0
	fi
	sleep 0.1
done
echo "redis-server did not start; see $dir/redis.log" >&2
exit 1
