#!/usr/bin/env bash
# Benchmark (not a test): parse + validate of the starter-workflow corpus and the seed workflows,
# warm and in-process, by runnel (`runnel bench-parse`) and by GitHub's @actions/workflow-parser
# in node (bench-parse.mjs). Prints seconds per iteration, the ratio, and each side's peak RSS.
#
#   tests/bench/parse-plan.sh [--iterations N]      (default 20)
#
# Needs cargo, node >= 20.6 and the npm registry (tests/oracle/setup.sh runs first). Builds
# runnel in release mode into $CARGO_TARGET_DIR (default: target/) unless RUNNEL_BIN is set.
set -euo pipefail

iterations=20
while [[ $# -gt 0 ]]; do
  case $1 in
    --iterations) iterations=$2; shift 2 ;;
    *) echo "usage: $0 [--iterations N]" >&2; exit 2 ;;
  esac
done

root=$(cd "$(dirname "$0")/../.." && pwd)
"$root/tests/oracle/setup.sh"

# The corpus: the copy in runnel-workflow's tests when present, else shared/ beside the repo.
first_dir() { for d in "$@"; do [[ -d $d ]] && { echo "$d"; return; }; done; }
in_repo=$root/crates/runnel-workflow/tests/corpus
starter=$(first_dir "$in_repo/starter-workflows" "$in_repo" "$root/../shared/workflow-corpus/starter-workflows" /work/shared/workflow-corpus/starter-workflows)
seeds=$(first_dir "$in_repo/seed-workflows" "$root/../shared/seed-workflows" /work/shared/seed-workflows)
[[ -n $starter ]] || { echo "$0: starter-workflow corpus not found" >&2; exit 1; }
mapfile -t files < <(find "$starter" ${seeds:+"$seeds"} \( -name '*.yml' -o -name '*.yaml' \) | sort -u)

# RUNNEL_BIN names a prebuilt binary to measure instead of building one.
if [[ -n ${RUNNEL_BIN:-} ]]; then
  runnel=$RUNNEL_BIN
else
  cargo build --quiet --release -p runnel-cli --manifest-path "$root/Cargo.toml"
  runnel=${CARGO_TARGET_DIR:-$root/target}/release/runnel
fi

# Peak RSS comes from GNU time; install it when missing and we may (CI runs as root).
gnu_time=/usr/bin/time
if [[ ! -x $gnu_time ]] && command -v apt-get >/dev/null && [[ $(id -u) == 0 ]]; then
  if ! apt-get install -y -qq time >/dev/null 2>&1; then
    { apt-get update -qq && apt-get install -y -qq time; } >/dev/null 2>&1 || true
  fi
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Runs one side; leaves its JSON line in $tmp/$1.json and its peak RSS (KiB) in $tmp/$1.rss.
measure() {
  local name=$1; shift
  if [[ -x $gnu_time ]]; then
    "$gnu_time" -v -o "$tmp/$name.time" "$@" >"$tmp/$name.json"
    awk -F': ' '/Maximum resident set size/ {print $2}' "$tmp/$name.time" >"$tmp/$name.rss"
  else
    "$@" >"$tmp/$name.json"
    echo "?" >"$tmp/$name.rss"
  fi
}

measure runnel "$runnel" bench-parse --iterations "$iterations" "${files[@]}"
measure npm node "$root/tests/bench/bench-parse.mjs" --iterations "$iterations" "${files[@]}"

node - "$tmp" <<'JS'
const { readFileSync } = require("node:fs");
const dir = process.argv[2];
const read = name => JSON.parse(readFileSync(`${dir}/${name}.json`, "utf8").trim().split("\n").pop());
const rss = name => readFileSync(`${dir}/${name}.rss`, "utf8").trim();
const ours = read("runnel");
const theirs = read("npm");
const perIter = r => r.seconds / r.iterations;
const mib = kib => (kib === "?" ? "?" : `${(Number(kib) / 1024).toFixed(1)} MiB`);
console.log(`${ours.files} files, ${ours.iterations} iterations (warm, in-process)`);
console.log(
  `runnel ${perIter(ours).toFixed(4)} s/iter  workflow-parser ${perIter(theirs).toFixed(4)} s/iter  ` +
    `ratio ${(perIter(theirs) / perIter(ours)).toFixed(1)}x`
);
console.log(`peak RSS: runnel ${mib(rss("runnel"))}  workflow-parser ${mib(rss("npm"))}`);
if (ours.files !== theirs.files) console.log(`warning: file counts differ (${ours.files} vs ${theirs.files})`);
JS
