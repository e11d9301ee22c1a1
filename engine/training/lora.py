"""LoRA on the top decoder layers, trained on cached states of the frozen rest.

Why this shape: on two CPU cores one forward pass of SmolLM2-135M over a ~450-token
prompt takes ~1 s, and fine-tuning every layer would repeat it, plus a backward pass,
every epoch. LoRA on the top ``K`` layers gives the same gradients whether or not the
frozen bottom is recomputed, so its output (the input of layer ``n-K``) is computed
once per example and cached, and each epoch runs only the top ``K`` layers. The
adapter is saved as an ordinary peft LoRA adapter of the whole model
(``layers_to_transform`` = the top layers), which ``PeftModel.from_pretrained`` loads.

Models whose decoder layers are not ``model.model.layers``, or whose split does not
reproduce the full model's logits (checked on a probe), train the plain way: LoRA on
every layer through the whole model, with peft's default target modules.
"""
from __future__ import annotations

import copy
import json
import math
import random
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from engine.training.examples import Example

TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class LoraSettings:
    layers: int = 6  # top decoder layers that carry LoRA
    rank: int = 16
    alpha: int = 32
    dropout: float = 0.05
    lr: float = 1e-3
    epochs: int = 2
    accumulate: int = 4  # examples per optimiser step
    warmup: float = 0.1  # share of steps with a rising learning rate
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Stop(Exception):
    """Raised by a hook to end a forward pass once the cached layer's input is seen."""


def decoder_layers(model: Any) -> Any:
    import torch

    layers = getattr(getattr(model, "model", None), "layers", None)
    return layers if isinstance(layers, torch.nn.ModuleList) and len(layers) > 0 else None


class SplitModel:
    """A causal LM cut before layer ``start``: ``bottom`` runs the frozen part once per
    sequence, ``hidden`` runs the top part (or the whole model when no split is possible)."""

    def __init__(self, model: Any, top_layers: int) -> None:
        self.model = model
        layers = decoder_layers(model)
        self.n_layers = len(layers) if layers is not None else None
        self.start = 0
        self.top = None
        if layers is not None:
            k = max(1, min(top_layers, len(layers)))
            self.start = len(layers) - k
            self.top = _top_model(model, self.start)

    @property
    def split(self) -> bool:
        return self.top is not None

    def bottom(self, ids: Sequence[int]) -> Any:
        """The cached input of the top part for one sequence: layer ``start``'s input
        [T, H] when split, else the token ids."""
        import torch

        ids_t = torch.tensor([list(ids)], device=self.model.device)
        if not self.split:
            return ids_t[0]
        captured: dict[str, Any] = {}

        def hook(_module: Any, args: tuple, kwargs: dict) -> None:
            captured["h"] = args[0] if args else kwargs["hidden_states"]
            raise _Stop

        handle = self.model.model.layers[self.start].register_forward_pre_hook(hook, with_kwargs=True)
        try:
            with torch.no_grad():
                self.model(input_ids=ids_t, use_cache=False)
        except _Stop:
            pass
        finally:
            handle.remove()
        return captured["h"][0].detach()

    def hidden(self, cached: Any) -> Any:
        """Final hidden states [T, H] (after the last norm) from a cached input."""
        if self.split:
            return self.top.model(inputs_embeds=cached[None], use_cache=False).last_hidden_state[0]
        return self.model.base_model(input_ids=cached[None], use_cache=False).last_hidden_state[0]

    def head(self) -> Any:
        return self.model.get_output_embeddings()

    def verify(self, ids: Sequence[int]) -> bool:
        """Whether top(bottom(ids)) gives the full model's logits (else: no split)."""
        import torch

        if not self.split:
            return True
        with torch.no_grad():
            full = self.model(input_ids=torch.tensor([list(ids)], device=self.model.device), use_cache=False).logits[0, -1].float()
            mine = self.head()(self.hidden(self.bottom(ids))[-1:]).float()[0]
        ok = torch.allclose(full, mine, atol=1e-3, rtol=1e-3)
        if not ok:
            self.top, self.start = None, 0
        return ok


