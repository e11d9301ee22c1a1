"""Batched greedy decoding under the tag constraint.

Outlines' own generator pays Python and generate() overhead per token and per
sequence; here one forward pass per step serves the whole batch, prompts are
prefilled once with only the last position's logits computed, and the per-row mask
comes from the compiled answer index (the direct index by default, Outlines'
``outlines_core.Guide`` with ``--constraint outlines``) narrowed by
``TagConstraint.kept_tokens``; one batched gather / argmax picks for every row. When a
decision head decides, no model step is taken: its answer is written through the same
constraint (``_write``).
Greedy decoding makes the answer a function of the input bytes and the model: the
same input gives the same bytes.
"""
from __future__ import annotations

import copy
import inspect
import math
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import lru_cache
from itertools import chain
from typing import Any, Iterator, Sequence

from engine.decision.constraint import ArrayText, TagConstraint, json_escaped
from engine.decision.head import DecisionHead, HeadInput, ItemStates, TagScore
from engine.decision.model import LoadedModel
from engine.decision.prompt import Prompt
from engine.errors import E_ADAPTER, TagsmithError


@dataclass
class DecodeRequest:
    prompt: Prompt | str  # a plain string is a prompt with no shared prefix
    allowed: frozenset[str]
    target: int | None = None  # exact number of tags, or None to let the model stop
    log_prior: dict[str, float] | None = None
    prior_weight: float = 0.0
    min_tags: int = 0  # the array may not close with fewer tags
    suffix_ids: Sequence[int] | None = None  # the prompt suffix already tokenised (see ``prepare``)
    head_input: HeadInput | None = None  # when set (and the decoder has a head), the head decides


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
    head: list[TagScore] | None = None  # the decision head's scores, when it decided


def forward(model: Any, ids: Any, mask: Any = None, positions: Any = None, cache: Any = None) -> tuple[Any, Any]:
    """One cached forward pass, last position's logits only: (logits, cache).

    transformers renamed ``past_key_values`` to ``cache`` (5.2x; the old name goes
    in 5.40); the name the model's ``forward`` takes is used, so both lines work.
    """
    name = _cache_arg(type(model))
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1, **{name: cache})
    new = getattr(out, "cache", None)
    return out.logits, new if new is not None else out.past_key_values


class EnoughLayers(Exception):
    """Raised by ``hidden_states``' hook once the deepest layer a head reads has run: the
    layers above it, the final norm and the logits would only be thrown away."""


@contextmanager
def hidden_states(model: Any, layer: int | None = None, state_layer: int | None = None) -> Iterator[dict[str, list[Any]]]:
    """Inside the block, ``seen["item"]`` holds the hidden states a head pools over the
    item's tokens, from the forward pass run there: the output of decoder layer
    ``state_layer`` (1-based, as ``output_hidden_states`` counts: entry ``k`` is the output
    of layer ``k``), or of the model's final norm when ``state_layer`` is None (heads
    trained before the item state moved down); ``seen["layer"]`` the output of decoder
    layer ``layer``, pooled over each tag's name.

    When both come from decoder layers, the pass stops after the deeper one: its hook
    raises ``EnoughLayers`` (the caller catches it; no logits, no cache). A head reading
    layer 25 of SmolLM2-135M's 30 skips a sixth of the model.

    Hooks on those modules, rather than ``output_hidden_states``, which would keep every
    layer's states of the whole batch alive at once. Batches decoded in overlapping
    threads share the modules: each hook keeps only its own thread's pass.
    """
    seen: dict[str, list[Any]] = {"item": [], "layer": []}
    owner = threading.get_ident()
    dec = model.get_decoder() if hasattr(model, "get_decoder") else None
    norm = next((getattr(dec, n) for n in ("norm", "ln_f", "final_layer_norm") if dec is not None and hasattr(dec, n)), None)
    blocks = next((getattr(dec, n) for n in ("layers", "h", "blocks") if dec is not None and hasattr(dec, n)), None)
    wanted = [k for k in (layer, state_layer) if k is not None]
    if (state_layer is None and norm is None) or any(blocks is None or not 1 <= k <= len(blocks) for k in wanted):
        raise TagsmithError(E_ADAPTER, f"{type(model).__name__}: a decision head needs the model's decoder layers "
                            f"{sorted(set(wanted))}" + (" and its final norm" if state_layer is None else "")
                            + ", not found (norm/ln_f/final_layer_norm, layers/h/blocks)")
    stop_at = max(wanted) if state_layer is not None else None

    def keeper(keys: tuple[str, ...], stop: bool) -> Any:
        def keep(_module: Any, _args: Any, out: Any) -> None:
            if threading.get_ident() == owner:
                for key in keys:
                    seen[key].append(out[0] if isinstance(out, tuple) else out)
                if stop:
                    raise EnoughLayers()
        return keep

    by_module: dict[int, list[str]] = {}
    if layer is not None:
        by_module.setdefault(layer, []).append("layer")
    if state_layer is not None:
        by_module.setdefault(state_layer, []).append("item")
    handles = [blocks[k - 1].register_forward_hook(keeper(tuple(keys), k == stop_at)) for k, keys in by_module.items()]
    if state_layer is None:
        handles.append(norm.register_forward_hook(keeper(("item",), False)))
    try:
        yield seen
    finally:
        for h in handles:
            h.remove()


