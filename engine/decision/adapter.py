"""Trained adapters for the decision model: find, check and attach them.

An adapter folder (written by ``tagsmith train``) holds a decision head
(``head.safetensors``: see ``engine/decision/head.py``) and/or peft LoRA weights for the
top layers of one base model, perhaps an any-list head (``head-any-list.safetensors``,
``engine/training/any_list.py``) that decides for the lists it does not cover, and ``card.json``: the base model, the taxonomy it learned
(names and fingerprint), the decision policy chosen for it by cross-validation, and
its scores, and, when the head was trained on a rule pack learned from the labels, that
pack (``rules/``, used for the lists the adapter covers: ``adapter_pack``). The card is
checked before any weight is read, so a mismatch is a clear ``E401`` rather than a
shape error deep inside peft. Attaching changes what the model prefers, never what it
can say: the answer constraint and no-repeat mask still decide which tokens exist.
"""
from __future__ import annotations

import contextlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from engine.decision.head import DecisionHead
from engine.errors import E_ADAPTER, TagsmithError

CARD = "card.json"
#: An any-list head decides for a list described as its view was: at least this share
#: of the tags with a description or aliases, or fewer in both. A head learned on a
#: described view misjudges bare names, whose tags have little evidence but the pack's
#: rules (5-fold CV on train, the synonym list with names only, bridged, on tags the
#: head never saw: rules 0.535 micro-F1, the head 0.505; described lists: +0.03 to
#: +0.05 over the rules, ``engine/training/any_list.py``).
DESCRIBED_SHARE = 0.5
#: A decision head decides for a list of which it learned more than this share of the
#: tags (the rest it scores by its shared weights, as a tag no README carried): a
#: catalogue that adds a few tags, or renames some, keeps what the head learned of the
#: others. Dev, the shipped head, names only (``README.md``, "Your own tag list"): the
#: home list plus 10 new names 0.711 -> 0.760 micro-F1 (the bare model before; the
#: home list alone 0.760), 30% of its tags renamed 0.663 -> 0.732. Not tuned: "most".
KNOWN_SHARE = 0.5
WEIGHTS = "adapter_model.safetensors"
CONFIG = "adapter_config.json"
HEAD = "head.safetensors"

_HERE = Path(__file__).resolve()
#: The checkout's adapters/ folder, or its copy inside an installed wheel (checked by the
#: card it must hold: an unrelated top-level "adapters" package may sit in site-packages).
_ADAPTERS = next((p for p in (_HERE.parents[2] / "adapters", _HERE.parents[1] / "_adapters") if (p / "smollm2-135m" / CARD).is_file()),
                 _HERE.parents[1] / "_adapters")
DEFAULT_ADAPTER = _ADAPTERS / "smollm2-135m"


@dataclass(frozen=True)
class AdapterInfo:
    """What an adapter's card says about it."""

    path: Path
    base_model: str
    tags: frozenset[str]  # exact names of the taxonomy it was trained on
    taxonomy_fingerprint: str
    policy: dict[str, Any]  # DecisionPolicy settings chosen for it (shortlist, prior_weight, count)
    card: dict[str, Any]

    @property
    def name(self) -> str:
        return self.card.get("name") or self.path.name

    @property
    def has_lora(self) -> bool:
        return _has_lora(self.card)

    @property
    def takes_most(self) -> bool:
        """Whether it decides for a list it learned most of (``covers``): a decision head
        without LoRA weights."""
        return self.card.get("head") is not None and not self.has_lora

    def covers(self, names: list[str]) -> bool:
        """Whether the adapter decides for a request's list with what it learned: every
        tag is one it learned (a subset of its taxonomy is fine: the shortlist it sees is
        a subset anyway), or, for a decision head, most are (``KNOWN_SHARE``): the head
        scores a tag it has no labels for by its shared weights alone (evidence and the
        tag-name state, no prior or item weights of its own). LoRA weights learned to
        write their list's names, so a LoRA adapter takes subsets only."""
        wanted = set(names)
        known = len(wanted & self.tags)
        if known == len(wanted):
            return True
        return self.takes_most and known > KNOWN_SHARE * len(wanted)


def _has_lora(card: dict[str, Any]) -> bool:
    """A card without a head is a LoRA adapter's; one with a head has LoRA weights too
    only when it says so (its ``lora`` entry)."""
    return card.get("head") is None or bool(card.get("lora"))


def _minor(version: str) -> tuple[str, ...]:
    return tuple(version.split("+")[0].split(".")[:2])


