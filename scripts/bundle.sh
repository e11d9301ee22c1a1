#!/usr/bin/env bash
# Offline bundle for an air-gapped GPU host that already has Python, torch and
# transformers: every other dependency of tagsmith as wheels, plus tagsmith itself,
# as wheels (dist/wheels) and as one xz-compressed site folder. The embedded model file travels separately.
#
#   scripts/bundle.sh [OUT_DIR]            # PYVER=3.12 PLATFORM=manylinux_2_28_x86_64 by default
#
# On the host:
#   tar xJf tagsmith-offline-py3.12.tar.xz          # -> site/ and tokenizer/
#   export PYTHONPATH=$PWD/site
# (or install the wheels in dist/wheels: pip install --no-index --no-deps wheels/*.whl)
#   python3 -m engine.cli tag request.txt --model /path/to/SmolLM2-135M-Instruct.Q4_1.gguf
#   python3 bench/throughput.py --items 1000 --random-init smollm2-135m --tokenizer tokenizer   # from a checkout
set -euo pipefail
cd "$(dirname "$0")/.."
PYVER="${PYVER:-3.12}"
OUT="${1:-dist}"
WHL="$OUT/wheels"
rm -rf "$WHL" && mkdir -p "$WHL"
PLAT=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64)
PY=(.venv/bin/python); [ -x .venv/bin/python ] || PY=(python3)
# What the host lacks, and what those need: the closure of tagsmith's requirements as
# installed (and tested) in .venv, minus what a torch + transformers host already has.
mapfile -t REQS < <("${PY[@]}" - <<'PY'
import re
from importlib.metadata import distribution, PackageNotFoundError
roots = ["spacy", "spacy-lookups-data", "rapidfuzz", "outlines", "outlines-core", "gguf", "pydantic",
         "jsonschema", "accelerate", "pyyaml", "tqdm"]
# What torch and transformers 5 themselves install. Not requests (transformers 5 no
# longer needs it, spaCy does) nor psutil (accelerate needs it): those travel.
host = re.compile(r"^(torch|nvidia-.*|triton|transformers|tokenizers|huggingface-hub|safetensors|numpy|sympy|mpmath|"
                  r"networkx|jinja2|markupsafe|filelock|fsspec|typing-extensions|packaging|"
                  r"regex|setuptools|hf-xet|cuda-.*|pip|wheel)$")
norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()
seen, todo = {}, list(roots)
while todo:
    name = norm(todo.pop())
    if name in seen or host.match(name):
        continue
    try:
        dist = distribution(name)
    except PackageNotFoundError:
        continue
    seen[name] = dist.version
    for req in dist.requires or []:
        if "extra ==" in req:
            continue
        todo.append(re.split(r"[ ;<>=!~\[(]", req, maxsplit=1)[0])
for name, version in sorted(seen.items()):
    print(f"{name}=={version}")
PY
)
for req in "${REQS[@]}"; do
  "${PY[@]}" -m pip download -q --no-deps --only-binary=:all: --python-version "$PYVER" --implementation cp \
    "${PLAT[@]}" -d "$WHL" "$req" 2>/dev/null \
  || "${PY[@]}" -m pip download -q --no-deps --only-binary=:all: -d "$WHL" "$req" 2>/dev/null \
  || { echo "bundle: no wheel of $req for cp$PYVER" >&2; exit 1; }
done
# spacy-lookups-data carries tables for every language (~100 MB); tagsmith's blank
# English pipeline reads two. spaCy's wheel carries its own test suite. Drop both.
"${PY[@]}" - "$WHL" <<'PY'
import base64, hashlib, pathlib, re, sys, zipfile
whl_dir = pathlib.Path(sys.argv[1])

def slim(pattern, drop):
    src = next(whl_dir.glob(pattern))
    tmp = src.with_suffix(".slim")
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zout:
        record = next(n for n in zin.namelist() if n.endswith(".dist-info/RECORD"))
        rows = []
        for info in zin.infolist():
            if info.filename == record or drop(info.filename):
                continue
            data = zin.read(info.filename)
            zout.writestr(info, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            rows.append(f"{info.filename},sha256={digest},{len(data)}")
        zout.writestr(record, "\n".join(rows + [f"{record},,"]) + "\n")
    tmp.replace(src)

keep_tables = ("en_lemma_lookup", "en_lexeme_norm")
slim("spacy_lookups_data-*.whl", lambda n: "/data/" in n and not any(k in n for k in keep_tables))
slim("spacy-*.whl", lambda n: n.startswith("spacy/tests/"))
PY
"${PY[@]}" -m pip wheel -q --no-deps --no-build-isolation -w "$WHL" . >/dev/null
# Installed (unpacked) and xz-compressed: native libraries compress far better
# this way than inside deflated wheels.
SITE="$OUT/site"
rm -rf "$SITE"
"${PY[@]}" -m pip install -q --no-index --no-deps --no-compile --target "$SITE" --python-version "$PYVER" \
  --implementation cp "${PLAT[@]}" --only-binary=:all: "$WHL"/*.whl
# Shipped native modules keep debug symbols, and Cython packages ship their sources:
# neither is needed to run.
find "$SITE" -name '*.so' -exec strip --strip-unneeded {} + 2>/dev/null || true
find "$SITE" \( -name '*.pyx' -o -name '*.pxd' -o -name '*.pxi' -o -name '*.cpp' -o -name '*.c' -o -name '*.h' \) -delete
# The embedded model's tokenizer (3 MiB, 1 compressed): benchmark runs with random
# weights (bench/throughput.py --random-init ... --tokenizer tokenizer) need no GGUF.
rm -rf "$OUT/tokenizer"
"${PY[@]}" - "$OUT/tokenizer" <<'PY'
import sys
from transformers import AutoTokenizer
from engine.decision.model import embedded_gguf
gguf = embedded_gguf()
AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name).save_pretrained(sys.argv[1])
PY
TAR="$OUT/tagsmith-offline-py$PYVER.tar.xz"
tar cJf "$TAR" -C "$OUT" site tokenizer
echo "bundle: $TAR ($(du -m "$TAR" | cut -f1) MiB), $(ls "$WHL" | wc -l) wheels"
