#!/usr/bin/env bash
# Starts a single-node Kubernetes for the tests: etcd, containerd, kube-apiserver,
# kube-controller-manager, kube-scheduler and a kubelet, all on this machine, with state under
# ${K8S_STATE:-$RUNNEL_CACHE/k8s/run} (outside the clone). Builds what is missing first
# (tests/k8s/build.sh; Debian's etcd-server, containerd, containernetworking-plugins).
# Idempotent: a running cluster is reused. Prints on the last line of stdout the path of a
# kubeconfig for the runner: a user that may only manage pods (and exec into them) in the
# namespace `runnel-jobs`. `$K8S_STATE/admin.kubeconfig` has the cluster admin.
#
# Facts of this kind of machine it relies on: cgroup v1 (Kubernetes <= 1.34 runs on it);
# runc needs containerd's `restrict_oom_score_adj = true`; the kubelet needs a non-loopback
# node IP, so an empty bridge `runnel-k8s0` carries one. The API server reaches the kubelet by
# the node's name, `localhost`, so no traffic leaves the loopback device but the pods' own.
#
# Environment:
#   RUNNEL_CACHE   cache root (default ~/.cache/runnel)
#   K8S_STATE      state directory (default $RUNNEL_CACHE/k8s/run)
#   K8S_IMAGES     Docker images to import into the cluster (default: the test images of
#                  tests/images/build.sh: runnel-test/debian:bookworm runnel-test/busybox:latest,
#                  also tagged runnel-test/busybox:local so that pods use it without pulling)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${RUNNEL_CACHE:-$HOME/.cache/runnel}/k8s"
state="${K8S_STATE:-$cache/run}"
mkdir -p "$state"
log() { echo "k8s-start: $*" >&2; }
# shellcheck source=../lib/service.sh
. "$here/../lib/service.sh"

exec 9>"$cache/.start.lock"
flock 9

namespace=runnel-jobs
node_ip=10.213.1.1
pod_cidr=10.213.0.0/24
service_cidr=10.214.0.0/24
pause_image=registry.k8s.io/pause:3.10

running() { [ -f "$state/$1.pid" ] && service_owns "$(cat "$state/$1.pid")" "$state"; }

# The runner's namespace and least rights; applied again to a running cluster, so that a change
# here reaches it.
apply_rbac() {
"$state/bin/kubectl" --kubeconfig "$state/admin.kubeconfig" apply -f - >/dev/null <<RBAC
apiVersion: v1
kind: Namespace
metadata: {name: $namespace}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: runnel-runner, namespace: $namespace}
rules:
- apiGroups: [""]
  resources: [pods]
  verbs: [create, get, list, watch, delete, deletecollection]
- apiGroups: [""]
  resources: [pods/exec]
  verbs: [create, get]
- apiGroups: [""]
  resources: [pods/log]
  verbs: [get]
- apiGroups: [""]
  resources: [events]
  verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: runnel-runner, namespace: $namespace}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: runnel-runner}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: runnel-runner}
---
# Container steps (ephemeral containers) in a Role of its own: applying an older copy of this
# script to a shared running cluster leaves it in place.
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: runnel-runner-step-containers, namespace: $namespace}
rules:
- apiGroups: [""]
  resources: [pods/ephemeralcontainers]
  verbs: [patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: runnel-runner-step-containers, namespace: $namespace}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: runnel-runner-step-containers}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: runnel-runner}
RBAC
}

