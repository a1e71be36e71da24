#!/usr/bin/env bash
# Builds the sdist and the wheel (python -m build) into dist/, checks the
# wheel's contents (no C source, a stripped extension module, the license,
# the typing marker, the browser client), then installs the wheel into a fresh
# virtualenv and imports the compiled module from there.
# Needs the project's .venv (scripts/env.sh) with the "package" extra.
set -euo pipefail
cd "$(dirname "$0")/.."

rm -rf dist
python -m build --outdir dist . >/dev/null
sdist=$(ls dist/*.tar.gz)
wheel=$(ls dist/*.whl)
echo "built $(basename "$sdist") and $(basename "$wheel")"

python - "$sdist" "$wheel" <<'PY'
import sys, tarfile, zipfile
sdist, wheel = sys.argv[1:]
names = zipfile.ZipFile(wheel).namelist()
fail = []
if any(n.endswith(".c") for n in names):
    fail.append("the wheel ships C source")
sos = [n for n in names if n.startswith("ws_sync/_speedups") and n.endswith(".so")]
if len(sos) != 1:
    fail.append(f"the wheel has {len(sos)} extension modules")
for need in ("ws_sync/py.typed", "ws_sync/static/ws-sync.js", "ws_sync/static/ws-sync.d.ts"):
    if need not in names:
        fail.append(f"the wheel lacks {need}")
if not any(n.endswith(".dist-info/licenses/LICENSE") for n in names):
    fail.append("the wheel lacks LICENSE")
meta = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
for field in ("License-Expression: MIT", "Project-URL: Source", "Classifier: ", "Description-Content-Type: text/markdown"):
    if field not in meta:
        fail.append(f"METADATA lacks {field!r}")
members = tarfile.open(sdist).getnames()
for need in ("ws_sync/_speedups.c", "LICENSE", "README.md"):
    if not any(m.endswith("/" + need) for m in members):
        fail.append(f"the sdist lacks {need}")
if fail:
    sys.exit("package check failed:\n  " + "\n  ".join(fail))
PY

# Stripped: no symbol table left in the shared object.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python -m zipfile -e "$wheel" "$tmp/wheel"
so=$(ls "$tmp"/wheel/ws_sync/_speedups*.so)
if readelf -S "$so" | grep -q '\.symtab'; then
  echo "package check failed: $(basename "$so") is not stripped" >&2
  exit 1
fi

# Installed alone in a fresh virtualenv, outside the source tree.
# (PYTHONPATH unset, or pip would find the source tree and install nothing)
python -m venv "$tmp/venv"
env -u PYTHONPATH "$tmp/venv/bin/python" -m pip install -q --disable-pip-version-check "$wheel"
(cd "$tmp" && env -u PYTHONPATH "$tmp/venv/bin/python" -c '
import ws_sync, ws_sync.native as native
assert "/venv/" in ws_sync.__file__, ws_sync.__file__
assert native.ENABLED, "ws_sync._speedups did not import from the wheel"
print("wheel ok:", ws_sync.__file__.rsplit("/", 2)[0], "native:", native.speedups.__file__.rsplit("/", 1)[1])
')
