#!/usr/bin/env bash
# Run the GPU check on a prepared, offline GPU machine (see docs/gpu.md).
#
#   tools/device_run.sh [gpu_check options ...]
#
# The machine has Python, numpy >= 2 and CuPy (e.g. cupy-cuda13x 14) already, and no
# internet. What it lacks travels as wheels in $WHEELS, built here beforehand (docs/gpu.md,
# "A wheel folder for an offline GPU machine"): at least Chainer 7.8.1's pure-Python wheel,
# and setuptools<81 for pkg_resources (installed only when `import pkg_resources` fails).
# The wheels go into $SITE with --no-deps and $SITE is put first on PYTHONPATH: nothing
# installed on the machine is changed. Then:
#
#   python -m tutorial_lib.infra.gpu_check --out "$OUT/gpu-report.md" [options ...]
#
# Environment: WHEELS (default build/wheels), OUT (default build), PYTHON (default
# python3), SITE (default /tmp/tutorial-site).
# Exit status: gpu_check's (0 every part ran, 1 a part failed, 2 no GPU); 3 when the
# carried wheels could not be installed or the course cannot be imported.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 3
PYTHON=${PYTHON:-python3}
WHEELS=${WHEELS:-build/wheels}
OUT=${OUT:-build}
SITE=${SITE:-/tmp/tutorial-site}
mkdir -p "$OUT"

echo "== Python: $("$PYTHON" -c 'import sys; print(sys.executable, sys.version.split()[0])')"
"$PYTHON" - <<'EOF'
import importlib, warnings
warnings.simplefilter('ignore')
for name in ('numpy', 'cupy', 'cv2', 'matplotlib', 'pytest', 'tqdm', 'filelock', 'six',
             'typing_extensions', 'google.protobuf', 'pkg_resources'):
    try:
        mod = importlib.import_module(name)
        print('   have     %-18s %s' % (name, getattr(mod, '__version__', '')))
    except Exception as exc:
        print('   MISSING  %-18s (%s)' % (name, exc.__class__.__name__))
EOF

wheels=()
for w in "$WHEELS"/*.whl; do
  [ -e "$w" ] || continue
  case "$(basename "$w")" in
    setuptools-*)
      if "$PYTHON" -W ignore -c 'import pkg_resources' 2>/dev/null; then
        echo "   (not installing $(basename "$w"): pkg_resources is already here)"
        continue
      fi ;;
  esac
  wheels+=("$w")
done
if [ "${#wheels[@]}" -gt 0 ]; then
  echo "== Installing into $SITE: ${wheels[*]##*/}"
  "$PYTHON" -m pip install -q --no-index --find-links "$WHEELS" --no-deps --no-compile \
      --no-cache-dir --upgrade --target "$SITE" "${wheels[@]}" \
    || { echo "error: could not install the carried wheels from $WHEELS"; exit 3; }
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
else
  echo "== No wheels in $WHEELS: using the machine's packages as they are"
fi

"$PYTHON" -c 'import tutorial_lib, chainer; print("== Chainer", chainer.__version__, "imports")' \
  || { echo "error: tutorial_lib/chainer cannot be imported here (see above): carry what is MISSING as wheels (docs/gpu.md)"; exit 3; }

export PYTHONUNBUFFERED=1
"$PYTHON" -m tutorial_lib.infra.gpu_check --out "$OUT/gpu-report.md" "$@"
rc=$?
echo "== gpu_check exit status $rc; report: $OUT/gpu-report.md (+ gpu-report.json)"
exit $rc
