"""The Python API: ``Tagger`` ties taxonomy -> lexicon -> decision -> report together."""
from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Sequence

from engine.decision.policy import MODES, DecisionPolicy
from engine.decision.prepare import Prepared, prepare
from engine.decision.prompt import prompt_glosses
from engine.errors import E_EMPTY_TEXT, E_OPTION, TagsmithError
from engine.lexicon import Lexicon
from engine.lexicon.readme import Document
from engine.lexicon.types import Candidate
from engine.neighbours import vote_text
from engine.report.explanation import Explanation
from engine.request import Request
from engine.rules import RulePack, load_pack
from engine.taxonomy import Taxonomy

@dataclass
class Proposal:
    """The lexicon stage's output for one record, possibly made ready for the decoder
    (``prepared``) by the process that ran the lexicon."""

    record: dict[str, Any]
    doc: Document | None  # None once prepared: the prompt carries what the model reads
    candidates: list[Candidate]
    prepared: Prepared | None = None
    notes: list[str] = field(default_factory=list)  # for the explanation: text cut, regex budget spent


@dataclass
class TagResult:
    """One answer: the tags (exact names, best first) and why."""

    id: str | None
    tags: list[str]
    explanation: Explanation
    skeleton: dict[str, Any] | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        if self.skeleton is not None:
            out = dict(self.skeleton)
            out["tags"] = list(self.tags)
            return out
        return {"id": self.id, "tags": list(self.tags)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))


#: Characters of a description that are analysed (the rest is cut, and the explanation
#: says so): bounds time and memory on any input, well above real READMEs (<= 30k).
ANALYZE_CHARS = 100_000
#: README tokens a prompt shows when neither the caller nor an adapter says otherwise.
EXCERPT_TOKENS = 256
#: The most that can be analysed (spaCy's own bound on a document); 0 means this.
MAX_ANALYZE_CHARS = 1_000_000


def cut_text(text: str, limit: int) -> tuple[str, str | None]:
    """The first ``limit`` characters (at a line end when one is near), and a note when cut."""
    if not limit or len(text) <= limit:
        return text, None
    end = text.rfind("\n", max(0, limit - 2000), limit)
    head = text[: end if end > 0 else limit]
    return head, f"text cut: the first {len(head):,} of {len(text):,} characters were analysed (--analyze-chars {limit})"


def as_taxonomy(taxonomy: Taxonomy | Sequence[Any] | str | Path) -> Taxonomy:
    if isinstance(taxonomy, Taxonomy):
        return taxonomy
    if isinstance(taxonomy, (str, Path)):
        return Taxonomy.load(taxonomy)
    return Taxonomy.from_names(taxonomy)