def _top_model(model: Any, start: int) -> Any:
    """A model of the same class holding only layers ``start:`` (shared modules, no copies)."""
    import torch

    try:
        cfg = copy.deepcopy(model.config)
        n = cfg.num_hidden_layers
        cfg.num_hidden_layers = n - start
        if isinstance(getattr(cfg, "layer_types", None), list):
            cfg.layer_types = cfg.layer_types[start:]
        with torch.device("meta"):
            top = type(model)(cfg)
        top.model.layers = torch.nn.ModuleList(list(model.model.layers)[start:])
        for name, child in model.model.named_children():
            if name != "layers":
                setattr(top.model, name, child)
        top.set_output_embeddings(model.get_output_embeddings())
        if any(p.is_meta for p in top.parameters()) or any(b.is_meta for b in top.buffers()):
            return None
        return top.eval()
    except Exception:  # an architecture that does not fit the pattern trains unsplit
        return None


class LoraTrainer:
    """Fine-tunes a loaded model's top layers with LoRA on ``Example``s."""

    def __init__(self, model: Any, settings: LoraSettings, probe: Sequence[int] | None = None) -> None:
        import torch
        from peft import LoraConfig, get_peft_model

        self.settings = settings
        for p in model.parameters():
            p.requires_grad_(False)
        self.split = SplitModel(model, settings.layers)
        if probe is not None:
            self.split.verify(probe)
        names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
        targets = [t for t in TARGETS if t in names]
        torch.manual_seed(settings.seed)
        def config(**where: Any) -> Any:
            return LoraConfig(r=settings.rank, lora_alpha=settings.alpha, lora_dropout=settings.dropout, bias="none", **where)

        if self.split.split and targets:
            k = self.split.n_layers - self.split.start
            self.peft = get_peft_model(self.split.top, config(target_modules=targets, layers_to_transform=list(range(k)),
                                                              layers_pattern="layers"))
            # What the saved adapter says: the same LoRA, on layers start..n-1 of the whole model.
            self.saved_config = config(target_modules=targets, layers_to_transform=list(range(self.split.start, self.split.n_layers)),
                                       layers_pattern="layers")
        else:
            self.split.top, self.split.start = None, 0
            self.saved_config = config(task_type="CAUSAL_LM")  # peft's default target modules for the architecture
            self.peft = get_peft_model(model, self.saved_config)
        self.peft.eval()

    @property
    def adapted_layers(self) -> list[int]:
        n = self.split.n_layers or 0
        return list(range(self.split.start, n))

    def params(self) -> list[Any]:
        return [p for p in self.peft.parameters() if p.requires_grad]

    @property
    def trainable_params(self) -> int:
        return sum(p.numel() for p in self.params())

    def reset(self, seed: int | None = None) -> None:
        """Fresh LoRA weights (B = 0: the model is the base model again)."""
        import torch
        from peft.tuners.lora import LoraLayer

        torch.manual_seed(self.settings.seed if seed is None else seed)
        for m in self.peft.modules():
            if isinstance(m, LoraLayer):
                m.reset_lora_parameters("default", True)

    def cache(self, examples: Sequence[Example], progress: bool = False, desc: str = "frozen layers") -> list[Any]:
        """The frozen part's output for each example's prompt + answer (computed once)."""
        from tqdm import tqdm

        return [self.split.bottom(e.prompt_ids + e.answer_ids) for e in tqdm(examples, desc=desc, disable=not progress, unit="item")]

    def loss(self, example: Example, cached: Any) -> Any:
        """Cross-entropy of the answer given the prompt (teacher forcing).

        With choice points, each is a softmax over the tokens the constraint allows
        there, as the greedy constrained decoder sees it: the forced tokens (brackets,
        quotes, the rest of a name) carry no loss, and the model's capacity goes to the
        decisions (which tag, in which order, when to stop). Without them, plain
        next-token cross-entropy over the whole vocabulary.
        """
        import torch
        import torch.nn.functional as F

        P, A = len(example.prompt_ids), len(example.answer_ids)
        hidden = self.split.hidden(cached)
        head = self.split.head()
        if not example.choices:
            logits = head(hidden[P - 1:P + A - 1]).float()
            return F.cross_entropy(logits, torch.tensor(example.answer_ids, device=logits.device))
        rows = torch.tensor([P - 1 + j for j, _ in example.choices], device=hidden.device)
        logits = head(hidden[rows]).float()
        losses = []
        for c, (j, kept) in enumerate(example.choices):
            ids = torch.tensor(kept, device=logits.device)
            gold = kept.index(example.answer_ids[j])
            losses.append(F.cross_entropy(logits[c, ids][None], torch.tensor([gold], device=logits.device)))
        return torch.stack(losses).mean()

    def choice_accuracy(self, examples: Sequence[Example], cached: Sequence[Any]) -> dict[str, float]:
        """Teacher-forced constrained argmax against gold: per choice point, on the first
        tag, and whole answers (a cheap held-out proxy for greedy decoding)."""
        import torch

        hit = total = first = answers = 0
        with torch.no_grad():
            for e, c in zip(examples, cached):
                if not e.choices:
                    continue
                P = len(e.prompt_ids)
                hidden = self.split.hidden(c)
                rows = torch.tensor([P - 1 + j for j, _ in e.choices])
                logits = self.split.head()(hidden[rows]).float()
                ok_all = True
                for k, (j, kept) in enumerate(e.choices):
                    ok = kept[int(logits[k, torch.tensor(kept)].argmax())] == e.answer_ids[j]
                    hit += ok
                    total += 1
                    ok_all &= ok
                    if j == 1:  # the first tag's first token, right after '["'
                        first += ok
                answers += ok_all
        n = max(1, sum(1 for e in examples if e.choices))
        return {"choice": hit / max(1, total), "first": first / n, "answer": answers / n}

    def fit(self, examples: Sequence[Example], cached: Sequence[Any], progress: bool = False,
            on_epoch: Callable[[int, float], None] | None = None) -> list[float]:
        """Train for ``settings.epochs``; returns the mean loss of each epoch."""
        import torch
        from tqdm import tqdm

        s = self.settings
        params = self.params()
        opt = torch.optim.AdamW(params, lr=s.lr, weight_decay=0.0)
        total = max(1, math.ceil(len(examples) / s.accumulate) * s.epochs)
        warm = max(1, int(total * s.warmup))
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: min((step + 1) / warm, max(0.0, (total - step) / max(1, total - warm))))
        rng = random.Random(s.seed)
        torch.manual_seed(s.seed)
        losses = []
        self.peft.train()
        try:
            bar = tqdm(total=len(examples) * s.epochs, desc="training", disable=not progress, unit="item")
            for epoch in range(s.epochs):
                order = list(range(len(examples)))
                rng.shuffle(order)
                run = 0.0
                for j, i in enumerate(order):
                    loss = self.loss(examples[i], cached[i])
                    (loss / s.accumulate).backward()
                    run += loss.item()
                    if (j + 1) % s.accumulate == 0 or j == len(order) - 1:
                        torch.nn.utils.clip_grad_norm_(params, 1.0)
                        opt.step()
                        sched.step()
                        opt.zero_grad(set_to_none=True)
                    bar.update(1)
                    bar.set_postfix(epoch=epoch + 1, loss=f"{run / (j + 1):.3f}")
                losses.append(run / max(1, len(order)))
                if on_epoch:
                    on_epoch(epoch, losses[-1])
            bar.close()
        finally:
            self.peft.eval()
        return losses

    def mean_loss(self, examples: Sequence[Example], cached: Sequence[Any]) -> float:
        import torch

        with torch.no_grad():
            return sum(self.loss(e, c).item() for e, c in zip(examples, cached)) / max(1, len(examples))

    def save(self, out: Path, base_name: str) -> None:
        """Write ``adapter_config.json`` and ``adapter_model.safetensors`` for the whole model."""
        from peft import get_peft_model_state_dict
        from safetensors.torch import save_file

        out.mkdir(parents=True, exist_ok=True)
        state = get_peft_model_state_dict(self.peft)
        if self.split.split:
            shift = self.split.start
            state = {re.sub(r"\.layers\.(\d+)\.", lambda m: f".layers.{int(m.group(1)) + shift}.", k): v for k, v in state.items()}
        save_file({k: v.detach().contiguous().cpu() for k, v in sorted(state.items())}, str(out / "adapter_model.safetensors"),
                  metadata={"format": "pt"})
        cfg = self.saved_config.to_dict()
        cfg["base_model_name_or_path"] = base_name
        cfg["peft_type"] = "LORA"
        cfg = {k: (sorted(v) if isinstance(v, set) else v) for k, v in cfg.items()}
        (out / "adapter_config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True, default=str) + "\n")
