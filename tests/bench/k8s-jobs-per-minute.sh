#!/usr/bin/env bash
# Jobs per minute at capacity 4: the Kubernetes backend against the Docker backend on this
# host. One `runnel run` of a matrix job of N one-step legs (default 12) with
# `max-parallel: 4`, so that at most four jobs (pods, or containers) exist at once, as a runner
# with `capacity: 4` runs them; after one warm-up run of four legs per backend. Prints each
# backend's jobs per minute (N over the run's wall time), their ratio, and the load average
# before and after (the figures mean little on a machine busy with other work).
#
# Usage: tests/bench/k8s-jobs-per-minute.sh [N]   (needs: a built runnel at $RUNNEL or on
#        PATH, Docker and the test images, the test cluster of tests/k8s/start.sh)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
n="${1:-12}"
runnel="${RUNNEL:-$(command -v runnel)}"
image=runnel-test/debian:bookworm
kubeconfig="$("$here/k8s/start.sh" | tail -n 1)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# workflow LEGS: a matrix job of LEGS one-step legs, four at a time.
workflow() {
  mkdir -p "$work/.gitea/workflows"
  cat > "$work/.gitea/workflows/ci.yml" <<WF
on: push
jobs:
  leg:
    runs-on: linux
    strategy:
      max-parallel: 4
      matrix:
        i: [$(seq -s, 1 "$1")]
    steps:
      - run: echo "leg \${{ matrix.i }}"
WF
}

# run TARGET: the run's wall time in milliseconds; fails when a leg failed.
run() {
  local start
  start=$(date +%s%N)
  if ! (cd "$work" && KUBECONFIG="$kubeconfig" NO_COLOR=1 "$runnel" run --no-cache-server \
      -P "linux=$1" > "$work/log" 2>&1); then
    tail -n 30 "$work/log" >&2
    echo "k8s-jobs-per-minute: a run on $1 failed" >&2
    exit 1
  fi
  echo $(( ($(date +%s%N) - start) / 1000000 ))
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores"
declare -A rates
for target in "$image" "kubernetes://$image"; do
  workflow 4
  run "$target" > /dev/null # warm-up
  workflow "$n"
  ms="$(run "$target")"
  rates[$target]="$(awk -v n="$n" -v ms="$ms" 'BEGIN { printf "%.1f", n * 60000 / ms }')"
  echo "$target: $n jobs at capacity 4 in $ms ms: ${rates[$target]} jobs/minute"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
awk -v k="${rates[kubernetes://$image]}" -v d="${rates[$image]}" \
  'BEGIN { printf "kubernetes/docker: jobs per minute %.2fx\n", k / d }'
