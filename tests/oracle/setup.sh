#!/usr/bin/env bash
# Installs the npm oracles (pinned in package-lock.json) into tests/oracle/node_modules.
# Idempotent and fast when nothing changed: `npm ci` runs only when node_modules is missing or
# package-lock.json differs from the one last installed. Needs node >= 20.6 and the npm registry.
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "tests/oracle/setup.sh: node and npm are required (Node >= 20.6)" >&2
  exit 1
fi

major_minor=$(node -p 'process.versions.node.split(".").slice(0, 2).join(".")')
if ! node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 6) ? 0 : 1)'; then
  echo "tests/oracle/setup.sh: Node >= 20.6 is required (module.register), found $major_minor" >&2
  exit 1
fi

# The stamp is a copy of the lock file taken after the last successful install: when the two
# still match, node_modules holds exactly the pinned packages.
stamp=node_modules/.runnel-oracle-lock
if [[ -f $stamp ]] && cmp -s "$stamp" package-lock.json \
  && [[ -f node_modules/@actions/expressions/package.json ]] \
  && [[ -f node_modules/@actions/workflow-parser/package.json ]]; then
  exit 0
fi

npm ci --no-audit --no-fund --loglevel=error
cp package-lock.json "$stamp"

# A quick load of both packages catches a broken install here rather than in the Rust tests.
node --input-type=module -e '
  await import("@actions/expressions");
  await import("./lib/load-workflow-parser.mjs");
' || { echo "tests/oracle/setup.sh: installed packages do not load" >&2; exit 1; }
echo "tests/oracle: npm oracles installed"
