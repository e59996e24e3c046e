#!/usr/bin/env bash
# Boot-to-first-step and per-job overhead of the vm backend against the Docker backend on this
# host, for a one-step `echo` job through `runnel run`: the time from `runnel run` starting to
# the step's output line (vm: overlay, QEMU boot, the guest agent answering; Docker: container
# created and started), and to the run's end (VM killed and its directory removed; container
# removed). N runs each after one warm-up (default 5); medians and the vm/docker ratios printed,
# with the accelerator the VM ran under (TCG or KVM, as runnel says it) and the load average.
#
# Usage: tests/bench/vm-vs-docker.sh [N]   (needs: a built runnel at $RUNNEL or on PATH with
#        runnel-vm-agent beside it (or $RUNNEL_VM_AGENT), Docker and runnel-test/debian:bookworm
#        (tests/images/build.sh); the VM image is built by tests/vm/build.sh when missing)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
n="${1:-5}"
runnel="${RUNNEL:-$(command -v runnel)}"
docker_image=runnel-test/debian:bookworm
vm_image=debian-bookworm
# The image directory is build.sh's last line; the images root is its parent.
RUNNEL_VM_IMAGES="$(dirname "$(RUNNEL_BIN="$runnel" bash "$here/vm/build.sh" "$vm_image" | tail -n 1)")"
export RUNNEL_VM_IMAGES
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

# measure TARGET: prints "first end" in milliseconds; the run's output goes to $work/last.log.
measure() {
  local start first="" line
  start=$(date +%s%N)
  while IFS= read -r line; do
    printf '%s\n' "$line" >> "$work/last.log"
    if [ -z "$first" ] && [[ $line == *first-output-marker* ]] && [[ $line != *"echo "* ]]; then
      first=$(( ($(date +%s%N) - start) / 1000000 ))
    fi
  done < <(cd "$work" && NO_COLOR=1 "$runnel" run --no-cache-server -P "linux=$1" 2>&1)
  echo "${first:-0} $(( ($(date +%s%N) - start) / 1000000 ))"
}
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
declare -A firsts ends
accel=""
for target in "$docker_image" "vm://$vm_image"; do
  : > "$work/results"
  : > "$work/last.log"
  measure "$target" >/dev/null # warm-up (the VM's KVM probe, once per host kernel)
  if [[ $target == vm://* ]]; then
    accel="$(grep -o 'under [A-Z]*' "$work/last.log" | head -n 1 | cut -d' ' -f2)"
  fi
  for _ in $(seq 1 "$n"); do
    : > "$work/last.log"
    result="$(measure "$target")"
    if [[ $result == "0 "* ]]; then
      echo "$target: no step output; the run said:" >&2
      cat "$work/last.log" >&2
      exit 1
    fi
    echo "$result" >> "$work/results"
  done
  firsts[$target]="$(cut -d' ' -f1 < "$work/results" | median)"
  ends[$target]="$(cut -d' ' -f2 < "$work/results" | median)"
  echo "$target: first step output after ${firsts[$target]} ms, run over after ${ends[$target]} ms (median of $n; all: $(tr '\n' ';' < "$work/results"))"
done
echo "the VM ran under ${accel:-an accelerator runnel did not name}"
awk -v v="${firsts[vm://$vm_image]}" -v d="${firsts[$docker_image]}" -v ve="${ends[vm://$vm_image]}" -v de="${ends[$docker_image]}" \
  'BEGIN { printf "vm/docker: boot to first step %.2fx, whole run %.2fx (vm overhead over docker: %+d ms, %+d ms)\n", v / d, ve / de, v - d, ve - de }'
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