def version_drift(card: dict[str, Any]) -> list[str]:
    """Libraries whose major.minor version differs from the one the adapter was trained
    with (its card's ``training.versions``): a model library upgrade may move the states
    a head reads, and so its answers. Patch releases are not reported."""
    from importlib.metadata import PackageNotFoundError, version

    recorded = (card.get("training") or {}).get("versions") or {}
    out = []
    for lib in ("torch", "transformers"):
        want = recorded.get(lib)
        if not want:
            continue
        try:
            have = version(lib)
        except PackageNotFoundError:
            continue
        if _minor(have) != _minor(str(want)):
            out.append(f"{lib} {have} (trained with {want})")
    return out


_WARNED: set[str] = set()


def warn_drift(info: AdapterInfo) -> None:
    """One stderr line, once per adapter and process, when ``version_drift`` finds any."""
    drift = version_drift(info.card)
    if drift and str(info.path) not in _WARNED:
        _WARNED.add(str(info.path))
        print(f"tagsmith: warning: adapter {info.name!r} was trained under other library versions: {'; '.join(drift)}; "
              "answers may differ from its card's (pip install -c constraints.txt, or retrain)", file=sys.stderr)


def adapter_pack(path: str | Path, taxonomy: Any) -> Any:
    """The rule pack the adapter at ``path`` learned with its head (its card's
    ``rules.pack`` folder), when the adapter covers ``taxonomy``; None otherwise."""
    from engine.rules import load_pack

    info = read_adapter(path)
    folder = (info.card.get("rules") or {}).get("pack")
    if not folder or not (taxonomy.fingerprint() == info.taxonomy_fingerprint or info.covers(taxonomy.names)):
        return None
    return load_pack(info.path / folder)


def adapter_neighbours(info: AdapterInfo) -> Any:
    """The index of labelled READMEs an adapter was trained on (its card's ``neighbours``
    entry, ``engine/neighbours``); None when it keeps none. One index serves every tag
    list the adapter decides for."""
    from engine.neighbours import NeighbourIndex

    entry = info.card.get("neighbours")
    if not entry:
        return None
    try:
        return NeighbourIndex.load(info.path, entry)
    except Exception as exc:  # safetensors and json raise many kinds for a torn file; a card may lack a key
        raise TagsmithError(E_ADAPTER, f"cannot load the index of labelled READMEs: {str(exc)[:200] or type(exc).__name__}",
                            file=str(info.path / entry.get("file", "neighbours.safetensors")), field="neighbours") from None


def read_adapter(path: str | Path) -> AdapterInfo:
    """Read and check an adapter folder's card (no weights are loaded)."""
    p = Path(path)
    card_path = p / CARD
    if not p.is_dir():
        raise TagsmithError(E_ADAPTER, "adapter folder not found", file=str(p))
    if not card_path.is_file():
        raise TagsmithError(E_ADAPTER, f"not an adapter folder: {CARD} is missing", file=str(p))
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TagsmithError(E_ADAPTER, f"unreadable card: {exc}", file=str(card_path)) from None
    if not isinstance(card, dict):
        raise TagsmithError(E_ADAPTER, "the card must be a JSON object", file=str(card_path))
    head = card.get("head")
    if head is not None and (not isinstance(head, dict) or not (p / str(head.get("file", HEAD))).is_file()):
        raise TagsmithError(E_ADAPTER, f"not an adapter folder: the card names a head but {HEAD} is missing", file=str(p), field="head")
    anyl = card.get("any_list")
    if anyl is not None and not (isinstance(anyl, dict) and isinstance(anyl.get("head"), dict) and isinstance(anyl.get("policy"), dict)
                                 and (p / str(anyl["head"].get("file", ""))).is_file()):
        raise TagsmithError(E_ADAPTER, "the card's any-list entry must name its head file (present in the folder) and its policy",
                            file=str(card_path), field="any_list")
    if _has_lora(card):
        for need in (WEIGHTS, CONFIG):
            if not (p / need).is_file():
                raise TagsmithError(E_ADAPTER, f"not an adapter folder: {need} is missing", file=str(p))
    for key in ("base_model", "taxonomy", "policy"):
        if key not in card:
            raise TagsmithError(E_ADAPTER, "missing", file=str(card_path), field=key)
    tax = card["taxonomy"]
    if not isinstance(tax, dict) or not isinstance(tax.get("names"), list) or "fingerprint" not in tax:
        raise TagsmithError(E_ADAPTER, "must hold 'names' and 'fingerprint'", file=str(card_path), field="taxonomy")
    return AdapterInfo(p, str(card["base_model"]), frozenset(tax["names"]), str(tax["fingerprint"]), dict(card["policy"]), card)


def check_taxonomy(info: AdapterInfo, names: list[str], fingerprint: str) -> None:
    """Refuse a tag list the adapter never learned (explicit ``--adapter`` only)."""
    if fingerprint == info.taxonomy_fingerprint or info.covers(names):
        return
    unknown = sorted(set(names) - info.tags)
    shown = ", ".join(repr(n) for n in unknown[:5]) + (" ..." if len(unknown) > 5 else "")
    raise TagsmithError(E_ADAPTER, f"adapter {info.name!r} was trained on taxonomy {info.taxonomy_fingerprint}, which lacks "
                        f"{len(unknown)} of this list's tags ({shown})"
                        + (f"; its head decides for a list when it learned more than {KNOWN_SHARE:.0%} of its tags"
                           if info.takes_most else "")
                        + "; train one for this list with 'tagsmith train' or pass --no-adapter", file=str(info.path / CARD))