# The pause image and the test images into the cluster's containerd, where missing. Also on a
# running cluster: the kubelet deletes unused images when the disk runs low (disk pressure),
# the pause image included, and no pod starts without it.
ctrd="$state/containerd"
ctr_() { ctr --address "$ctrd/containerd.sock" -n k8s.io "$@"; }
import_images() {
  local bin="$state/bin"
  # The pause image, made by hand as a `docker save` archive around the static pause binary.
  if ! ctr_ images ls -q | grep -qx "$pause_image"; then
    work="$(mktemp -d)"
    mkdir -p "$work/rootfs"
    cp "$bin/pause" "$work/rootfs/pause"
    tar -C "$work/rootfs" --owner=0 --group=0 --numeric-owner --mtime=@0 -cf "$work/layer.tar" pause
    diff_id="$(sha256sum "$work/layer.tar" | cut -d' ' -f1)"
    mkdir -p "$work/archive/$diff_id"
    mv "$work/layer.tar" "$work/archive/$diff_id/layer.tar"
    printf '{"architecture":"amd64","os":"linux","config":{"Entrypoint":["/pause"],"User":"65535:65535"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
      "$diff_id" > "$work/config.json"
    config_id="$(sha256sum "$work/config.json" | cut -d' ' -f1)"
    mv "$work/config.json" "$work/archive/$config_id.json"
    printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["%s/layer.tar"]}]' \
      "$config_id" "$pause_image" "$diff_id" > "$work/archive/manifest.json"
    tar -C "$work/archive" -cf "$work/pause.tar" .
    ctr_ images import "$work/pause.tar" >/dev/null
    rm -rf "$work"
  fi
  # The test images, from Docker (tests/images/build.sh), when Docker has them.
  images="${K8S_IMAGES:-runnel-test/debian:bookworm runnel-test/busybox:latest}"
  for image in $images; do
    id="$(docker image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)"
    [ -n "$id" ] || { log "Docker has no $image: not imported"; continue; }
    stamp="$state/images/$(echo "$image" | tr '/:' '__')"
    ref="docker.io/$image"
    if [ "$(cat "$stamp" 2>/dev/null)" != "$id" ] || ! ctr_ images ls -q | grep -qx "$ref"; then
      log "importing $image into the cluster's containerd"
      mkdir -p "$state/images"
      docker save "$image" | ctr_ images import - >/dev/null
      echo "$id" > "$stamp"
    fi
    # `:latest` makes Kubernetes pull: the same image as `:local` is used as it is (a workflow's
    # service image cannot ask for `imagePullPolicy: Never`).
    case "$ref" in *:latest) ctr_ images tag --force "$ref" "${ref%:latest}:local" >/dev/null ;; esac
  done
}

if running kube-apiserver && running kubelet && [ -s "$state/runner.kubeconfig" ] \
  && "$state/bin/kubectl" --kubeconfig "$state/admin.kubeconfig" get --raw /readyz >/dev/null 2>&1; then
  log "already running ($state)"
  import_images
  apply_rbac
  echo "$state/runner.kubeconfig"
  exit 0
fi
# Anything half-started goes first.
"$here/stop.sh" >/dev/null 2>&1 || true

