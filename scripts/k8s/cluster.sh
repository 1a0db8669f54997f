#!/usr/bin/env bash
# A single-node Kubernetes cluster for the e2e tests, confined to a network
# namespace this script creates: every node, pod and service address, route,
# iptables rule and listening socket exists only inside it. See
# /work/shared/reference/k8s-e2e.md for why each step is the way it is.
#
# usage: cluster.sh up [IMAGE.tar...]   start it, importing the images
#        cluster.sh down                stop it and remove what up created
#        cluster.sh env                 print the variables the tests need
#
# Environment: KUBE_BIN_DIR (default: what build-binaries.sh cluster
# prints), E2E_RUN_DIR (default /tmp/apim-k8s-e2e), E2E_NETNS (k8s-e2e).
# `up` tears everything down again when it fails.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
RUN="${E2E_RUN_DIR:-/tmp/apim-k8s-e2e}"
NETNS="${E2E_NETNS:-k8s-e2e}"
NODE="e2e-node"
NODE_IP="10.250.0.1"
NODE_BRIDGE="k8snode0"
SERVICE_CIDR="10.96.0.0/24"
POD_CIDR="10.244.0.0/16"
NODE_POD_CIDR="10.244.0.0/24"
# The sysctls the kubelet sets globally (not per network namespace).
SYSCTLS=(kernel.panic kernel.panic_on_oops vm.overcommit_memory vm.panic_on_oom kernel.keys.root_maxkeys kernel.keys.root_maxbytes)
# Host paths some daemon may create although it is configured elsewhere;
# removed on teardown only when up found them missing.
HOST_PATHS=(/run/netns /var/lib/cni /run/containerd /var/log/containers /var/lib/kubelet /etc/cni /opt/cni)

log() { echo "cluster.sh: $*" >&2; }
die() {
	log "$*"
	exit 1
}

bin_dir() {
	if [ -n "${KUBE_BIN_DIR:-}" ]; then
		echo "$KUBE_BIN_DIR"
	else
		"$here/build-binaries.sh" cluster | tail -n1
	fi
}

in_ns() { ip netns exec "$NETNS" "$@"; }

# start NAME CMD...: runs a daemon inside the namespace with nsenter (not
# `ip netns exec`, which gives it a private mount namespace with its own /sys
# and breaks the kubelet's cgroup discovery), logging to $RUN/logs/NAME.log.
start() {
	local name="$1"
	shift
	nsenter --net="/run/netns/$NETNS" -- "$@" >"$RUN/logs/$name.log" 2>&1 &
	echo $! >"$RUN/pids/$name"
	sleep 0.2
	local want have
	want="$(readlink "/proc/$$/ns/net" 2>/dev/null || true)"
	have="$(readlink "/proc/$!/ns/net" 2>/dev/null || true)"
	[ -n "$have" ] || die "$name exited at once; see $RUN/logs/$name.log: $(tail -5 "$RUN/logs/$name.log")"
	# A daemon in the host namespace would break the confinement rule.
	[ "$have" != "$want" ] || die "$name runs in the host network namespace"
}

# wait_for WHAT SECONDS CMD...: retries CMD until it succeeds.
wait_for() {
	local what="$1" secs="$2"
	shift 2
	local end=$((SECONDS + secs))
	until "$@" >/dev/null 2>&1; do
		if [ $SECONDS -ge $end ]; then
			log "timed out after ${secs}s waiting for $what"
			return 1
		fi
		sleep 0.25
	done
}

