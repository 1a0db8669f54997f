#!/usr/bin/env bash
# Builds the Kubernetes, etcd and helm binaries the e2e tests and the
# kubetest package run, from the Go module proxy, into a cache folder keyed by
# version. Binaries already there are kept, so a second run takes seconds.
#
# usage: build-binaries.sh [all|apiserver|cluster|helm ...]
#   apiserver  etcd, etcdctl, kube-apiserver, kube-controller-manager
#              (enough for internal/kubetest)
#   cluster    the above plus kube-scheduler, kubelet, kube-proxy, kubectl
#   helm       helm
#   dns        coredns (cluster DNS for the e2e cluster: service names resolve)
#   all        everything (the default)
# Prints the binary folder on the last line of stdout.
#
# K8S_VERSION, ETCD_VERSION, HELM_VERSION pin the versions; K8S_BIN_DIR
# overrides the folder.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.35.4}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
HELM_VERSION="${HELM_VERSION:-v3.22.0}"
COREDNS_VERSION="${COREDNS_VERSION:-v1.15.0}"
GO="${GO:-go}"
cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/apim-arc-gateway/k8s"
bin_dir="${K8S_BIN_DIR:-$cache_root/$K8S_VERSION/bin}"
work_dir="$cache_root/$K8S_VERSION/work"

want_k8s=()
want_etcd=false
want_helm=false
want_dns=false
[ $# -eq 0 ] && set -- all
for level in "$@"; do
	case "$level" in
	apiserver)
		want_etcd=true
		want_k8s+=(kube-apiserver kube-controller-manager)
		;;
	cluster)
		want_etcd=true
		want_k8s+=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)
		;;
	helm) want_helm=true ;;
	dns) want_dns=true ;;
	all)
		want_etcd=true
		want_helm=true
		want_dns=true
		want_k8s+=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)
		;;
	*)
		echo "build-binaries.sh: unknown level $level (want all, apiserver, cluster, helm or dns)" >&2
		exit 2
		;;
	esac
done

mkdir -p "$bin_dir" "$work_dir"
export CGO_ENABLED=0 GOFLAGS=-mod=mod GOWORK=off
# The wrapper modules below are throwaway: keep the toolchain from switching.
export GOTOOLCHAIN=local

missing=()
for b in "${want_k8s[@]}"; do
	[ -x "$bin_dir/$b" ] || missing+=("$b")
done
# Deduplicate while keeping order.
if [ ${#missing[@]} -gt 0 ]; then
	mapfile -t missing < <(printf '%s\n' "${missing[@]}" | awk '!seen[$0]++')
fi

if [ ${#missing[@]} -gt 0 ]; then
	# k8s.io/kubernetes requires its staging modules at v0.0.0 with replace
	# directives into ./staging, which a dependent module cannot follow. The
	# wrapper replaces each with the published v0.<minor>.<patch> instead; the
	# list comes from k8s.io/kubernetes's own go.mod so it never goes stale.
	mod="$work_dir/kubernetes"
	mkdir -p "$mod"
	if [ ! -f "$mod/go.sum" ] || ! grep -q "k8s.io/kubernetes $K8S_VERSION " "$mod/go.sum"; then
		echo "build-binaries.sh: preparing the k8s.io/kubernetes $K8S_VERSION wrapper module" >&2
		upstream_mod="$("$GO" mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')"
		staging_version="v0.${K8S_VERSION#v1.}"
		{
			echo "module apimarcgateway.local/k8sbuild"
			echo
			echo "go $("$GO" env GOVERSION | sed 's/^go\([0-9]*\.[0-9]*\).*/\1/')"
			echo
			echo "require k8s.io/kubernetes $K8S_VERSION"
			echo
			echo "replace ("
			awk -v v="$staging_version" '$2 == "=>" && $3 ~ /^\.\/staging\// { printf "\t%s => %s %s\n", $1, $1, v }' "$upstream_mod"
			echo ")"
		} >"$mod/go.mod"
		{
			echo "//go:build tools"
			echo
			echo "// Package k8sbuild only pins the commands it builds."
			echo "package k8sbuild"
			echo
			echo "import ("
			for b in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl; do
				echo "	_ \"k8s.io/kubernetes/cmd/$b\""
			done
			echo ")"
		} >"$mod/tools.go"
		rm -f "$mod/go.sum"
		(cd "$mod" && "$GO" mod tidy)
	fi
	minor="${K8S_VERSION#v1.}"
	minor="${minor%%.*}"
	ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor"
	for b in "${missing[@]}"; do
		echo "build-binaries.sh: building $b $K8S_VERSION" >&2
		(cd "$mod" && "$GO" build -trimpath -ldflags "$ldflags" -o "$bin_dir/$b.tmp" "k8s.io/kubernetes/cmd/$b")
		mv "$bin_dir/$b.tmp" "$bin_dir/$b"
	done
fi

if $want_etcd && { [ ! -x "$bin_dir/etcd" ] || [ ! -x "$bin_dir/etcdctl" ]; }; then
	# go install refuses etcd's replace directives; a wrapper that requires
	# server and etcdctl at one version builds both (etcdctl pinned, or tidy
	# pulls a newer minor).
	mod="$work_dir/etcd-$ETCD_VERSION"
	mkdir -p "$mod"
	if [ ! -f "$mod/go.sum" ]; then
		echo "build-binaries.sh: preparing the etcd $ETCD_VERSION wrapper module" >&2
		cat >"$mod/go.mod" <<MOD
module apimarcgateway.local/etcdbuild

go $("$GO" env GOVERSION | sed 's/^go\([0-9]*\.[0-9]*\).*/\1/')

require (
	go.etcd.io/etcd/server/v3 $ETCD_VERSION
	go.etcd.io/etcd/etcdctl/v3 $ETCD_VERSION
)
MOD
		cat >"$mod/tools.go" <<'SRC'
//go:build tools

// Package etcdbuild only pins the commands it builds.
package etcdbuild

import (
	_ "go.etcd.io/etcd/etcdctl/v3"
	_ "go.etcd.io/etcd/server/v3"
)
SRC
		(cd "$mod" && "$GO" mod tidy)
		(cd "$mod" && "$GO" get "go.etcd.io/etcd/etcdctl/v3@$ETCD_VERSION" "go.etcd.io/etcd/server/v3@$ETCD_VERSION")
	fi
	echo "build-binaries.sh: building etcd $ETCD_VERSION" >&2
	(cd "$mod" && "$GO" build -trimpath -ldflags "-s -w" -o "$bin_dir/etcd.tmp" go.etcd.io/etcd/server/v3 &&
		"$GO" build -trimpath -ldflags "-s -w" -o "$bin_dir/etcdctl.tmp" go.etcd.io/etcd/etcdctl/v3)
	mv "$bin_dir/etcd.tmp" "$bin_dir/etcd"
	mv "$bin_dir/etcdctl.tmp" "$bin_dir/etcdctl"
fi

if $want_helm && [ ! -x "$bin_dir/helm" ]; then
	echo "build-binaries.sh: building helm $HELM_VERSION" >&2
	GOFLAGS= GOBIN="$bin_dir" "$GO" install -trimpath \
		-ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
		"helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
fi

if $want_dns && [ ! -x "$bin_dir/coredns" ]; then
	echo "build-binaries.sh: building coredns $COREDNS_VERSION" >&2
	GOFLAGS= GOBIN="$bin_dir" "$GO" install -trimpath -ldflags "-s -w" "github.com/coredns/coredns@$COREDNS_VERSION"
fi

echo "$bin_dir"
