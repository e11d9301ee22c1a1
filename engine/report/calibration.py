"""Confidence of a chosen tag, and how well confidences match reality.

Confidence blends the rule score (how strong the lexical evidence is) with the
model's constrained probability when a model took part. ``reliability`` buckets
chosen tags by confidence and compares each bucket's mean confidence with the share
of its tags that are in gold; ECE is the weighted gap.
"""
from __future__ import annotations

from dataclasses import dataclass

MODEL_SHARE = 0.3  # weight of the model's probability in the (geometric) blend


def confidence(rule_score: float, model_prob: float | None) -> float:
    """In [0, 1]: the rule score, tempered by the model's probability if there is one."""
    r = min(max(rule_score, 0.0), 1.0)
    if model_prob is None:
        return round(r, 4)
    m = min(max(model_prob, 1e-6), 1.0)
    return round((r ** (1 - MODEL_SHARE)) * (m ** MODEL_SHARE), 4)


@dataclass(frozen=True)
class Bucket:
    low: float
    high: float
    count: int
    mean_confidence: float
    precision: float


def reliability(pairs: list[tuple[float, bool]], bins: int = 5) -> tuple[list[Bucket], float]:
    """(buckets, expected calibration error) for (confidence, correct) pairs."""
    buckets: list[Bucket] = []
    ece = 0.0
    n = len(pairs)
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        inside = [(c, ok) for c, ok in pairs if lo <= c < hi or (b == bins - 1 and c == 1.0)]
        if not inside:
            buckets.append(Bucket(lo, hi, 0, 0.0, 0.0))
            continue
        mc = sum(c for c, _ in inside) / len(inside)
        prec = sum(ok for _, ok in inside) / len(inside)
        ece += len(inside) / n * abs(mc - prec)
        buckets.append(Bucket(lo, hi, len(inside), mc, prec))
    return buckets, ece


def format_reliability(buckets: list[Bucket], ece: float) -> str:
    lines = [f"calibration: ECE={ece:.3f}", f"{'confidence':<12} {'tags':>5} {'mean conf':>9} {'precision':>9}"]
    for b in buckets:
        lines.append(f"{b.low:.1f}-{b.high:.1f}     {b.count:>5} {b.mean_confidence:>9.2f} {b.precision:>9.2f}")
    return "\n".join(lines)
