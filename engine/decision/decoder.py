"""Batched greedy decoding under the tag constraint.

Outlines' own generator pays Python and generate() overhead per token and per
sequence; here one forward pass per step serves the whole batch, prompts are
prefilled once with only the last position's logits computed, and the per-row mask
comes from the compiled Outlines index (``outlines_core.Guide``) narrowed by
``TagConstraint.filter_tokens``. Greedy decoding makes the answer a function of the
input bytes and the model: the same input gives the same bytes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from engine.decision.constraint import ArrayText, TagConstraint
from engine.decision.model import LoadedModel


@dataclass
class DecodeRequest:
    prompt: str
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


class ConstrainedDecoder:
    """Runs ``DecodeRequest`` batches through a model under one ``TagConstraint``."""

    def __init__(self, lm: LoadedModel, constraint: TagConstraint, max_new_tokens: int | None = None) -> None:
        self.lm = lm
        self.c = constraint
        self.max_new_tokens = max_new_tokens or constraint.max_answer_chars

    def decode(self, reqs: list[DecodeRequest]) -> list[DecodeResult]:
        import torch

        tok, model = self.lm.tokenizer, self.lm.model
        device = self.lm.device
        enc = [tok(r.prompt, add_special_tokens=False)["input_ids"] for r in reqs]
        width = max(len(e) for e in enc)
        pad = tok.pad_token_id
        ids = torch.tensor([[pad] * (width - len(e)) + e for e in enc], device=device)
        mask = torch.tensor([[0] * (width - len(e)) + [1] * len(e) for e in enc], device=device)
        guides = [self.c.new_guide() for _ in reqs]
        texts = [""] * len(reqs)
        done = [False] * len(reqs)
        token_logp: list[list[float]] = [[] for _ in reqs]
        token_text: list[list[str]] = [[] for _ in reqs]
        steps: list[list[StepRecord]] = [[] for _ in reqs]
        past = None
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        step_input, step_pos = ids, pos
        with torch.inference_mode():
            for _ in range(self.max_new_tokens):
                out = model(input_ids=step_input, attention_mask=mask, position_ids=step_pos, past_key_values=past, use_cache=True, logits_to_keep=1)
                past = out.past_key_values
                logits = out.logits[:, -1, :].float().cpu()
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
