# Sourced by example.sh and test.sh: a project-local virtualenv (.venv) made
# from the first python3 on PATH, so an externally managed interpreter
# (stock Debian/Ubuntu) is never installed into. Debian packages the scripts
# need (python3-venv, a C compiler and the Python headers) come from apt.

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
apt_updated=""

apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  if [ -z "$apt_updated" ]; then
    $SUDO apt-get update -qq
    apt_updated=1
  fi
  $SUDO apt-get install -y -qq "$@" >/dev/null
}

# The Debian package name for this interpreter's venv support (python3.11-venv ...).
debian_venv_pkg() {
  python3 -c 'import sys; print(f"python3.{sys.version_info[1]}-venv")'
}

ensure_venv() {
  if [ -x .venv/bin/python ] && .venv/bin/python -c 'import pip' 2>/dev/null; then
    return
  fi
  rm -rf .venv
  if ! python3 -m venv .venv 2>/dev/null; then
    rm -rf .venv
    apt_install python3-venv "$(debian_venv_pkg)" || apt_install python3-venv
    python3 -m venv .venv
  fi
}

# gcc and Python.h, so the C hot paths build (test.sh requires them).
ensure_build_deps() {
  local has_headers
  has_headers=$(.venv/bin/python -c 'import os, sysconfig; print(int(os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h"))))')
  if ! command -v gcc >/dev/null 2>&1 || [ "$has_headers" != 1 ]; then
    apt_install gcc python3-dev
  fi
}

ensure_venv
export PATH="$PWD/.venv/bin:$PATH"
export VIRTUAL_ENV="$PWD/.venv"
export PIP_DISABLE_PIP_VERSION_CHECK=1
