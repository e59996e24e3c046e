#!/usr/bin/env bash
# Benchmark (not a test): `runnel daemon` against the Gitea runner (act_runner) on the same test
# Gitea, with the same workflows, in host mode, each runner on its own label.
#
#   tests/bench/daemon-vs-peer.sh [--runs N] [--idle SECONDS] [--ticks N]
#   PEER_RUNNER=/path/to/act_runner tests/bench/daemon-vs-peer.sh
#
# Figures, for each runner:
#   - push -> finished: the median over N (default 10) dispatches, one after another, of the
#     time from the dispatch API call to the run being `completed` in Gitea's API (polled every
#     50 ms), for a one-job one-step `echo` workflow;
#   - idle RSS: VmRSS of the daemon process 30 s after it started, no job run yet, and its
#     anonymous part (RssAnon: heap and stacks; the rest is mapped binary and library pages);
#   - idle requests/min: requests the runner sent to Gitea during an idle window (default 60 s,
#     after those 30 s), counted by a small reverse proxy (daemon-vs-peer.py) that both runners
#     are registered against and that counts per `x-runner-uuid` header, so both are counted the
#     same way;
#   - log latency: a step prints a line with its own timestamp every 0.1 s (default 40 lines);
#     the job's log is polled through Gitea's API every 20 ms and each line's first appearance
#     is compared with the time written into it (p50 and p95, in ms; includes the ~20 ms poll).
# Both runners run with their default settings (poll intervals included); runnel is told to
# speak Connect, as the peer does, since the counting proxy speaks HTTP/1.1 only.
#
# runnel is built with the dist profile (what ships: release + LTO) into $CARGO_TARGET_DIR
# (default ~/.cache/runnel/target) unless RUNNEL_BIN names a binary. The peer is never built
# here: PEER_RUNNER names a binary you have.
# A fresh Gitea instance `bench` is started (tests/gitea/start.sh) and stopped at the end.
# Without PEER_RUNNER only runnel's figures are printed; with it, both and the ratio peer/runnel.
set -euo pipefail

runs=10
idle=60
ticks=40
while [[ $# -gt 0 ]]; do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --idle) idle=$2; shift 2 ;;
    --ticks) ticks=$2; shift 2 ;;
    *) echo "usage: $0 [--runs N] [--idle SECONDS] [--ticks N]" >&2; exit 2 ;;
  esac
done

root=$(cd "$(dirname "$0")/../.." && pwd)
helper=$root/tests/bench/daemon-vs-peer.py
say() { echo "daemon-vs-peer: $*" >&2; }
work=$(mktemp -d /tmp/runnel-bench-daemon.XXXXXX)
pids=()

cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  "$root/tests/gitea/stop.sh" bench >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

if [[ -n ${RUNNEL_BIN:-} ]]; then
  runnel=$RUNNEL_BIN
else
  target=${CARGO_TARGET_DIR:-$HOME/.cache/runnel/target}
  # The profile that is shipped (.deb, container image): its memory is what operators see.
  say "building runnel (dist profile: release + LTO) into $target"
  CARGO_TARGET_DIR=$target cargo build --quiet --profile dist -p runnel-cli --bin runnel \
    --manifest-path "$root/Cargo.toml"
  runnel=$target/dist/runnel
fi
peer=${PEER_RUNNER:-}
if [[ -n $peer && ! -x $peer ]]; then say "PEER_RUNNER=$peer is not an executable"; exit 2; fi

say "starting Gitea instance bench"
envfile=$("$root/tests/gitea/start.sh" bench | tail -n 1)
# shellcheck disable=SC1090
source "$envfile"
export GITEA_URL GITEA_ADMIN_TOKEN GITEA_REPO

proxy_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 "$helper" proxy "$proxy_port" "$GITEA_URL" &
pids+=($!)
proxy=http://127.0.0.1:$proxy_port
for _ in $(seq 1 50); do curl -sf -o /dev/null "$proxy/__bench/counts" && break; sleep 0.1; done

who=(runnel)
[[ -n $peer ]] && who+=(peer)
declare -A bin dir label uuid pid
bin[runnel]=$runnel
bin[peer]=$peer
for w in "${who[@]}"; do
  dir[$w]=$work/$w
  label[$w]=bench-$w
  mkdir -p "${dir[$w]}"
  (cd "${dir[$w]}" && "${bin[$w]}" register --no-interactive --instance "$proxy" \
    --token "$GITEA_REGISTRATION_TOKEN" --name "bench-$w" --labels "bench-$w:host" \
    </dev/null >"${dir[$w]}/register.log" 2>&1) \
    || { say "$w: register failed:"; cat "${dir[$w]}/register.log" >&2; exit 1; }
  uuid[$w]=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["uuid"])' "${dir[$w]}/.runner")
