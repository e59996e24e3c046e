#!/usr/bin/env bash
# Per-job overhead of the Kubernetes backend against the Docker backend on this host: the time
# from `runnel run` starting to the first step's output line (connect, pod or container
# created and started, job directories laid out, the step exec'd), and to the run's end (the
# pod or container removed), for a one-step job, N times each (default 5), medians printed.
#
# Usage: tests/bench/k8s-vs-docker.sh [N]   (needs: a built runnel at $RUNNEL or on PATH,
#        Docker and the test images, the test cluster of tests/k8s/start.sh)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
n="${1:-5}"
runnel="${RUNNEL:-$(command -v runnel)}"
image=runnel-test/debian:bookworm
kubeconfig="$("$here/k8s/start.sh" | tail -n 1)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/.gitea/workflows"
cat > "$work/.gitea/workflows/ci.yml" <<'WF'
on: push
jobs:
  one:
    runs-on: linux
    steps:
      - run: echo first-output-marker
WF

# measure TARGET: prints "first end" in milliseconds.
measure() {
  local start first="" line
  start=$(date +%s%N)
  while IFS= read -r line; do
    if [ -z "$first" ] && [[ $line == *first-output-marker* ]] && [[ $line != *"echo "* ]]; then
      first=$(( ($(date +%s%N) - start) / 1000000 ))
    fi
  done < <(cd "$work" && KUBECONFIG="$kubeconfig" NO_COLOR=1 "$runnel" run --no-cache-server -P "linux=$1" 2>&1)
  echo "${first:-0} $(( ($(date +%s%N) - start) / 1000000 ))"
}
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

declare -A firsts ends
for target in "$image" "kubernetes://$image"; do
  : > "$work/results"
  measure "$target" >/dev/null # warm-up
  for _ in $(seq 1 "$n"); do measure "$target" >> "$work/results"; done
  firsts[$target]="$(cut -d' ' -f1 < "$work/results" | median)"
  ends[$target]="$(cut -d' ' -f2 < "$work/results" | median)"
  echo "$target: first step output after ${firsts[$target]} ms, run over after ${ends[$target]} ms (median of $n)"
done
awk -v k="${firsts[kubernetes://$image]}" -v d="${firsts[$image]}" -v ke="${ends[kubernetes://$image]}" -v de="${ends[$image]}" \
  'BEGIN { printf "kubernetes/docker: first output %.2fx, whole run %.2fx\n", k / d, ke / de }'