pki() {
	local d="$RUN/pki"
	mkdir -p "$d"
	cd "$d"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-keyout ca.key -out ca.crt -subj "/CN=e2e-ca" 2>/dev/null
	# issue NAME SUBJECT EXTENSIONS
	issue() {
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
			-keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
		printf '%s\n' "$3" >"$1.ext"
		openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
			-extfile "$1.ext" -out "$1.crt" 2>/dev/null
	}
	issue apiserver "/CN=kube-apiserver" \
		"subjectAltName=IP:127.0.0.1,IP:$NODE_IP,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
extendedKeyUsage=serverAuth"
	issue admin "/O=system:masters/CN=e2e-admin" "extendedKeyUsage=clientAuth"
	issue apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "extendedKeyUsage=clientAuth"
	issue node "/O=system:nodes/CN=system:node:$NODE" "extendedKeyUsage=clientAuth"
	issue kubelet "/CN=$NODE" "subjectAltName=IP:$NODE_IP,IP:127.0.0.1,DNS:$NODE
extendedKeyUsage=serverAuth"
	openssl genrsa -out sa.key 2048 2>/dev/null
	openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
	chmod 600 ./*.key
	cd - >/dev/null
}

kubeconfig() { # NAME CERT
	local b64
	b64() { base64 -w0 <"$1"; }
	cat >"$RUN/$1.kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster:
    server: https://127.0.0.1:6443
    certificate-authority-data: $(b64 "$RUN/pki/ca.crt")
users:
- name: $1
  user:
    client-certificate-data: $(b64 "$RUN/pki/$2.crt")
    client-key-data: $(b64 "$RUN/pki/$2.key")
contexts:
- name: e2e
  context: {cluster: e2e, user: $1, namespace: default}
current-context: e2e
KC
	chmod 600 "$RUN/$1.kubeconfig"
}

configs() {
	mkdir -p "$RUN/containerd" "$RUN/cni/net.d" "$RUN/cni/networks" "$RUN/kubelet" "$RUN/pod-logs"
	cat >"$RUN/containerd/config.toml" <<TOML
version = 2
root = "$RUN/containerd/root"
state = "$RUN/containerd/state"
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "$RUN/containerd/containerd.sock"
[ttrpc]
  address = "$RUN/containerd/containerd.sock.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.10"
  # The machines drop CAP_SYS_RESOURCE: without this every sandbox fails
  # with runc's "can't get final child's PID from pipe: EOF".
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$RUN/cni/net.d"
TOML
	cat >"$RUN/cni/net.d/10-e2e.conflist" <<JSON
{
  "cniVersion": "0.4.0",
  "name": "e2e",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$RUN/cni/networks",
        "ranges": [[{"subnet": "$NODE_POD_CIDR"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
JSON
	cat >"$RUN/kubelet/config.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# v1.35 refuses cgroup v1 hosts unless told otherwise; these machines have a
# hybrid layout.
failCgroupV1: false
cgroupDriver: cgroupfs
failSwapOn: false
containerRuntimeEndpoint: unix://$RUN/containerd/containerd.sock
address: $NODE_IP
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
tlsCertFile: $RUN/pki/kubelet.crt
tlsPrivateKeyFile: $RUN/pki/kubelet.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $RUN/pki/ca.crt}
authorization: {mode: Webhook}
clusterDomain: cluster.local
syncFrequency: 10s
# Images are imported, never pulled: garbage collection must keep them.
imageGCHighThresholdPercent: 100
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%"}
podLogsDir: $RUN/pod-logs
serializeImagePulls: false
YAML
	if [ -n "${DNS_IP:-}" ]; then
		printf 'clusterDNS: ["%s"]\n' "$DNS_IP" >>"$RUN/kubelet/config.yaml"
	fi
	cat >"$RUN/Corefile" <<COREFILE
.:53 {
    bind $NODE_IP
    errors
    ready 127.0.0.1:8181
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig $RUN/admin.kubeconfig e2e
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
}
COREFILE
	cat >"$RUN/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
hostnameOverride: $NODE
clusterCIDR: $POD_CIDR
clientConnection: {kubeconfig: $RUN/admin.kubeconfig}
nodePortAddresses: ["$NODE_IP/32", "127.0.0.0/8"]
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
# Inside a network namespace the conntrack table size is not writable.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
YAML
}

save_host_state() {
	: >"$RUN/state/sysctl"
	for s in "${SYSCTLS[@]}"; do
		v="$(sysctl -n "$s" 2>/dev/null)" && echo "$s=$v" >>"$RUN/state/sysctl"
	done
	: >"$RUN/state/created"
	for p in "${HOST_PATHS[@]}"; do
		[ -e "$p" ] || echo "$p" >>"$RUN/state/created"
	done
	ls /run/netns 2>/dev/null >"$RUN/state/netns-before" || true
	# containerd 1.6 puts shim sockets and runc state under /run/containerd
	# whatever its configured state folder.
	ls /run/containerd/s 2>/dev/null >"$RUN/state/shims-before" || true
	[ -e /run/containerd/runc/k8s.io ] || echo /run/containerd/runc/k8s.io >>"$RUN/state/created"
}

up() {
	[ "$(id -u)" = 0 ] || die "must run as root (network namespaces, containerd)"
	for tool in ip nsenter iptables containerd runc ctr openssl; do
		command -v "$tool" >/dev/null || die "$tool not found (apt-get install containerd runc containernetworking-plugins iptables iproute2 openssl)"
	done
	[ -x /usr/lib/cni/bridge ] || die "/usr/lib/cni/bridge not found (apt-get install containernetworking-plugins)"
	if ip netns list 2>/dev/null | grep -qw "$NETNS" || [ -e "$RUN/pids" ]; then
		log "a previous cluster is still there; tearing it down first"
		down
	fi
	local bins
	bins="$(bin_dir)"
	for b in etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl; do
		[ -x "$bins/$b" ] || die "$bins/$b missing; run scripts/k8s/build-binaries.sh cluster"
	done
	rm -rf "$RUN"
	mkdir -p "$RUN/logs" "$RUN/pids" "$RUN/state"
	echo "$bins" >"$RUN/state/bin-dir"
	save_host_state
	up_done=0
	trap 'if [ "$up_done" != 1 ]; then log "up failed"; dump_logs; down; fi' EXIT

	log "network namespace $NETNS, node IP $NODE_IP"
	ip netns add "$NETNS"
	in_ns ip link set lo up
	in_ns ip link add "$NODE_BRIDGE" type bridge
	in_ns ip addr add "$NODE_IP/24" dev "$NODE_BRIDGE"
	in_ns ip link set "$NODE_BRIDGE" up
	# Connections this node starts to a ClusterIP are routed before
	# kube-proxy's DNAT rewrites them: they need a route.
	in_ns ip route add "$SERVICE_CIDR" dev "$NODE_BRIDGE"
	in_ns sysctl -qw net.ipv4.ip_forward=1
	# Pod -> ClusterIP -> pod on the same bridge needs bridged traffic to
	# pass iptables; the module may be built in, loaded, or loadable.
	[ -e /proc/sys/net/bridge ] || modprobe br_netfilter 2>/dev/null || true
	in_ns sysctl -qw net.bridge.bridge-nf-call-iptables=1 ||
		log "net.bridge.bridge-nf-call-iptables not settable (br_netfilter not loaded?); hairpin traffic may fail"

	# Cluster DNS, when coredns was built: a process in the namespace on the
	# node IP, which pods reach through their gateway. Needed for service
	# names (helm test pods use them).
	DNS_IP=""
	[ -x "$bins/coredns" ] && DNS_IP="$NODE_IP"
	pki
	kubeconfig admin admin
	kubeconfig node node
	configs

	start etcd "$bins/etcd" --name=e2e --data-dir="$RUN/etcd" \
		--listen-client-urls=http://127.0.0.1:2379 --advertise-client-urls=http://127.0.0.1:2379 \
		--listen-peer-urls=http://127.0.0.1:2380 --initial-advertise-peer-urls=http://127.0.0.1:2380 \
		--initial-cluster=e2e=http://127.0.0.1:2380 --unsafe-no-fsync=true --log-level=warn
	start kube-apiserver "$bins/kube-apiserver" \
		--etcd-servers=http://127.0.0.1:2379 \
		--bind-address=0.0.0.0 --advertise-address="$NODE_IP" --secure-port=6443 \
		--tls-cert-file="$RUN/pki/apiserver.crt" --tls-private-key-file="$RUN/pki/apiserver.key" \
		--client-ca-file="$RUN/pki/ca.crt" \
		--kubelet-client-certificate="$RUN/pki/apiserver-kubelet-client.crt" \
		--kubelet-client-key="$RUN/pki/apiserver-kubelet-client.key" \
		--kubelet-preferred-address-types=InternalIP \
		--service-account-issuer=https://kubernetes.default.svc.cluster.local \
		--service-account-key-file="$RUN/pki/sa.pub" \
		--service-account-signing-key-file="$RUN/pki/sa.key" \
		--service-cluster-ip-range="$SERVICE_CIDR" \
		--service-node-port-range=30000-32767 \
		--authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
		--allow-privileged=true --cert-dir="$RUN/apiserver-certs"
	wait_for "kube-apiserver /readyz" 90 in_ns "$bins/kubectl" --kubeconfig "$RUN/admin.kubeconfig" get --raw /readyz
	start kube-controller-manager "$bins/kube-controller-manager" \
		--kubeconfig="$RUN/admin.kubeconfig" --authentication-kubeconfig="$RUN/admin.kubeconfig" \
		--authorization-kubeconfig="$RUN/admin.kubeconfig" \
		--controllers='*' --leader-elect=false --bind-address=127.0.0.1 --secure-port=10257 \
		--allocate-node-cidrs=true --cluster-cidr="$POD_CIDR" --node-cidr-mask-size=24 \
		--service-cluster-ip-range="$SERVICE_CIDR" \
		--service-account-private-key-file="$RUN/pki/sa.key" --root-ca-file="$RUN/pki/ca.crt" \
		--use-service-account-credentials=true \
		--cluster-signing-cert-file="$RUN/pki/ca.crt" --cluster-signing-key-file="$RUN/pki/ca.key"
	start kube-scheduler "$bins/kube-scheduler" --kubeconfig="$RUN/admin.kubeconfig" \
		--authentication-kubeconfig="$RUN/admin.kubeconfig" --authorization-kubeconfig="$RUN/admin.kubeconfig" \
		--leader-elect=false --bind-address=127.0.0.1 --secure-port=10259

	if [ -n "$DNS_IP" ]; then
		start coredns "$bins/coredns" -conf "$RUN/Corefile"
		wait_for "coredns" 60 in_ns bash -c 'exec 3<>/dev/tcp/127.0.0.1/8181 && printf "GET /ready HTTP/1.0\r\n\r\n" >&3 && grep -q "200 OK" <&3'
	else
		log "no coredns in $bins: service names will not resolve in pods (build-binaries.sh dns)"
	fi
	start containerd containerd --config "$RUN/containerd/config.toml"
	wait_for "containerd" 30 ctr --address "$RUN/containerd/containerd.sock" version
	local tars=("$@")
	if ! printf '%s\n' "${tars[@]}" | grep -q pause; then
		tars=("$(pause_image)" "${tars[@]}")
	fi
	for tar in "${tars[@]}"; do
		log "importing $tar"
		ctr --address "$RUN/containerd/containerd.sock" -n k8s.io images import "$tar" >/dev/null
	done

	start kubelet "$bins/kubelet" --config="$RUN/kubelet/config.yaml" \
		--kubeconfig="$RUN/node.kubeconfig" --root-dir="$RUN/kubelet" \
		--hostname-override="$NODE" --node-ip="$NODE_IP" --cert-dir="$RUN/kubelet/pki"
	start kube-proxy "$bins/kube-proxy" --config="$RUN/kube-proxy.yaml"

	local k=(in_ns "$bins/kubectl" --kubeconfig "$RUN/admin.kubeconfig")
	wait_for "node $NODE to register" 90 "${k[@]}" get node "$NODE"
	"${k[@]}" wait --for=condition=Ready "node/$NODE" --timeout=120s >/dev/null
	wait_for "the default ServiceAccount" 60 "${k[@]}" get serviceaccount default -n default
	up_done=1
	log "cluster up in ${SECONDS}s; kubeconfig $RUN/admin.kubeconfig (use it inside the namespace: ip netns exec $NETNS ...)"
}

# pause_image builds the sandbox image from scripts/k8s/pause.
pause_image() {
	local out="$RUN/images/pause.tar"
	mkdir -p "$RUN/images"
	(cd "$here/../.." &&
		CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$RUN/images/pause" ./scripts/k8s/pause &&
		go run ./scripts/k8s/mkimage -tag registry.k8s.io/pause:3.10 -o "$out" -entrypoint /pause "$RUN/images/pause=/pause") >&2
	echo "$out"
}

dump_logs() {
	for f in "$RUN"/logs/*.log; do
		[ -f "$f" ] || continue
		echo "----- $(basename "$f") (last 30 lines) -----" >&2
		tail -n 30 "$f" >&2
	done
}

# stop_pid NAME: SIGTERM, then SIGKILL after 10 s.
stop_pid() {
	local f="$RUN/pids/$1" pid
	[ -f "$f" ] || return 0
	pid="$(cat "$f")"
	if kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 40); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.25
		done
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$f"
}

# kubepods_cgroups lists the kubelet's pod cgroups, deepest first.
kubepods_cgroups() {
	find /sys/fs/cgroup -maxdepth 2 -name kubepods -type d 2>/dev/null |
		while read -r d; do find "$d" -depth -type d; done
}

down() {
	set +e
	[ -d "$RUN" ] || mkdir -p "$RUN"
	# The API server hangs on SIGTERM once etcd is gone: it goes first.
	for d in kube-proxy kube-scheduler kube-controller-manager kubelet coredns kube-apiserver etcd containerd; do
		stop_pid "$d"
	done
	# A killed containerd leaves its shims, pause and app processes running:
	# the pods' processes are in the kubelet's cgroups, the shims in ours.
	for _ in 1 2 3; do
		pids="$(kubepods_cgroups | while read -r c; do cat "$c/cgroup.procs" 2>/dev/null; done | sort -u)"
		if ip netns list 2>/dev/null | grep -qw "$NETNS"; then
			pids="$pids $(ip netns pids "$NETNS" 2>/dev/null)"
		fi
		pids="$(echo $pids)"
		[ -n "$pids" ] || break
		kill -KILL $pids 2>/dev/null
		sleep 0.5
	done
	kubepods_cgroups | while read -r c; do rmdir "$c" 2>/dev/null; done
	# Mounts under the run folder (overlay root filesystems, shm, secret
	# and projected volumes), deepest first.
	awk -v run="$RUN" 'index($5, run"/") == 1 { print $5 }' /proc/self/mountinfo | sort -r |
		while read -r m; do umount -l "$m" 2>/dev/null; done
	# Pod network namespaces containerd created under /run/netns.
	if [ -d /run/netns ]; then
		for n in $(ls /run/netns); do
			[ "$n" = "$NETNS" ] && continue
			grep -qx "$n" "$RUN/state/netns-before" 2>/dev/null && continue
			case "$n" in cni-*) ip netns del "$n" 2>/dev/null || { umount -l "/run/netns/$n" 2>/dev/null; rm -f "/run/netns/$n"; } ;; esac
		done
	fi
	ip netns del "$NETNS" 2>/dev/null
	# Shim sockets this run left: new since up and nobody listening (another
	# containerd on the machine may have live ones here).
	if [ -d /run/containerd/s ] && [ -f "$RUN/state/shims-before" ]; then
		listening="$(ss -xlH 2>/dev/null | awk '{print $5}')"
		for f in /run/containerd/s/*; do
			[ -S "$f" ] || continue
			grep -qxF "$(basename "$f")" "$RUN/state/shims-before" && continue
			printf '%s\n' "$listening" | grep -qxF "$f" && continue
			rm -f "$f"
		done
	fi
	if [ -f "$RUN/state/sysctl" ]; then
		while IFS='=' read -r k v; do sysctl -qw "$k=$v" 2>/dev/null; done <"$RUN/state/sysctl"
	fi
	if [ -f "$RUN/state/created" ]; then
		while read -r p; do
			[ -e "$p" ] || continue
			if [ "$p" = /run/netns ]; then
				# `ip netns add` leaves a shared bind mount of /run/netns.
				[ -z "$(ls -A /run/netns 2>/dev/null)" ] || continue
				umount /run/netns 2>/dev/null
				umount -l /run/netns 2>/dev/null
			fi
			if [ "$p" = /run/containerd ]; then
				# Another containerd may have started using it meanwhile:
				# remove only what is empty.
				rmdir /run/containerd/s /run/containerd/fifo /run/containerd/runc /run/containerd 2>/dev/null
				continue
			fi
			rm -rf "$p"
		done < <(tac "$RUN/state/created")
	fi
	# Keep the daemons' logs for a look after a failure.
	if [ -d "$RUN/logs" ]; then
		rm -rf "$RUN.logs"
		mv "$RUN/logs" "$RUN.logs"
	fi
	rm -rf "$RUN"
	set -e
	log "down (daemon logs kept in $RUN.logs)"
}

env_vars() {
	[ -f "$RUN/admin.kubeconfig" ] || die "no cluster at $RUN (run cluster.sh up)"
	cat <<VARS
export E2E_KUBECONFIG="$RUN/admin.kubeconfig"
export E2E_NETNS="$NETNS"
export E2E_NODE_IP="$NODE_IP"
export E2E_RUN_DIR="$RUN"
export E2E_CONTAINERD_ADDRESS="$RUN/containerd/containerd.sock"
export KUBE_BIN_DIR="$(cat "$RUN/state/bin-dir")"
VARS
}

cmd="${1:-}"
shift || true
case "$cmd" in
up) up "$@" ;;
down) down ;;
env) env_vars ;;
*)
	echo "usage: cluster.sh up [IMAGE.tar...] | down | env" >&2
	exit 2
	;;
esac
