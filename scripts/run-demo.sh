#!/usr/bin/env bash
# Starts the demo echo backend and the gateway on examples/demo, prints how
# to call it, and stops both on Ctrl-C. Used by `make run`.
set -euo pipefail
BIN=${BIN:-bin}
HTTP_ADDR=${HTTP_ADDR:-127.0.0.1:8080}
TELEMETRY_ADDR=${TELEMETRY_ADDR:-127.0.0.1:9090}
ECHO_ADDR=${ECHO_ADDR:-127.0.0.1:9080}
root=$(cd "$(dirname "$0")/.." && pwd)
demo="$root/examples/demo"

if [ "$ECHO_ADDR" != "127.0.0.1:9080" ]; then
	# The demo snapshot names the backend; point it elsewhere in a copy.
	tmp=$(mktemp -d)
	sed "s#http://127.0.0.1:9080#http://$ECHO_ADDR#g" "$demo/snapshot.json" >"$tmp/snapshot.json"
	demo=$tmp
fi

"$BIN/echo-backend" --addr "$ECHO_ADDR" &
echo_pid=$!
trap 'kill $echo_pid 2>/dev/null || true' EXIT

key=$(sed -n 's/.*"primaryKey": *"\([^"]*\)".*/\1/p' "$demo/snapshot.json" | head -1)
cat <<MSG

  Gateway:   http://$HTTP_ADDR   (metrics: http://$TELEMETRY_ADDR/metrics)
  Demo key:  $key

  Try:
    curl -i http://$HTTP_ADDR/echo/resource                                   # 401, no key
    curl -i -H 'Ocp-Apim-Subscription-Key: $key' http://$HTTP_ADDR/echo/resource
    curl -i "http://$HTTP_ADDR/echo/users/42/orders/7?subscription-key=$key"
    curl -i http://$HTTP_ADDR/weather/forecast/paris                          # Original version, open
    curl -i -H 'Ocp-Apim-Subscription-Key: $key' http://$HTTP_ADDR/weather/v2/forecast/paris
    curl -i -H 'Ocp-Apim-Subscription-Key: $key' http://$HTTP_ADDR/echo/status   # mock-response policy
    curl -i http://$HTTP_ADDR/nowhere                                         # 404

MSG
"$BIN/apim-gateway" --config "$demo" --http-addr "$HTTP_ADDR" --https-addr "" \
	--telemetry-addr "$TELEMETRY_ADDR" --shutdown-delay 0 --log-level info