class AttachedAdapter:
    """An adapter attached to a loaded model: its decision head, and its peft LoRA
    weights injected into the model (modules change in place, so the decoder keeps
    calling the plain transformers model)."""

    def __init__(self, info: AdapterInfo, peft_model: Any, explicit: bool = True, head: DecisionHead | None = None,
                 any_head: DecisionHead | None = None) -> None:
        self.info = info
        self.peft_model = peft_model  # None for a head-only adapter
        self.explicit = explicit  # asked for by the user (a tag list it lacks is refused) or the default
        self.head = head
        self.any_head = any_head  # decides, on the bare model, for the lists the adapter does not cover

    @property
    def any_list(self) -> dict[str, Any]:
        """The card's entry for the any-list head (policy, prompt); {} without one."""
        return self.info.card.get("any_list") or {}

    def any_list_head(self, names: list[str], fingerprint: str, described_share: float) -> DecisionHead | None:
        """The head for a list the adapter does not cover (``applies`` said no): its
        any-list head, when the list is described as the view it learned on was
        (``described_share``: of the list's tags with a description or aliases, against
        ``DESCRIBED_SHARE``); else None, and an explicit adapter refuses the list (E401)."""
        view = self.any_list.get("view") or {}
        view_share = max(view.get("with_description", 0), view.get("with_aliases", 0)) / max(view.get("tags", 1), 1)
        if self.any_head is not None and (described_share >= DESCRIBED_SHARE) == (view_share >= DESCRIBED_SHARE):
            return self.any_head
        if self.explicit:
            check_taxonomy(self.info, names, fingerprint)
        return None

    def applies(self, names: list[str], fingerprint: str) -> bool:
        """Whether the adapter decides for this tag list with what it learned of it. A
        list it never learned goes to its any-list head when it has one; else an explicit
        adapter refuses it (E401) and the default one steps aside (bare model, bare policy)."""
        covered = fingerprint == self.info.taxonomy_fingerprint or self.info.covers(names)
        if self.explicit and not covered and self.any_head is None:
            check_taxonomy(self.info, names, fingerprint)
        return covered

    @contextlib.contextmanager
    def disabled(self) -> Iterator[None]:
        """The bare model inside the block (for tag lists the adapter never learned)."""
        if self.peft_model is None:
            yield
            return
        with self.peft_model.disable_adapter():
            yield


def attach(model: Any, info: AdapterInfo, base_name: str, explicit: bool = True) -> AttachedAdapter:
    """Load ``info``'s head and inject its LoRA weights (if any) into ``model`` (a
    transformers causal LM)."""
    if info.base_model != base_name:
        raise TagsmithError(E_ADAPTER, f"adapter {info.name!r} was trained for base model {info.base_model!r}, "
                            f"not {base_name!r}", file=str(info.path / CARD), field="base_model")
    warn_drift(info)
    head = _load_head(model, info, info.card.get("head"), "head")
    any_head = _load_head(model, info, (info.card.get("any_list") or {}).get("head"), "any_list")
    if not info.has_lora:
        return AttachedAdapter(info, None, explicit, head, any_head)
    from peft import PeftModel

    try:
        peft_model = PeftModel.from_pretrained(model, str(info.path), is_trainable=False)
    except Exception as exc:  # peft/safetensors raise many kinds for a wrong or torn file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TagsmithError(E_ADAPTER, f"cannot load adapter weights: {first[:200]}", file=str(info.path)) from None
    peft_model.eval()
    return AttachedAdapter(info, peft_model, explicit, head, any_head)


def _load_head(model: Any, info: AdapterInfo, entry: dict[str, Any] | None, field: str) -> DecisionHead | None:
    """A head the card names (``entry``), checked against the model's width."""
    if entry is None:
        return None
    file = str(info.path / entry.get("file", HEAD))
    try:
        head = DecisionHead.load(info.path, entry)
    except Exception as exc:  # safetensors raises many kinds for a torn file; a card may lack a key
        raise TagsmithError(E_ADAPTER, f"cannot load the decision head: {str(exc)[:200] or type(exc).__name__}",
                            file=file, field=field) from None
    width = getattr(getattr(model, "config", None), "hidden_size", None)
    if width is not None and head.kind != "rules" and head.state_dim != width:
        raise TagsmithError(E_ADAPTER, f"the head reads states of width {head.state_dim}, the model has {width}",
                            file=str(info.path / CARD), field=field)
    return head