for pkg in etcd:etcd-server containerd:containerd runc:runc /usr/lib/cni/bridge:containernetworking-plugins openssl:openssl; do
  cmd="${pkg%%:*}"
  if [ "${cmd#/}" != "$cmd" ]; then [ -e "$cmd" ] && continue; else command -v "$cmd" >/dev/null && continue; fi
  log "installing ${pkg#*:}"
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${pkg#*:}" >/dev/null \
    || { apt-get -o DPkg::Lock::Timeout=600 update -qq \
      && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${pkg#*:}" >/dev/null; }
done
# Debian's packages start their own etcd and containerd where systemd runs; ours are separate
# processes with their own ports, sockets and directories.

bin="$("$here/build.sh" | tail -n 1)"
ln -sfn "$bin" "$state/bin"
export PATH="$state/bin:$PATH"

# --- network: an empty bridge with the node IP --------------------------------------------
if ! ip link show runnel-k8s0 >/dev/null 2>&1; then
  ip link add runnel-k8s0 type bridge
fi
ip addr replace "$node_ip/32" dev runnel-k8s0
ip link set runnel-k8s0 up
sysctl -qw net.ipv4.ip_forward=1 || true

# --- certificates ---------------------------------------------------------------------------
pki="$state/pki"
mkdir -p "$pki"
if [ ! -s "$pki/ca.crt" ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=runnel-test-k8s-ca" \
    -keyout "$pki/ca.key" -out "$pki/ca.crt" 2>/dev/null
  openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
  openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
fi
# cert NAME SUBJECT [SANS]
cert() {
  local name="$1" subject="$2" sans="${3:-}" ext="$pki/$1.ext"
  # Kept while its subject is still the one asked for.
  if [ -s "$pki/$name.crt" ] && [ "$(cat "$pki/$name.subject" 2>/dev/null)" = "$subject $sans" ]; then
    return 0
  fi
  openssl req -newkey rsa:2048 -nodes -subj "$subject" -keyout "$pki/$name.key" \
    -out "$pki/$name.csr" 2>/dev/null
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=digitalSignature,keyEncipherment"
    if [ -n "$sans" ]; then echo "extendedKeyUsage=serverAuth"; echo "subjectAltName=$sans";
    else echo "extendedKeyUsage=clientAuth"; fi
  } > "$ext"
  openssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" \
    -CAcreateserial -days 3650 -extfile "$ext" -out "$pki/$name.crt" 2>/dev/null
  rm -f "$pki/$name.csr" "$ext"
  echo "$subject $sans" > "$pki/$name.subject"
}
cert apiserver "/CN=kube-apiserver" \
  "DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,IP:127.0.0.1,IP:$node_ip,IP:10.214.0.1"
cert admin "/O=system:masters/CN=runnel-test-admin"
cert apiserver-kubelet "/O=system:masters/CN=kube-apiserver-kubelet-client"
# The controllers' own service accounts would need their bootstrap roles bound one by one: a
# test cluster's controller manager is an admin.
cert controller-manager "/O=system:masters/CN=system:kube-controller-manager"
cert scheduler "/CN=system:kube-scheduler"
cert kubelet "/O=system:nodes/CN=system:node:localhost"
cert runner "/CN=runnel-runner"

# A fresh cluster each start: no pods or objects of an earlier run come back.
rm -rf "$state/etcd" "$state/kubelet" "$state/pod-logs" "$state/cni/ipam" "$state/containerd/state"

# --- ports ------------------------------------------------------------------------------------
etcd_port="$(service_free_port)"; etcd_peer="$(service_free_port)"
api_port="$(service_free_port)"; kubelet_port="$(service_free_port)"
server="https://127.0.0.1:$api_port"

# kubeconfig NAME USER
kubeconfig() {
  local file="$state/$1.kubeconfig" user="$2" ns="${3:-default}"
  cat > "$file" <<KC
apiVersion: v1
kind: Config
clusters:
- name: runnel-test
  cluster:
    server: $server
    certificate-authority-data: $(base64 -w0 < "$pki/ca.crt")
users:
- name: $user
  user:
    client-certificate-data: $(base64 -w0 < "$pki/$user.crt")
    client-key-data: $(base64 -w0 < "$pki/$user.key")
contexts:
- name: runnel-test
  context: {cluster: runnel-test, user: $user, namespace: $ns}
current-context: runnel-test
KC
  chmod 600 "$file"
}
kubeconfig admin admin
kubeconfig controller-manager controller-manager
kubeconfig scheduler scheduler
kubeconfig kubelet kubelet
kubeconfig runner runner "$namespace"

# start NAME CMD...: runs CMD in the background, logging to $state/NAME.log.
start() {
  local name="$1"; shift
  # The state directory in the command line lets service_owns recognise the process.
  # Without the lock's descriptor: a service holding it would block every later start.sh.
  setsid "$@" >"$state/$name.log" 2>&1 < /dev/null 9>&- &
  echo $! > "$state/$name.pid"
}

# --- etcd -------------------------------------------------------------------------------------
start etcd etcd --name runnel-k8s --data-dir "$state/etcd" \
  --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
  --listen-peer-urls "http://127.0.0.1:$etcd_peer" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
  --initial-cluster "runnel-k8s=http://127.0.0.1:$etcd_peer" --listen-metrics-urls "" \
  --unsafe-no-fsync

# --- containerd -------------------------------------------------------------------------------
ctrd="$state/containerd"
mkdir -p "$ctrd" "$state/cni/net.d"
cat > "$state/cni/net.d/10-runnel.conflist" <<CNI
{
  "cniVersion": "1.0.0",
  "name": "runnel-k8s",
  "plugins": [
    {"type": "bridge", "bridge": "runnel-cni0", "isGateway": true, "ipMasq": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "$pod_cidr"}]],
              "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "$state/cni/ipam"}},
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "loopback"}
  ]
}
CNI
cat > "$ctrd/config.toml" <<TOML
version = 2
root = "$ctrd/root"
state = "$ctrd/state"
[grpc]
  address = "$ctrd/containerd.sock"
