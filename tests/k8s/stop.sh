#!/usr/bin/env bash
# Stops the test cluster of tests/k8s/start.sh: the kubelet and control plane, every container
# of the cluster's containerd (their shims included), containerd and etcd; unmounts what they
# left mounted under the state directory. Images stay in containerd's root for the next start.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${RUNNEL_CACHE:-$HOME/.cache/runnel}/k8s"
state="${K8S_STATE:-$cache/run}"
log() { echo "k8s-stop: $*" >&2; }
# shellcheck source=../lib/service.sh
. "$here/../lib/service.sh"
[ -d "$state" ] || { log "no state in $state"; exit 0; }

for name in kubelet kube-scheduler kube-controller-manager kube-apiserver; do
  service_stop "k8s-stop: $name" "$state" "$state/$name.pid"
done
sock="$state/containerd/containerd.sock"
if [ -S "$sock" ] && [ -f "$state/containerd.pid" ] && service_owns "$(cat "$state/containerd.pid")" "$state"; then
  for task in $(ctr --address "$sock" -n k8s.io tasks ls -q 2>/dev/null); do
    ctr --address "$sock" -n k8s.io tasks kill -s SIGKILL "$task" >/dev/null 2>&1 || true
  done
  sleep 0.5
fi
service_stop "k8s-stop: containerd" "$state" "$state/containerd.pid"
# Shims of this containerd (their command line names its socket) outlive it.
for proc in /proc/[0-9]*; do
  pid="${proc#/proc/}"
  if tr '\0' ' ' < "$proc/cmdline" 2>/dev/null | grep -q -- "containerd-shim.*$state/containerd"; then
    kill -9 "$pid" 2>/dev/null || true
  fi
done
service_stop "k8s-stop: etcd" "$state" "$state/etcd.pid"
# Mounts left by the kubelet and containerd (volumes, root file systems, sandbox namespaces).
awk -v s="$state/" 'index($2, s) == 1 { print $2 }' /proc/mounts | sort -r | while read -r m; do
  umount -l "$m" 2>/dev/null || true
done
log "stopped"
