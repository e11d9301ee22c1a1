#!/usr/bin/env bash
# The batch issue's GPU figures, on a host with Python 3.12, torch and transformers and
# no registry (e.g. the lent H100). Here, first: bash scripts/bundle.sh (24 MiB, carried
# with the checkout: dist/ is git-ignored). There, from the checkout:
#
#   bash bench/gpu.sh [dist/tagsmith-offline-py3.12.tar.xz] [ITEMS]
#
# Random weights in the shapes of SmolLM2-135M and Qwen2.5-1.5B (same compute as
# trained ones; the tokenizer travels in the bundle, the 94 MiB GGUF does not), then
# the decode loop's host-side ceiling with a 2-layer model. Each run prints its table.
set -euo pipefail
cd "$(dirname "$0")/.."
BUNDLE="${1:-dist/tagsmith-offline-py3.12.tar.xz}"
ITEMS="${2:-1000}"
T="$(mktemp -d)"
tar xJf "$BUNDLE" -C "$T"
export PYTHONPATH="$T/site"
for shape in smollm2-135m qwen2.5-1.5b; do
  python3 bench/throughput.py --items "$ITEMS" --naive-items 8 --random-init "$shape" --tokenizer "$T/tokenizer"
done
python3 bench/throughput.py --items "$ITEMS" --random-init tiny-2l --tokenizer "$T/tokenizer" --skip a,b,c,d
