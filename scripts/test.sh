#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what it needs first
# (a project-local .venv with the Python packages, gcc and the Python headers,
# Debian's chromium for the browser tests, the JS test dependencies), then lint,
# the docs site (mkdocs build --strict), the package (sdist and wheel, the
# wheel installed in a fresh venv), then pytest (which also runs the Node tests).
# The core tests then run a second time on the pure-Python tracking paths
# (WS_SYNC_PURE=1), the reference for the C ones. Arguments go to pytest and
# skip the docs, the package and the second pass (a quick run while working).
#
# Budget: the whole run stays under 30 minutes on a 2-core machine (about 17
# here once installed: pytest 12, the pure pass 2.5, lint, docs and package 2);
# each phase prints the seconds since the run started, pytest its 30 slowest tests.
set -euo pipefail
cd "$(dirname "$0")/.."

phase() { echo "[${SECONDS}s] $*"; }

. scripts/env.sh
ensure_build_deps
python -m pip install -q -e ".[test,bench,docs,package,redis]"

if ! command -v chromium >/dev/null 2>&1; then
  apt_install chromium
fi

if ! command -v redis-server >/dev/null 2>&1; then
  apt_install redis-server  # the backplane tests start private ones
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi

phase "lint: ruff, mypy"
python -m ruff check .
python -m ruff format --check .
python -m mypy

if [ "$#" -eq 0 ]; then
  phase "docs: mkdocs build --strict"
  site=$(mktemp -d)
  NO_MKDOCS_2_WARNING=1 python -m mkdocs build --strict --quiet --site-dir "$site"
  rm -rf "$site"

  phase "package: python -m build, the wheel in a fresh venv"
  ./scripts/check-package.sh
fi

export WS_SYNC_PROPERTY_EXAMPLES="${WS_SYNC_PROPERTY_EXAMPLES:-2000}"
export WS_SYNC_REQUIRE_NATIVE=1  # the C module must have been built here

run_pytest() {
  set +e
  python -m pytest "$@"
  local status=$?
  set -e
  if [ "$status" -eq 5 ]; then
    echo "pytest collected no tests: failing" >&2
    return 1
  fi
  return "$status"
}

phase "pytest"
run_pytest --durations=30 "$@"
if [ "$#" -eq 0 ]; then
  phase "core tests again on the pure-Python tracking paths (WS_SYNC_PURE=1)"
  WS_SYNC_PURE=1 WS_SYNC_PROPERTY_EXAMPLES=1250 run_pytest -q \
    tests/test_native.py tests/test_tracking.py tests/test_descriptors.py \
    tests/test_changelog.py tests/test_patch.py tests/test_sync.py tests/test_validation.py \
    tests/test_decorators.py tests/test_synced_model.py tests/test_spec_examples.py \
    tests/test_threads.py tests/test_patch_property.py
fi
phase "done"