[ttrpc]
  address = "$ctrd/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$ctrd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$pause_image"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$state/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
TOML
start containerd containerd --config "$ctrd/config.toml"
for _ in $(seq 1 100); do [ -S "$ctrd/containerd.sock" ] && break; sleep 0.1; done
import_images

# --- control plane ----------------------------------------------------------------------------
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$etcd_port") 2>/dev/null && break; sleep 0.1
done
start kube-apiserver kube-apiserver \
  --etcd-servers "http://127.0.0.1:$etcd_port" --etcd-prefix "/runnel-$(basename "$state")" \
  --bind-address 127.0.0.1 --secure-port "$api_port" --advertise-address "$node_ip" \
  --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
  --client-ca-file "$pki/ca.crt" \
  --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
  --service-account-issuer https://kubernetes.default.svc \
  --service-cluster-ip-range "$service_cidr" --authorization-mode Node,RBAC \
  --kubelet-client-certificate "$pki/apiserver-kubelet.crt" --kubelet-client-key "$pki/apiserver-kubelet.key" \
  --kubelet-preferred-address-types Hostname --endpoint-reconciler-type none \
  --profiling=false --cert-dir "$state/apiserver-certs"
ready() { kubectl --kubeconfig "$state/admin.kubeconfig" get --raw /readyz >/dev/null 2>&1; }
for _ in $(seq 1 300); do ready && break; running kube-apiserver || break; sleep 0.1; done
ready || { log "kube-apiserver did not become ready: $(tail -n 5 "$state/kube-apiserver.log")"; exit 1; }

start kube-controller-manager kube-controller-manager --kubeconfig "$state/controller-manager.kubeconfig" \
  --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
  --leader-elect=false --secure-port 0 --controllers '*,-nodeipam,-cloud-node-lifecycle' \
  --profiling=false
start kube-scheduler kube-scheduler --kubeconfig "$state/scheduler.kubeconfig" \
  --leader-elect=false --secure-port 0 --profiling=false

# --- kubelet ----------------------------------------------------------------------------------
mkdir -p "$state/kubelet" "$state/pod-logs"
cat > "$state/kubelet.yaml" <<KUBELET
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: "$pki/ca.crt"}
authorization: {mode: AlwaysAllow}
cgroupDriver: cgroupfs
containerRuntimeEndpoint: "unix://$ctrd/containerd.sock"
failSwapOn: false
port: $kubelet_port
healthzPort: 0
readOnlyPort: 0
podLogsDir: "$state/pod-logs"
resolvConf: /etc/resolv.conf
evictionHard: {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
KUBELET
start kubelet kubelet --config "$state/kubelet.yaml" --kubeconfig "$state/kubelet.kubeconfig" \
  --root-dir "$state/kubelet" --hostname-override localhost --node-ip "$node_ip" \
  --cert-dir "$state/kubelet-pki"

k() { kubectl --kubeconfig "$state/admin.kubeconfig" "$@"; }
for _ in $(seq 1 300); do
  [ "$(k get node localhost -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ] && break
  running kubelet || { log "kubelet exited: $(tail -n 5 "$state/kubelet.log")"; exit 1; }
  sleep 0.1
done
[ "$(k get node localhost -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ] \
  || { log "the node did not become ready: $(tail -n 5 "$state/kubelet.log")"; exit 1; }

# --- the runner's namespace and least rights --------------------------------------------------
apply_rbac
# The node lifecycle controller lifts the `not-ready` taint a moment after the node is ready.
for _ in $(seq 1 100); do
  [ -z "$(k get node localhost -o 'jsonpath={.spec.taints}' 2>/dev/null)" ] && break; sleep 0.1
done
# Pods need their namespace's `default` service account, which the controller manager makes.
for _ in $(seq 1 100); do k -n "$namespace" get serviceaccount default >/dev/null 2>&1 && break; sleep 0.1; done
log "ready: kubectl --kubeconfig $state/admin.kubeconfig get pods -A"
echo "$state/runner.kubeconfig"