class Tagger:
    """Tags project descriptions.

    >>> tagger = Tagger(mode="rules")
    >>> tagger.tag("A command-line tool ...", id="1", taxonomy=["cli", "lib"]).tags
    ['cli']
    """

    def __init__(
        self,
        pack: RulePack | str | Path | None = None,
        *,
        mode: str = "hybrid",
        model: str | None = None,
        device: str | None = None,
        excerpt_tokens: int | None = None,
        batch_size: int | None = None,
        overlap: int | None = None,
        policy: DecisionPolicy | None = None,
        lm: Any = None,
        adapter: str | Path | None = "default",
        policy_overrides: dict[str, Any] | None = None,
        analyze_chars: int = ANALYZE_CHARS,
        dtype: str | None = None,
        constraint: str = "direct",
        neighbours: Any = None,
        bridge: bool = True,
    ) -> None:
        if mode not in MODES:
            raise TagsmithError(E_OPTION, f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.pack = pack if isinstance(pack, RulePack) else load_pack(pack)
        # Without a pack of the caller's, an adapter that learned one (tagsmith train)
        # brings it for the lists it covers (``pack_for``).
        self._pack_given = pack is not None
        self._adapter_packs: dict[str, RulePack | None] = {}
        # A list's tags the pack has no rule for get the rules of the pack's concepts
        # they name (``engine/bridge``), per fingerprint; ``bridge=False``: names only.
        self.bridge = bridge
        self._bridges: dict[str, Any] = {}
        # Labelled READMEs whose tags vote (``engine/neighbours``): the caller's index,
        # else the adapter's for the lists it covers (``neighbours_for``).
        self._neighbours = neighbours
        self._adapter_neighbours: tuple[Any] | None = None  # (index or None,) once the adapter's card was read
        self.mode = mode
        # An explicit policy is used as given; otherwise a trained adapter's card supplies
        # the hybrid policy for tag lists it covers (see ``policy_for``).
        self._policy_given = policy is not None
        self.policy = policy or DecisionPolicy(mode=mode)
        self.policy_overrides = dict(policy_overrides or {})
        self.adapter_spec = adapter
        if analyze_chars < 0:
            raise TagsmithError(E_OPTION, f"analyze_chars must be >= 0 (0: no bound), got {analyze_chars}")
        self.analyze_chars = min(analyze_chars or MAX_ANALYZE_CHARS, MAX_ANALYZE_CHARS)
        self.model_spec = model
        self.device = device
        self.dtype = dtype
        from engine.decision.compiler import ENGINES

        if constraint not in ENGINES:
            raise TagsmithError(E_OPTION, f"constraint must be one of {', '.join(ENGINES)}, got {constraint!r}")
        self.constraint = constraint
        self.excerpt_tokens = excerpt_tokens
        self._batch_size = batch_size
        self._lm = lm
        self._compiler = None
        self._prefixes: dict[bool, Any] = {}  # KV caches of shared prompt prefixes, per adapter state
        self._decoders: dict[Any, Any] = {}  # per (TagConstraint, adapter state)
        self._overlap = overlap
        self._lexicons: dict[str, Lexicon] = {}
        self._applies: dict[str, bool] = {}  # adapter decides, per taxonomy fingerprint
        self._any_heads: dict[str, Any] = {}  # the any-list head or None, per fingerprint of a list the adapter does not cover

    @classmethod
    def from_pack(cls, path: str | Path, **kw: Any) -> "Tagger":
        return cls(load_pack(path), **kw)

    # -- stages -----------------------------------------------------------------
    def lexicon(self, taxonomy: Taxonomy) -> Lexicon:
        key = taxonomy.fingerprint()
        if key not in self._lexicons:
            self._lexicons[key] = Lexicon(self.pack_for(taxonomy), taxonomy)
        return self._lexicons[key]

    def pack_for(self, taxonomy: Taxonomy) -> RulePack:
        """The rule pack for a tag list: ``base_pack_for``'s, with rules for the list's
        tags that name its concepts (``bridged``)."""
        return self.bridged(taxonomy).pack

    def base_pack_for(self, taxonomy: Taxonomy) -> RulePack:
        """The caller's pack; else the pack an adapter learned with its head (``tagsmith
        train``), for the lists the adapter covers (read from its card, without loading
        the model: rules mode uses it too); else the built-in."""
        if self._pack_given or self.adapter_spec is None:
            return self.pack
        key = taxonomy.fingerprint()
        if key not in self._adapter_packs:
            from engine.decision.adapter import DEFAULT_ADAPTER, adapter_pack
            from engine.decision.model import DEFAULT_MODEL

            path = self.adapter_spec
            if path == "default":  # the shipped adapter, which only the embedded model has
                path = DEFAULT_ADAPTER if (self.model_spec or DEFAULT_MODEL) == DEFAULT_MODEL and DEFAULT_ADAPTER.is_dir() else None
            self._adapter_packs[key] = adapter_pack(path, taxonomy) if path is not None else None
        return self._adapter_packs[key] or self.pack

    def bridged(self, taxonomy: Taxonomy) -> Any:
        """``base_pack_for``'s pack with a rule for each of the list's tags it has none for
        that names one of its concepts (``engine.bridge.Bridged``: the pack and the links;
        none with ``bridge=False``). Tags the pack knows keep their rules."""
        key = taxonomy.fingerprint()
        if key not in self._bridges:
            from engine.bridge import Bridged, bridge

            base = self.base_pack_for(taxonomy)
            self._bridges[key] = bridge(base, taxonomy) if self.bridge else Bridged(base, ())
        return self._bridges[key]

    def neighbours_for(self, taxonomy: Taxonomy) -> Any:
        """The ``NeighbourIndex`` whose votes the decision head reads for a tag list: the
        caller's; else the one a trained adapter keeps, when it decides for the list."""
        if self._neighbours is not None:
            return self._neighbours
        if self.mode == "rules" or not self.adapter_applies(taxonomy):
            return None
        if self._adapter_neighbours is None:  # one index per adapter, whichever of its lists asks
            from engine.decision.adapter import adapter_neighbours

            self._adapter_neighbours = (adapter_neighbours(self.lm.adapter.info),)
        return self._adapter_neighbours[0]

    def head_neighbours(self, taxonomy: Taxonomy, policy: DecisionPolicy) -> Any:
        """The index whose vote a decision head reads under ``policy`` (None when no head decides)."""
        return self.neighbours_for(taxonomy) if policy.decider == "head" else None

    def lexicon_spec(self) -> dict[str, Any]:
        """Keyword arguments of a rules-mode ``Tagger`` in another process whose lexicon
        is this one's for every list (service lexicon workers)."""
        return {"pack": self.pack.root if self._pack_given else None, "adapter": self.adapter_spec, "model": self.model_spec,
                "analyze_chars": self.analyze_chars, "bridge": self.bridge}

    @property
    def batch_size(self) -> int:
        """Items per model batch: as given, else chosen for the device (a GPU keeps 64
        prompts busy; on CPU larger batches only add padding)."""
        if self._batch_size is None:
            if self.mode == "rules":
                return 64  # no model: only how many answers are written at once
            return 64 if str(self.lm.device).startswith("cuda") else 8
        return self._batch_size

    @property
    def overlap(self) -> int:
        """Batches decoded at once, each in its own thread: as given, else 2 on a GPU (one
        batch's host work overlaps the other's device work) and 1 on CPU, where the
        model's own threads already use the cores."""
        if self._overlap is None:
            return 2 if self.mode != "rules" and str(self.lm.device).startswith("cuda") else 1
        return max(1, self._overlap)

    @property
    def lm(self) -> Any:
        if self._lm is None:
            from engine.decision.model import load_model

            self._lm = load_model(self.model_spec, self.device, adapter=self.adapter_spec, dtype=self.dtype)
        return self._lm

    def adapter_applies(self, taxonomy: Taxonomy) -> bool:
        """Whether the loaded model's adapter decides for this tag list (E401 for an
        explicit adapter that never learned it)."""
        if self.mode == "rules":
            return False
        key = taxonomy.fingerprint()
        hit = self._applies.get(key)
        if hit is None:  # asked per item and per batch: the answer depends on the list alone
            att = getattr(self.lm, "adapter", None)
            hit = self._applies[key] = att is not None and att.applies(taxonomy.names, key)
        return hit

    def any_list_head(self, taxonomy: Taxonomy) -> Any:
        """The adapter's any-list head when it decides for this list (hybrid mode, a list
        the adapter does not cover, described as the head's view was:
        ``engine/training/any_list.py``, ``AttachedAdapter.any_list_head``); else None."""
        if self.mode != "hybrid" or self.adapter_applies(taxonomy):
            return None
        key = taxonomy.fingerprint()
        if key not in self._any_heads:
            att = getattr(self.lm, "adapter", None)
            self._any_heads[key] = att.any_list_head(taxonomy.names, key, taxonomy.described_share) if att is not None else None
        return self._any_heads[key]

    def policy_for(self, taxonomy: Taxonomy) -> DecisionPolicy:
        """The decision policy for a tag list: as given; else the adapter's (hybrid mode:
        a list it covers, or its any-list head's for one it does not); else the default;
        then any overrides."""
        policy = self.policy
        if not self._policy_given and self.mode == "hybrid":
            if self.adapter_applies(taxonomy):
                policy = DecisionPolicy(mode=self.mode, **self.lm.adapter.info.policy)
            elif self.any_list_head(taxonomy) is not None:
                policy = DecisionPolicy(mode=self.mode, **self.lm.adapter.any_list["policy"])
        return replace(policy, **self.policy_overrides) if self.policy_overrides else policy

    def excerpt_for(self, taxonomy: Taxonomy) -> int:
        """README tokens the prompt shows: as given; else what the deciding head was
        trained with (a decision head reads states of prompts like its training
        prompts); else ``EXCERPT_TOKENS``."""
        if self.excerpt_tokens is not None:
            return self.excerpt_tokens
        if self.adapter_applies(taxonomy):
            return int(self.lm.adapter.info.card.get("prompt", {}).get("excerpt_tokens") or EXCERPT_TOKENS)
        if self.any_list_head(taxonomy) is not None:
            return int(self.lm.adapter.any_list.get("prompt", {}).get("excerpt_tokens") or EXCERPT_TOKENS)
        return EXCERPT_TOKENS

    @property
    def compiler(self) -> Any:
        if self._compiler is None:
            from engine.decision.compiler import ConstraintCompiler

            self._compiler = ConstraintCompiler(self.lm.model, self.lm.tokenizer, engine=self.constraint)
        return self._compiler

    def forget(self, taxonomy: Taxonomy) -> None:
        """Drop what was compiled for a tag list (lexicon, constraints, decoders): a
        long-running service bounds its memory by forgetting lists it no longer sees."""
        key = taxonomy.fingerprint()
        self._lexicons.pop(key, None)
        self._applies.pop(key, None)
        self._any_heads.pop(key, None)
        self._bridges.pop(key, None)
        if self._compiler is not None:
            gone = self._compiler.forget(key)
            for k in [k for k in self._decoders if k[0] in gone]:
                del self._decoders[k]

    # -- public -----------------------------------------------------------------
    def tag(self, text: str, id: str | None = None, taxonomy: Any = None, max_tags: int = 3, skeleton: dict[str, Any] | None = None,
            notes: list[str] | None = None) -> TagResult:
        """Tag one description. ``notes`` (e.g. from a reader that left part of a huge
        input unread) go into the explanation."""
        if taxonomy is None:
            raise TagsmithError(E_OPTION, "a taxonomy (tag list) is required")
        rec = {"id": id, "text": text, "skeleton": skeleton}
        if notes:
            rec["notes"] = list(notes)
        return self.tag_many([rec], taxonomy=taxonomy, max_tags=max_tags)[0]

    def tag_request(self, req: Request, notes: list[str] | None = None) -> TagResult:
        return self.tag(req.text, id=req.id, taxonomy=req.taxonomy, max_tags=req.max_tags, skeleton=req.skeleton, notes=notes)

    def tag_many(self, records: Iterable[dict[str, Any]], taxonomy: Any, max_tags: int = 3) -> list[TagResult]:
        """Tag records ``{"id", "text"}``; the model runs in batches of ``batch_size``."""
        tax = as_taxonomy(taxonomy)
        return self.decide(self.propose(records, tax), tax, max_tags)

    def propose(self, records: Iterable[dict[str, Any]], taxonomy: Any) -> list[Proposal]:
        """Lexicon stage only (no model): segmented document and candidates per record."""
        tax = as_taxonomy(taxonomy)
        lex = self.lexicon(tax)
        out = []
        for r in records:
            text = r.get("text")
            if not isinstance(text, str) or not text.strip():
                raise TagsmithError(E_EMPTY_TEXT, f"record {r.get('id')!r}: the description is empty")
            text, cut = cut_text(text, self.analyze_chars)
            doc, cands = lex.analyze(text)
            notes = [str(n) for n in (r.get("notes") or [])] + ([cut] if cut else [])
            if lex.rules.timed_out:
                notes.append("regex time budget spent; cut short: " + ", ".join(lex.rules.timed_out[:3]))
            out.append(Proposal(r, doc, cands, notes=notes))
        return out

    def decide(self, items: list[Proposal], taxonomy: Any, max_tags: int = 3) -> list[TagResult]:
        """Decision stage over proposals from ``propose`` (possibly made in other processes)."""
        tax = as_taxonomy(taxonomy)
        if max_tags < 1:
            from engine.errors import E_MAX_TAGS

            raise TagsmithError(E_MAX_TAGS, f"max_tags must be a positive integer, got {max_tags}")
        if self.mode == "rules":
            policy = self.policy_for(tax)
            return [self._finish(p.record, tax, max_tags, p.candidates, policy.rules_pick(p.candidates, max_tags), None, {}, notes=p.notes)
                    for p in items]
        ready = [p if p.prepared is not None and p.prepared.max_tags == max_tags else self._prepared(p, tax, max_tags) for p in items]
        # Similar prompt lengths share a batch (less padding), and identical prompts sit
        # side by side (the decoder prefills them once); answers go back in input order.
        order = sorted(range(len(ready)), key=lambda i: (len(ready[i].prepared.suffix_ids), ready[i].prepared.suffix_ids))
        batches = [order[s:s + self.batch_size] for s in range(0, len(order), self.batch_size)]

        def run(idx: list[int]) -> list[TagResult]:
            return self._decide([ready[i] for i in idx], tax, max_tags)

        if self.overlap > 1 and len(batches) > 1:
            # While one batch waits on the device, another does its host work (the GIL
            # is released during device work). Batches are independent: same answers.
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(self.overlap) as pool:
                outs = list(pool.map(run, batches))
        else:
            outs = [run(idx) for idx in batches]
        results: dict[int, TagResult] = {}
        for idx, out in zip(batches, outs):
            results.update(zip(idx, out))
        return [results[i] for i in range(len(ready))]

    def prepare(self, items: list[Proposal], taxonomy: Any, max_tags: int = 3) -> list[Proposal]:
        """Proposals with their plan and tokenised prompt, ready for ``decide`` (batch
        workers make these themselves, so the process with the model only decodes)."""
        tax = as_taxonomy(taxonomy)
        return [self._prepared(p, tax, max_tags) for p in items]

    def _prepared(self, p: Proposal, tax: Taxonomy, max_tags: int) -> Proposal:
        if p.doc is None:
            raise TagsmithError(E_OPTION, f"record {p.record.get('id')!r} was prepared for {p.prepared.max_tags} tags, not {max_tags}")
        policy = self.policy_for(tax)
        vote = vote_text(self.head_neighbours(tax, policy), p.doc.text)
        ready = prepare(policy, self.lm.tokenizer, p.doc, p.candidates, tax.names, max_tags, self.excerpt_for(tax),
                        prompt_glosses(tax), vote)
        return Proposal(p.record, p.doc, p.candidates, ready, p.notes)

    def _decide(self, chunk: list[Proposal], tax: Taxonomy, max_tags: int) -> list[TagResult]:
        from engine.decision.decoder import ConstrainedDecoder, DecodeRequest, PrefixCache

        constraint = self.compiler.get(tax, max_tags)
        active = self.adapter_applies(tax)
        # The prefix KV cache depends on the weights: one cache per adapter state.
        prefixes = self._prefixes.setdefault(active, PrefixCache())
        # One decoder per constraint: its memos of answer states serve every batch.
        decoder = self._decoders.get((constraint, active))
        if decoder is None:
            head = getattr(self.lm.adapter, "head", None) if active else self.any_list_head(tax)
            decoder = self._decoders[(constraint, active)] = ConstrainedDecoder(self.lm, constraint, prefixes=prefixes, head=head)
        reqs = []
        for p in chunk:
            plan, prompt = p.prepared.plan, p.prepared.prompt
            reqs.append(DecodeRequest(prompt, plan.allowed, plan.target, plan.log_prior, plan.prior_weight, plan.min_tags,
                                      suffix_ids=p.prepared.suffix_ids, head_input=p.prepared.head_input))
        att = getattr(self.lm, "adapter", None)
        with att.disabled() if att is not None and not active else contextlib.nullcontext():
            outs = decoder.decode(reqs)
        results = []
        for p, out in zip(chunk, outs):
            plan = p.prepared.plan
            decision = {
                "allowed": sorted(plan.allowed) if len(plan.allowed) < len(tax) else "all",
                "target": plan.target,
                "prior_weight": plan.prior_weight,
                "raw": out.text,
                "steps": [s.__dict__ for s in out.steps],
            }
            if out.head is not None:
                decision["head"] = [v.to_dict() for v in out.head]
                decision["head_threshold"] = decoder.head.threshold
                unlearned = decoder.head.unlearned([v.tag for v in out.head])
                if unlearned:  # a list the head learned most of (``AdapterInfo.covers``)
                    decision["head_unlearned"] = unlearned
            vote = p.prepared.vote
            if vote is not None:
                decision["neighbours"] = {"votes": {t: v for t, v in vote.ranked() if t in plan.allowed},
                                          "added": list(plan.added), "nearest": [n.to_dict() for n in vote.neighbours[:5]]}
            results.append(self._finish(p.record, tax, max_tags, p.candidates, out.tags, plan.rules_pick, decision, out.tag_prob, p.notes))
        return results

    def _model_label(self, tax: Taxonomy) -> str:
        lm = self.lm
        if self.adapter_applies(tax):
            return lm.label
        return lm.label + " (any-list head)" if self.any_list_head(tax) is not None else lm.base_label

    def _finish(self, r: dict, tax: Taxonomy, max_tags: int, cands: list[Candidate], tags: list[str], rules_pick: list[str] | None, decision: dict, tag_prob: dict | None = None,
                notes: list[str] | None = None) -> TagResult:
        rid = r.get("id")
        rid = None if rid is None else str(rid)
        bridged = self._bridges.get(tax.fingerprint())
        if bridged is not None and bridged.links:
            # a chosen tag known through the pack's rules for a concept it names: say which
            notes = [*(notes or []), *(f"{lk.tag!r} known by the {lk.reason()}" for t in tags for lk in bridged.for_tag(t))]
        exp = Explanation.build(
            id=rid, mode=self.mode, model=None if self.mode == "rules" else self._model_label(tax),
            pack=self.pack_for(tax).digest, taxonomy=tax.fingerprint(), max_tags=max_tags, tags=tags, candidates=cands,
            rules_pick=rules_pick or tags, decision=decision, tag_prob=tag_prob or {}, notes=notes,
        )
        return TagResult(rid, tags, exp, r.get("skeleton"))
