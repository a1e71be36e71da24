#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what it needs first
# (Python packages, Debian's chromium for the browser tests, the JS test
# dependencies), then lint, then pytest (which also runs the Node tests).
set -euo pipefail
cd "$(dirname "$0")/.."

export PIP_DISABLE_PIP_VERSION_CHECK=1
python3 -m pip install -q -e ".[test,bench]"

if ! command -v chromium >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq chromium >/dev/null
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi

python3 -m ruff check .
python3 -m ruff format --check .

export WS_SYNC_PROPERTY_EXAMPLES="${WS_SYNC_PROPERTY_EXAMPLES:-2000}"
set +e
python3 -m pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: failing" >&2
  exit 1
fi
exit "$status"
