"""Batched greedy decoding under the tag constraint.

Outlines' own generator pays Python and generate() overhead per token and per
sequence; here one forward pass per step serves the whole batch, prompts are
prefilled once with only the last position's logits computed, and the per-row mask
comes from the compiled Outlines index (``outlines_core.Guide``) narrowed by
``TagConstraint.filter_tokens``. Greedy decoding makes the answer a function of the
input bytes and the model: the same input gives the same bytes.
"""
from __future__ import annotations

import copy
import inspect
import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from engine.decision.constraint import ArrayText, TagConstraint
from engine.decision.model import LoadedModel
from engine.decision.prompt import Prompt


@dataclass
class DecodeRequest:
    prompt: Prompt | str  # a plain string is a prompt with no shared prefix
    allowed: frozenset[str]
    target: int | None = None  # exact number of tags, or None to let the model stop
    log_prior: dict[str, float] | None = None
    prior_weight: float = 0.0
    min_tags: int = 0  # the array may not close with fewer tags


@dataclass
class StepRecord:
    """At a step where a tag was being chosen: the probability mass leading to each tag."""

    position: int  # 0 = choosing the first tag
    tag_mass: dict[str, float]
    stop: float


@dataclass
class DecodeResult:
    text: str
    tags: list[str]
    tag_prob: dict[str, float]  # constrained probability of each chosen tag (product over its tokens)
    steps: list[StepRecord] = field(default_factory=list)


def forward(model: Any, ids: Any, mask: Any = None, positions: Any = None, cache: Any = None) -> tuple[Any, Any]:
    """One cached forward pass, last position's logits only: (logits, cache).

    transformers renamed ``past_key_values`` to ``cache`` (5.2x; the old name goes
    in 5.40); the name the model's ``forward`` takes is used, so both lines work.
    """
    name = _cache_arg(type(model))
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1, **{name: cache})
    new = getattr(out, "cache", None)
    return out.logits, new if new is not None else out.past_key_values


@lru_cache(maxsize=None)
def _cache_arg(cls: type) -> str:
    return "cache" if "cache" in inspect.signature(cls.forward).parameters else "past_key_values"


class PrefixCache:
    """Token ids and KV cache of shared prompt prefixes, computed once per prefix.

    Every item of a taxonomy shares the system message, instructions and (without a
    shortlist) the whole tag list; prefilling that once instead of per item saves
    its share of the prompt's compute. Entries are few (one per taxonomy x mode x
    N), so the cache keeps the most recent ``size``.
    """

    def __init__(self, size: int = 8) -> None:
        self.size = size
        self._entries: dict[tuple[int, str], tuple[list[int], Any]] = {}

    def get(self, lm: LoadedModel, prefix: str) -> tuple[list[int], Any]:
        import torch

        key = (id(lm.model), prefix)
        hit = self._entries.pop(key, None)
        if hit is None:
            ids = lm.tokenizer(prefix, add_special_tokens=False)["input_ids"]
            kv = None
            if ids:
                with torch.inference_mode():
                    _, kv = forward(lm.model, torch.tensor([ids], device=lm.device))
            hit = (ids, kv)
        self._entries[key] = hit  # most recent last
        while len(self._entries) > self.size:
            self._entries.pop(next(iter(self._entries)))
        return hit


