#!/usr/bin/env bash
# Runs one of the examples on http://127.0.0.1:8000 (PORT=... to change it):
#   scripts/example.sh          # the Notes app (per-session state, actions, a task)
#   scripts/example.sh board    # the shared board (open it in two windows)
set -euo pipefail
cd "$(dirname "$0")/.."

name="${1:-notes}"
case "$name" in
  notes | board) ;;
  *)
    echo "usage: $0 [notes|board]" >&2
    exit 2
    ;;
esac

. scripts/env.sh
python -m pip install -q -e ".[examples]"
echo "ws-sync $name example: http://127.0.0.1:${PORT:-8000}" >&2
exec python -m "examples.$name"