def _pool(seen: dict[str, list[Any]], own: Any, lengths: list[int], reqs: list[DecodeRequest]) -> list[ItemStates]:
    """Per row: the mean item state (``hidden_states``) over its own tokens, and the mean
    state (of the hooked layer, else the item's) over each shortlisted tag's name in its
    line (token spans of the suffix; rows are left-padded to the batch's width)."""
    import torch

    hidden = seen["item"][0].float()
    at = seen["layer"][0].float() if seen["layer"] else hidden
    weights = own.to(torch.float32)[:, :, None]
    items = ((hidden * weights).sum(1) / weights.sum(1)).cpu()
    width = hidden.shape[1]
    out = []
    for k, r in enumerate(reqs):
        spans = r.head_input.spans if r.head_input is not None else None
        lines = None
        if spans:
            base = width - lengths[k]
            lines = torch.stack([at[k, base + a:base + b].mean(0) for a, b in spans]).cpu()
        out.append(ItemStates(items[k], lines))
    return out


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
                 prefixes: PrefixCache | None = None, head: DecisionHead | None = None) -> None:
        self.lm = lm
        self.head = head
        self.c = constraint
        self.max_new_tokens = max_new_tokens or constraint.max_answer_chars
        self.prefixes = prefixes or PrefixCache()
        # Per answer state (text so far, allowed, target, min_tags): the choosable tokens
        # and which tags they lead to. States recur across rows, steps and batches.
        self._choosable: dict[tuple, tuple[list[int], Any] | None] = {}
        self._reach: dict[tuple, tuple[int, list[int], dict[str, list[int]]] | None] = {}

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

    def _prefill(self, prefix: str, suffixes: list[str], reqs: list[DecodeRequest], want_states: bool = False,
                 layer: int | None = None, state_layer: int | None = None) -> tuple:
        """One forward pass over every distinct prompt of a group (the prefix from the
        cache): (last logits per request, KV cache per request, mask, next positions,
        pooled states per request or None).

        The pooled state is a hidden state averaged over the item's own prompt tokens
        (``hidden_states``: decoder layer ``state_layer``, or the final norm): the decision
        head's reading of the item, computed by this same pass. When the states come
        from decoder layers alone the pass stops after them: logits and cache are None.
        """
        import torch

        tok, model = self.lm.tokenizer, self.lm.model
        device = self.lm.device
        enc = [r.suffix_ids if r.suffix_ids is not None else tok(s, add_special_tokens=False)["input_ids"]
               for s, r in zip(suffixes, reqs)]
        # Rows with the same prompt (one item decoded under several policies, as
        # cross-validation does) share one prefill; their rows are copied after it.
        first: dict[tuple[int, ...], int] = {}
        rep = [first.setdefault(tuple(e), len(first)) for e in enc]
        owner = {k: i for i, k in reversed(list(enumerate(rep)))}  # each distinct prompt's first request
        uniq = [list(k) for k in first]
        pad = tok.pad_token_id
        width = max(len(e) for e in uniq)
        # Rows are left-padded: built with tensor ops, not as nested lists of ~1,000 ints each.
        lengths = torch.tensor([len(e) for e in uniq])
        own = torch.arange(width)[None, :] >= (width - lengths)[:, None]
        ids = torch.full((len(uniq), width), pad, dtype=torch.long)
        ids[own] = torch.tensor(list(chain.from_iterable(uniq)), dtype=torch.long)  # row-major: each row's tokens in order
        ids = ids.to(device)
        prefix_ids, past = self.prefixes.get(self.lm, prefix) if prefix else ([], None)
        if past is not None:
            # The prefix's KV cache (computed once, batch 1) is copied to every row;
            # rows are [prefix][padding][own tokens] and positions skip the padding.
            past = copy.deepcopy(past)
            past.batch_repeat_interleave(len(uniq))
        mask = torch.cat([torch.ones((len(uniq), len(prefix_ids)), dtype=torch.long), own.long()], dim=1).to(device)
        pos = (mask.cumsum(-1) - 1).clamp(min=0)[:, len(prefix_ids):]
        states = None
        with torch.inference_mode():
            if want_states:
                with hidden_states(model, layer, state_layer) as seen:
                    try:
                        logits, past = forward(model, ids, mask, pos, past)
                    except EnoughLayers:
                        logits = past = None
                states = _pool(seen, own.to(device), [len(e) for e in uniq], [reqs[owner[k]] for k in range(len(uniq))])
                states = [states[k] for k in rep]
            else:
                logits, past = forward(model, ids, mask, pos, past)
        step_pos = pos[:, -1:]
        if len(uniq) < len(reqs) and logits is not None:
            rows = torch.tensor(rep, device=device)
            logits, mask, step_pos = logits[rows], mask[rows], step_pos[rows]
            past.reorder_cache(rows)
        return logits, past, mask, step_pos, states

    def states(self, reqs: list[DecodeRequest], layer: int | None = None, state_layer: int | None = None) -> list[Any]:
        """The pooled states of each request's prompt (no decoding; tag names' states from
        decoder layer ``layer``, the item's from ``state_layer`` or the final norm): what
        the decision head reads, for training it on exactly what it will see."""
        prompts = [r.prompt if isinstance(r.prompt, Prompt) else Prompt("", r.prompt) for r in reqs]
        out: dict[int, Any] = {}
        groups: dict[str, list[int]] = {}
        for i, p in enumerate(prompts):
            groups.setdefault(p.prefix, []).append(i)
        for prefix, idx in groups.items():
            out.update(zip(idx, self._head_states(prefix, [prompts[i].suffix for i in idx], [reqs[i] for i in idx],
                                                  layer, state_layer)))
        return [out[i] for i in range(len(reqs))]

    def _head_states(self, prefix: str, suffixes: list[str], reqs: list[DecodeRequest], layer: int | None,
                     state_layer: int | None) -> list[Any]:
        """Pooled states of prompts sharing ``prefix``. On a CPU each prompt is prefilled
        alone, so its states are a function of the prompt: in a padded batch the kernels'
        blocking follows the batch's shape, and in bfloat16 that moved a probability by
        ~0.02, enough to flip a tag near the threshold with its batch-mates; a batch
        saved only ~12% there. On a GPU, where batching is most of the throughput, the
        prompts are prefilled together."""
        if self.lm.device.startswith("cuda") and len(reqs) > 1:
            return self._prefill(prefix, suffixes, reqs, want_states=True, layer=layer, state_layer=state_layer)[4]
        return [self._prefill(prefix, [s], [r], want_states=True, layer=layer, state_layer=state_layer)[4][0]
                for s, r in zip(suffixes, reqs)]

    def _decode_group(self, prefix: str, suffixes: list[str], reqs: list[DecodeRequest]) -> list[DecodeResult]:
        """Rows the head decides (``_head_states``, ``_head_decides``); the others generated together."""
        out: dict[int, DecodeResult] = {}
        heads = [i for i, r in enumerate(reqs) if r.head_input is not None and self.head is not None]
        if heads:
            states = self._head_states(prefix, [suffixes[i] for i in heads], [reqs[i] for i in heads],
                                      self.head.line_layer, self.head.state_layer)
            out.update((i, self._head_decides(st, reqs[i])) for i, st in zip(heads, states))
        rest = [i for i in range(len(reqs)) if i not in out]
        if rest:
            out.update(zip(rest, self._generate(prefix, [suffixes[i] for i in rest], [reqs[i] for i in rest])))
        return [out[i] for i in range(len(reqs))]

    def _head_decides(self, states: ItemStates, r: DecodeRequest) -> DecodeResult:
        """The head decides (which tags, how many, in what order) from the prompt's states;
        the answer is written through the constraint, token by token, with no model step."""
        scores = self.head.score(states, r.head_input)
        chosen = self.head.choose(scores, r.head_input.max_tags)
        narrowed = replace(r, allowed=frozenset(chosen), target=len(chosen), log_prior=None, prior_weight=0.0, min_tags=0)
        text = "".join(self._write(chosen, self.c.new_guide(), narrowed))
        # No model step wrote it: no model probabilities (the head's are the confidence).
        return DecodeResult(text=text, tags=list(chosen), tag_prob={}, head=scores)

    def _generate(self, prefix: str, suffixes: list[str], reqs: list[DecodeRequest]) -> list[DecodeResult]:
        """Greedy constrained generation for a batch of prompts sharing ``prefix``."""
        import torch

        device, model = self.lm.device, self.lm.model
        pad = self.lm.tokenizer.pad_token_id
        logits, past, mask, step_pos, _ = self._prefill(prefix, suffixes, reqs)
        guides = [self.c.new_guide() for _ in reqs]
        texts = [""] * len(reqs)
        done = [False] * len(reqs)
        token_logp: list[list[float]] = [[] for _ in reqs]
        token_text: list[list[str]] = [[] for _ in reqs]
        steps: list[list[StepRecord]] = [[] for _ in reqs]
        with torch.inference_mode():
            for _ in range(self.max_new_tokens):
                live, options = [], []
                for i, r in enumerate(reqs):
                    if done[i]:
                        continue
                    opt = self._options(texts[i], guides[i], r)
                    if opt is None:
                        done[i] = True  # the guide accepts only EOS: the array is complete
                        continue
                    live.append(i)
                    options.append(opt)
                if not live:
                    break
                picks = self._pick(logits[:, -1, :], live, options)
                next_ids = [pad] * len(reqs)
                for i, (key, choice), (t, logp, probs) in zip(live, options, picks):
                    r = reqs[i]
                    if probs is not None:
                        self._record(key, texts[i], choice[0], probs, r.allowed, steps[i])
                    guides[i].advance(token_id=t, return_tokens=False)
                    piece = self.c.token_strings[t]
                    texts[i] += piece
                    token_logp[i].append(logp)
                    token_text[i].append(piece)
                    if guides[i].is_finished() or ArrayText.parse(texts[i]).closed:
                        done[i] = True
                    next_ids[i] = t
                if all(done):
                    break
                step_input = torch.tensor(next_ids, device=device).unsqueeze(1)
                mask = torch.cat([mask, torch.ones((len(reqs), 1), dtype=mask.dtype, device=device)], dim=1)
                step_pos = step_pos + 1
                logits, past = forward(model, step_input, mask, step_pos, past)
        return [self._result(texts[i], token_logp[i], token_text[i], steps[i]) for i in range(len(reqs))]

    def _write(self, chosen: list[str], guide: Any, r: DecodeRequest) -> list[str]:
        """Write the answer ``chosen`` (the head's) through the constraint: at each state,
        of the tokens the guide and the tag masks allow, the longest that continues the
        answer's compact JSON. Model steps would only pick among spellings of the same
        answer (the allowed set and count are the head's), so they are skipped; the
        constraint still vets every token, and an answer it refuses is an error, not output.
        """
        answer = "[" + ",".join(f'"{json_escaped(t)}"' for t in chosen) + "]"
        text, pieces = "", []
        while text != answer:
            opt = self._options(text, guide, r)
            rest = answer[len(text):]
            fits = [t for t in (opt[1][0] if opt else []) if rest.startswith(self.c.token_strings[t])]
            if not fits:
                raise TagsmithError(E_ADAPTER, f"the constraint refuses the decision head's answer {answer} after {text!r}")
            # Longest piece first; among equals the lowest token id, so the spelling is fixed.
            t = min(fits, key=lambda t: (-len(self.c.token_strings[t]), t))
            guide.advance(token_id=t, return_tokens=False)
            text += self.c.token_strings[t]
            pieces.append(self.c.token_strings[t])
        if not (guide.is_finished() or ArrayText.parse(text).closed):
            raise TagsmithError(E_ADAPTER, f"the constraint does not accept the decision head's answer {answer} as complete")
        return pieces

    def _options(self, text: str, guide: Any, r: DecodeRequest) -> tuple[tuple, tuple[list[int], Any, list[float] | None]] | None:
        """The row's choosable tokens (EOS aside), as a list and a device tensor, and their
        prior bias (None without a prior); None when only EOS is left."""
        import torch

        key = (text, r.allowed, r.target, r.min_tags)
        hit = self._choosable.get(key)
        if hit is None:
            # The guide is asked only here, on a state not seen before.
            kept = [t for t in self.c.kept_tokens(text, guide.get_tokens(), r.allowed, r.target, r.min_tags) if t != self.c.eos_id]
            hit = (kept, torch.tensor(kept, dtype=torch.long, device=self.lm.device)) if kept else None
            if len(self._choosable) > 1 << 16:
                self._choosable.clear()
            self._choosable[key] = hit
        if hit is None:
            return None
        bias = self.c.prior_bias(text, hit[0], r.allowed, r.log_prior, r.prior_weight) if r.log_prior else None
        return key, (hit[0], hit[1], bias)

    def _pick(self, logits: Any, live: list[int], options: list) -> list[tuple[int, float, list[float] | None]]:
        """Greedy choice for every live row in one batched gather / log-softmax / argmax.

        Rows' choosable tokens are padded to one width (padding scores -inf), so the
        per-row host work is a memo lookup; only the [rows, width] scores leave the device.
        Returns per row (token, its log-probability, probabilities of all its choosable
        tokens where this step is recorded, else None).
        """
        import torch
        from torch.nn.utils.rnn import pad_sequence

        device = logits.device
        tensors = [opt[1] for _, opt in options]
        idx = pad_sequence(tensors, batch_first=True, padding_value=0)
        width = idx.shape[1]
        lengths = torch.tensor([len(opt[0]) for _, opt in options], device=device)
        pad = torch.arange(width, device=device)[None, :] >= lengths[:, None]
        rows = logits[torch.tensor(live, device=device)].float()
        scores = rows.gather(1, idx).masked_fill(pad, float("-inf"))
        if any(opt[2] is not None for _, opt in options):
            bias = [(opt[2] or [0.0] * len(opt[0])) + [0.0] * (width - len(opt[0])) for _, opt in options]
            scores = scores + torch.tensor(bias, device=device)
        # argmax of the scores themselves (first maximum: ties go to token order), so
        # the choice does not depend on the row's padding or on rounding in the softmax.
        best = scores.argmax(-1)
        logp = torch.log_softmax(scores, dim=-1).cpu()
        out = []
        for a, ((key, opt), b) in enumerate(zip(options, best.tolist())):
            row = logp[a, :len(opt[0])]
            probs = row.exp().tolist() if self._records(key) else None
            out.append((opt[0][b], float(row[b]), probs))
        return out

    def _records(self, key: tuple) -> bool:
        """Whether a step in this state begins a tag (or may stop): those are recorded."""
        before = ArrayText.parse(key[0])
        return before.partial in (None, "") and not before.closed

    def _record(self, key: tuple, text: str, kept: list[int], probs: list[float], allowed: frozenset[str], steps: list[StepRecord]) -> None:
        """At the first token of each item, note how much mass leads to each tag and to stopping."""
        reach = self._reach.get(key)
        if reach is None:
            reach = self._reach[key] = self._reaches(text, kept, allowed)
        if reach is None:
            return  # this token does not discriminate between tags
        position, stop_at, by_tag = reach
        stop = sum(probs[j] for j in stop_at)
        mass = {n: sum(probs[j] for j in js) for n, js in by_tag.items()}
        if mass or stop:
            steps.append(StepRecord(position=position, tag_mass={k: round(v, 6) for k, v in sorted(mass.items(), key=lambda kv: -kv[1])}, stop=round(stop, 6)))

    def _reaches(self, text: str, kept: list[int], allowed: frozenset[str]) -> tuple[int, list[int], dict[str, list[int]]] | None:
        """Which kept tokens stop the array and which tags each leads to (a function of the
        state, so memoised with it); None when the tokens do not discriminate."""
        before = ArrayText.parse(text)
        done = {self.c.escaped.get(e) for e in before.items}
        stop_at: list[int] = []
        by_tag: dict[str, list[int]] = {}
        reaches: set[tuple[str, ...]] = set()
        for j, t in enumerate(kept):
            after = ArrayText.parse(text + self.c.token_strings[t])
            if after.closed and after.partial is None and len(after.items) == len(before.items):
                stop_at.append(j)
                reaches.add(())
                continue
            new = [self.c.escaped[e] for e in after.items[len(before.items):] if e in self.c.escaped]
            # A comma or bracket alone still leads to every remaining tag.
            reach = new[:1] if new else [n for n in self.c.consistent(after.partial or "", allowed) if n not in done]
            reaches.add(tuple(reach))
            for n in reach:
                by_tag.setdefault(n, []).append(j)
        if len(reaches) < 2:
            return None
        return len(before.items), stop_at, by_tag

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