done
printf 'runner:\n  transport: connect\n' > "${dir[runnel]}/config.yaml"
python3 "$helper" setup "$ticks" "${label[@]/#/}" >/dev/null

counts() { curl -sf "$proxy/__bench/counts" | python3 -c 'import json,sys; print(json.load(sys.stdin)["by_runner"].get(sys.argv[1], 0))' "$1"; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
# The anonymous part (heap, stacks): the file-backed rest is the binary's and libraries' pages,
# shared and reclaimable (docs/decisions/0008).
anon_kib() { awk '/^RssAnon:/ {print $2}' "/proc/$1/status"; }

for w in "${who[@]}"; do
  args=(daemon)
  [[ $w == runnel ]] && args+=(-c config.yaml)
  (cd "${dir[$w]}" && exec "${bin[$w]}" "${args[@]}" </dev/null >"${dir[$w]}/daemon.log" 2>&1) &
  pid[$w]=$!
  pids+=("${pid[$w]}")
done
say "daemons started; idle for 30 s, then counting requests for $idle s"
sleep 30
declare -A rss anon before after
for w in "${who[@]}"; do
  kill -0 "${pid[$w]}" 2>/dev/null || { say "$w daemon died:"; tail -n 20 "${dir[$w]}/daemon.log" >&2; exit 1; }
  rss[$w]=$(rss_kib "${pid[$w]}")
  anon[$w]=$(anon_kib "${pid[$w]}")
  before[$w]=$(counts "${uuid[$w]}")
done
sleep "$idle"
for w in "${who[@]}"; do after[$w]=$(counts "${uuid[$w]}"); done

declare -A result
for w in "${who[@]}"; do
  say "$w: $runs dispatches, then the log-latency job"
  result[$w]=$(python3 "$helper" measure "${label[$w]}" "$runs" "$ticks")
done

field() { python3 -c 'import json,sys; v=json.loads(sys.argv[1])[sys.argv[2]]; print("" if v is None else v)' "$1" "$2"; }
fmt() { [[ -z $2 ]] && { echo "-"; return; }; printf "%.${1}f" "$2"; }
ratio() { # peer / runnel
  [[ -z ${2:-} || -z ${1:-} ]] && { echo "-"; return; }
  python3 -c 'import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print(f"{b/a:.2f}x" if a else "-")' "$1" "$2"
}

declare -A row
for w in "${who[@]}"; do
  r=${result[$w]}
  row[$w.push]=$(field "$r" push_to_finished_median_s)
  row[$w.rss]=$(python3 -c "print(${rss[$w]}/1024)")
  row[$w.anon]=$(python3 -c "print(${anon[$w]}/1024)")
  row[$w.rpm]=$(python3 -c "print((${after[$w]}-${before[$w]})*60/$idle)")
  row[$w.p50]=$(field "$r" log_p50_ms)
  row[$w.p95]=$(field "$r" log_p95_ms)
  row[$w.failed]=$(field "$r" failed_runs)
  row[$w.seen]=$(field "$r" log_lines_seen)
done

echo
echo "daemon-vs-peer: Gitea $GITEA_VERSION, host mode, $runs dispatches, idle window ${idle}s, $ticks log lines"
echo "runnel: $("$runnel" --version 2>/dev/null | head -n 1)"
[[ -n $peer ]] && echo "peer:   $("$peer" --version 2>/dev/null | head -n 1)"
printf '%-34s %12s' "figure" "runnel"
[[ -n $peer ]] && printf ' %12s %12s' "peer" "peer/runnel"
echo
line() { # NAME KEY DECIMALS
  printf '%-34s %12s' "$1" "$(fmt "$3" "${row[runnel.$2]}")"
  [[ -n $peer ]] && printf ' %12s %12s' "$(fmt "$3" "${row[peer.$2]}")" "$(ratio "${row[runnel.$2]}" "${row[peer.$2]}")"
  echo
}
line "push -> finished, median (s)" push 2
line "idle RSS after 30 s (MiB)" rss 1
line "  of which anonymous (MiB)" anon 1
line "idle requests/min to Gitea" rpm 1
line "log line -> readable, p50 (ms)" p50 0
line "log line -> readable, p95 (ms)" p95 0
for w in "${who[@]}"; do
  [[ ${row[$w.failed]} == 0 ]] || echo "note: $w: ${row[$w.failed]} of $runs runs did not succeed"
  [[ ${row[$w.seen]} == "$ticks" ]] || echo "note: $w: saw ${row[$w.seen]} of $ticks log lines"
done
echo "(requests counted by the proxy in front of Gitea, per x-runner-uuid; ratios > 1 mean the peer's figure is larger)"