class ConstrainedDecoder:
    """Runs ``DecodeRequest`` batches through a model under one ``TagConstraint``."""

    def __init__(self, lm: LoadedModel, constraint: TagConstraint, max_new_tokens: int | None = None,
                 prefixes: PrefixCache | None = None) -> None:
        self.lm = lm
        self.c = constraint
        self.max_new_tokens = max_new_tokens or constraint.max_answer_chars
        self.prefixes = prefixes or PrefixCache()

    def decode(self, reqs: list[DecodeRequest]) -> list[DecodeResult]:
        """Answers in request order; requests that share a prompt prefix run together."""
        prompts = [r.prompt if isinstance(r.prompt, Prompt) else Prompt("", r.prompt) for r in reqs]
        groups: dict[str, list[int]] = {}
        for i, p in enumerate(prompts):
            groups.setdefault(p.prefix, []).append(i)
        results: dict[int, DecodeResult] = {}
        for prefix, idx in groups.items():
            outs = self._decode_group(prefix, [prompts[i].suffix for i in idx], [reqs[i] for i in idx])
            results.update(zip(idx, outs))
        return [results[i] for i in range(len(reqs))]

    def _decode_group(self, prefix: str, suffixes: list[str], reqs: list[DecodeRequest]) -> list[DecodeResult]:
        import torch

        tok, model = self.lm.tokenizer, self.lm.model
        device = self.lm.device
        enc = [tok(s, add_special_tokens=False)["input_ids"] for s in suffixes]
        pad = tok.pad_token_id
        width = max(len(e) for e in enc)
        ids = torch.tensor([[pad] * (width - len(e)) + e for e in enc], device=device)
        prefix_ids, past = self.prefixes.get(self.lm, prefix) if prefix else ([], None)
        if past is not None:
            # The prefix's KV cache (computed once, batch 1) is copied to every row;
            # rows are [prefix][padding][own tokens] and positions skip the padding.
            past = copy.deepcopy(past)
            past.batch_repeat_interleave(len(reqs))
        mask = torch.tensor([[1] * len(prefix_ids) + [0] * (width - len(e)) + [1] * len(e) for e in enc], device=device)
        pos = (mask.cumsum(-1) - 1).clamp(min=0)[:, len(prefix_ids):]
        guides = [self.c.new_guide() for _ in reqs]
        texts = [""] * len(reqs)
        done = [False] * len(reqs)
        token_logp: list[list[float]] = [[] for _ in reqs]
        token_text: list[list[str]] = [[] for _ in reqs]
        steps: list[list[StepRecord]] = [[] for _ in reqs]
        step_input, step_pos = ids, pos
        with torch.inference_mode():
            for _ in range(self.max_new_tokens):
                logits, past = forward(model, step_input, mask, step_pos, past)
                logits = logits[:, -1, :].float().cpu()
                next_ids = []
                for i, r in enumerate(reqs):
                    if done[i]:
                        next_ids.append(pad)
                        continue
                    choice = self._choose(i, r, guides[i], texts[i], logits[i], steps[i])
                    if choice is None:
                        done[i] = True
                        next_ids.append(pad)
                        continue
                    t, logp = choice
                    guides[i].advance(token_id=t, return_tokens=False)
                    s = self.c.token_strings[t]
                    texts[i] += s
                    token_logp[i].append(logp)
                    token_text[i].append(s)
                    if guides[i].is_finished() or ArrayText.parse(texts[i]).closed:
                        done[i] = True
                    next_ids.append(t)
                if all(done):
                    break
                step_input = torch.tensor(next_ids, device=device).unsqueeze(1)
                mask = torch.cat([mask, torch.ones((len(reqs), 1), dtype=mask.dtype, device=device)], dim=1)
                step_pos = step_pos[:, -1:] + 1
        return [self._result(texts[i], token_logp[i], token_text[i], steps[i]) for i in range(len(reqs))]

    def _choose(self, i: int, r: DecodeRequest, guide: Any, text: str, logits: Any, steps: list[StepRecord]) -> tuple[int, float] | None:
        import torch

        allowed_ids = list(guide.get_tokens())
        kept, bias = self.c.filter_tokens(text, allowed_ids, r.allowed, r.target, r.log_prior, r.prior_weight, r.min_tags)
        kept_bias = [(t, b) for t, b in zip(kept, bias) if t != self.c.eos_id]
        if not kept_bias:
            return None  # the guide accepts only EOS: the array is complete
        tids = torch.tensor([t for t, _ in kept_bias])
        scores = logits[tids] + torch.tensor([b for _, b in kept_bias])
        logp = torch.log_softmax(scores, dim=-1)
        best = int(torch.argmax(logp))  # first maximum: deterministic tie-break by token order
        self._record(text, kept_bias, logp, r.allowed, steps)
        return kept_bias[best][0], float(logp[best])

    def _record(self, text: str, kept: list[tuple[int, float]], logp: Any, allowed: frozenset[str], steps: list[StepRecord]) -> None:
        """At the first token of each item, note how much mass leads to each tag and to stopping."""
        before = ArrayText.parse(text)
        if before.partial not in (None, "") or before.closed:
            return  # inside a tag name: its choice was recorded where it began
        mass: dict[str, float] = {}
        stop = 0.0
        done = {self.c.escaped.get(e) for e in before.items}
        probs = logp.exp().tolist()
        reaches: set[tuple[str, ...]] = set()
        for (t, _), p in zip(kept, probs):
            after = ArrayText.parse(text + self.c.token_strings[t])
            if after.closed and after.partial is None and len(after.items) == len(before.items):
                stop += p
                reaches.add(())
                continue
            new = [self.c.escaped[e] for e in after.items[len(before.items):] if e in self.c.escaped]
            # A comma or bracket alone still leads to every remaining tag.
            reach = new[:1] if new else [n for n in self.c.consistent(after.partial or "", allowed) if n not in done]
            reaches.add(tuple(reach))
            for n in reach:
                mass[n] = mass.get(n, 0.0) + p
        if len(reaches) < 2:
            return  # this token does not discriminate between tags
        if mass or stop:
            steps.append(StepRecord(position=len(before.items), tag_mass={k: round(v, 6) for k, v in sorted(mass.items(), key=lambda kv: -kv[1])}, stop=round(stop, 6)))

    def _result(self, text: str, logps: list[float], pieces: list[str], steps: list[StepRecord]) -> DecodeResult:
        arr = ArrayText.parse(text)
        tags = [self.c.escaped[e] for e in arr.items if e in self.c.escaped]
        # Attribute each token's log-probability to the item it writes into.
        probs: dict[str, float] = {}
        acc = ""
        lp_item = 0.0
        n_items = 0
        for s, lp in zip(pieces, logps):
            prev = ArrayText.parse(acc)
            acc += s
            cur = ArrayText.parse(acc)
            if cur.partial is not None or len(cur.items) > len(prev.items):
                lp_item += lp
            while n_items < len(cur.items):
                name = self.c.escaped.get(cur.items[n_items])
                if name is not None:
                    probs[name] = round(math.exp(lp_item), 6)
                n_items += 1
                lp_item = 0.0
        return DecodeResult(text=text, tags=tags, tag_prob=probs, steps=steps)
