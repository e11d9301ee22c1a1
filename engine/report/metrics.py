"""Accuracy of answers against gold tags: the numbers ``tagsmith eval`` prints."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Metrics:
    n: int = 0
    micro_p: float = 0.0
    micro_r: float = 0.0
    micro_f1: float = 0.0
    macro_f1: float = 0.0
    top1: float = 0.0  # first predicted tag is in gold
    exact: float = 0.0  # predicted set == gold set
    per_tag: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return self.__dict__.copy()


def score(gold: list[list[str]], pred: list[list[str]]) -> Metrics:
    tp, fp, fn = Counter(), Counter(), Counter()
    top1 = exact = 0
    for g, p in zip(gold, pred, strict=True):
        gs, ps = set(g), set(p)
        for t in ps & gs:
            tp[t] += 1
        for t in ps - gs:
            fp[t] += 1
        for t in gs - ps:
            fn[t] += 1
        top1 += bool(p) and p[0] in gs
        exact += gs == ps
    TP, FP, FN = sum(tp.values()), sum(fp.values()), sum(fn.values())
    P = TP / (TP + FP) if TP + FP else 0.0
    R = TP / (TP + FN) if TP + FN else 0.0
    per_tag = {}
    for t in sorted(set(tp) | set(fp) | set(fn)):
        p = tp[t] / (tp[t] + fp[t]) if tp[t] + fp[t] else 0.0
        r = tp[t] / (tp[t] + fn[t]) if tp[t] + fn[t] else 0.0
        f = 2 * p * r / (p + r) if p + r else 0.0
        per_tag[t] = {"precision": p, "recall": r, "f1": f, "support": tp[t] + fn[t], "predicted": tp[t] + fp[t]}
    gold_tags = [t for t in per_tag if per_tag[t]["support"] > 0]
    n = len(gold)
    return Metrics(
        n=n, micro_p=P, micro_r=R, micro_f1=2 * P * R / (P + R) if P + R else 0.0,
        macro_f1=sum(per_tag[t]["f1"] for t in gold_tags) / len(gold_tags) if gold_tags else 0.0,
        top1=top1 / n if n else 0.0, exact=exact / n if n else 0.0, per_tag=per_tag,
    )


def format_metrics(m: Metrics, label: str = "", per_tag: bool = True) -> str:
    lines = [
        f"{label}n={m.n} micro-P={m.micro_p:.3f} micro-R={m.micro_r:.3f} micro-F1={m.micro_f1:.3f} "
        f"macro-F1={m.macro_f1:.3f} top-1={m.top1:.3f} exact={m.exact:.3f}"
    ]
    if per_tag:
        lines.append(f"{'tag':<20} {'P':>6} {'R':>6} {'F1':>6} {'gold':>5} {'pred':>5}")
        for t, d in sorted(m.per_tag.items(), key=lambda kv: (kv[1]["f1"], -kv[1]["support"])):
            lines.append(f"{t!s:<20} {d['precision']:6.2f} {d['recall']:6.2f} {d['f1']:6.2f} {d['support']:5d} {d['predicted']:5d}")
    return "\n".join(lines)
