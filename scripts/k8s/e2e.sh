#!/usr/bin/env bash
# `make e2e`: builds the binaries (cached) and the product image, brings the
# single-node cluster up inside its network namespace, runs test/e2e against
# it from inside that namespace, and tears the cluster down, also after a
# failure. Must run as root.
#
# E2E_RUN (go test -run pattern), E2E_TIMEOUT (default 45m) and
# E2E_KEEP=1 (leave the cluster up for a look; `cluster.sh down` later) help
# when working on one test.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$repo"
export E2E_RUN_DIR="${E2E_RUN_DIR:-/tmp/apim-k8s-e2e}"
work="${E2E_WORK_DIR:-/tmp/apim-k8s-e2e-work}"
GO="${GO:-go}"
start_all=$SECONDS

t0=$SECONDS
KUBE_BIN_DIR="$("$here/build-binaries.sh" all | tail -n1)"
export KUBE_BIN_DIR
echo "e2e: binaries ready in $((SECONDS - t0))s ($KUBE_BIN_DIR)" >&2

# The product image: one image with both binaries (and the helm test probe
# when it exists), tagged twice so an upgrade to "the next version" rolls
# the pods without a rebuild.
t0=$SECONDS
rm -rf "$work"
mkdir -p "$work/bin" "$work/images"
image_repo="example.local/apim-arc-gateway"
files=()
for cmd in gateway/cmd/apim-gateway extension/cmd/apim-agent scripts/image/apim-probe; do
	[ -d "$cmd" ] || continue
	name="$(basename "$cmd")"
	CGO_ENABLED=0 "$GO" build -trimpath -ldflags "-s -w -X main.version=e2e" -o "$work/bin/$name" "./$cmd"
	files+=("$work/bin/$name=/usr/local/bin/$name")
done
# 0.1.0 and 0.1.1 are the versions of the Arc emulator's test train (below):
# the chart's image tag defaults to its appVersion.
for tag in e2e e2e-next 0.1.0 0.1.1; do
	"$GO" run ./scripts/k8s/mkimage -tag "$image_repo:$tag" -o "$work/images/gateway-$tag.tar" \
		-user 65532:65532 -entrypoint /usr/local/bin/apim-gateway "${files[@]}"
done
CGO_ENABLED=0 "$GO" build -trimpath -ldflags "-s -w" -o "$work/bin/pause" ./scripts/k8s/pause
"$GO" run ./scripts/k8s/mkimage -tag registry.k8s.io/pause:3.10 -o "$work/images/pause.tar" \
	-entrypoint /pause "$work/bin/pause=/pause"
echo "e2e: images built in $((SECONDS - t0))s" >&2

# The Arc emulator, when it exists, with a copy of the manifest whose
# preview train also lists 0.1.1 (the current chart packaged again as the
# next version), so an upgrade between pinned versions can be tested.
if [ -d scripts/arc-emulator ] && [ -d scripts/release-train ] && [ -f extension-manifest.yaml ]; then
	arc="$work/arc"
	mkdir -p "$arc/charts"
	cp extension-manifest.yaml "$arc/"
	ln -sfn "$repo/charts/apim-gateway" "$arc/charts/apim-gateway"
	ln -sfn "$repo/schemas" "$arc/schemas"
	"$GO" build -o "$work/bin/arc-emulator" ./scripts/arc-emulator
	"$GO" build -o "$work/bin/release-train" ./scripts/release-train
	"$work/bin/release-train" add --manifest "$arc/extension-manifest.yaml" --train preview \
		--version 0.1.1 --chart-version 0.1.1 --app-version 0.1.1 --min-k8s 1.28 >&2
	"$work/bin/release-train" package --manifest "$arc/extension-manifest.yaml" --out "$arc/dist" >&2
	"$work/bin/release-train" package --manifest "$arc/extension-manifest.yaml" --version 0.1.1 --app-version 0.1.1 --out "$arc/dist" >&2
	export E2E_ARC_EMULATOR="$work/bin/arc-emulator" E2E_ARC_CHARTS="$arc/dist" E2E_ARC_MANIFEST="$arc/extension-manifest.yaml"
fi

# Compile the tests before the cluster exists: nothing waits on the compiler.
"$GO" test -c -o "$work/e2e.test" ./test/e2e

cleanup() {
	rc=$?
	if [ "${E2E_KEEP:-0}" = 1 ]; then
		echo "e2e: E2E_KEEP=1, cluster left up (scripts/k8s/cluster.sh down removes it)" >&2
	else
		"$here/cluster.sh" down || true
	fi
	echo "e2e: total $((SECONDS - start_all))s" >&2
	exit $rc
}
trap cleanup EXIT

t0=$SECONDS
"$here/cluster.sh" up "$work"/images/*.tar
echo "e2e: cluster up in $((SECONDS - t0))s" >&2
eval "$("$here/cluster.sh" env)"
export E2E_CHART="$repo/charts/apim-gateway"
export E2E_IMAGE_REPOSITORY="$image_repo"
export E2E_HELM="$KUBE_BIN_DIR/helm"
export E2E_WORK_DIR="$work"

# The tests run inside the namespace: every address they reach is there.
t0=$SECONDS
set +e
(cd test/e2e && nsenter --net="/run/netns/$E2E_NETNS" -- "$work/e2e.test" \
	-test.v -test.count=1 -test.timeout="${E2E_TIMEOUT:-45m}" ${E2E_RUN:+-test.run="$E2E_RUN"}) 2>&1 |
	tee "$work/e2e.log"
rc=${PIPESTATUS[0]}
set -e
echo "e2e: tests ran in $((SECONDS - t0))s" >&2
# A closing line CI reads, like go test's.
passed=$(grep -c '^--- PASS' "$work/e2e.log" || true)
failed=$(grep -c '^--- FAIL' "$work/e2e.log" || true)
skipped=$(grep -c '^--- SKIP' "$work/e2e.log" || true)
echo "e2e: $passed passed, $failed failed, $skipped skipped"
if [ "$rc" = 0 ] && [ "$passed" = 0 ]; then
	echo "e2e: no test ran" >&2
	exit 1
fi
exit "$rc"
