"""Write a learned pack as YAML a person can review: one rule per tag, each term with
its provenance in a comment, Linguist-style examples, and a header saying how it was
made. The file loads with the ordinary loader and schema (``tagsmith rules check``)."""
from __future__ import annotations

import json
from pathlib import Path

from engine.mining.learn import LearnedPack

FILE = "learned.yaml"


def _s(text: str) -> str:
    """A YAML scalar (JSON strings are valid YAML flow scalars)."""
    return json.dumps(text, ensure_ascii=False)


def render(pack: LearnedPack, source: str, extends: str | None = None, examples: str = "texts") -> str:
    """The pack's YAML. ``examples``: ``texts`` (a line of one of the tag's own READMEs
    for ``match``) or ``written`` (a sentence made from the term, for packs that must
    not carry third-party text)."""
    st = pack.settings
    out = [
        f"# Learned by `tagsmith rules learn` from {pack.items} labelled READMEs ({source}"
        + (f", sha256 {pack.data_sha256}" if pack.data_sha256 else "") + ").",
        "# Per term: support = the tag's READMEs that contain it; precision = the share of READMEs containing it",
        f"# that carry the tag (smoothed toward the tag's base rate). Candidates: support >= {st.get('min_support')}, "
        f"precision >= {st.get('lift')} x base rate.",
        ("# weight = the term's coefficient in a logistic regression of the tag on term presence (all terms together),"
         f" at most {st.get('weight')}; the {st.get('max_terms')} largest per tag."
         if st.get("method") == "logistic" else
         f"# weight = {st.get('weight')} x precision; the {st.get('max_terms')} most informative per tag."),
        "# Edit freely: delete a term, change a weight, add your own; `tagsmith rules test` runs the examples.",
        "version: 1",
        f"learned_from: {_s(f'{pack.items} labelled READMEs ({source}' + (f', sha256 {pack.data_sha256}' if pack.data_sha256 else '') + ')')}",
    ]
    if extends:
        out.append(f"extends: {_s(extends)}")
    out.append("rules:")
    for r in pack.rules:
        if not r.terms:
            continue
        out.append(f"  - tag: {_s(r.tag)}  # {r.positives} labelled READMEs")
        out.append("    phrases:")
        for t in r.terms:
            ex = f"; e.g. {', '.join(t.examples)}" if t.examples else ""
            out.append(f"      - {{text: {_s(t.text)}, weight: {t.weight}}}  # support {t.support}/{r.positives}, "
                       f"in {t.df} READMEs, precision {t.precision:.2f}{ex}")
        if r.negatives:
            out.append("    negatives:")
            for ng in r.negatives:
                out.append(f"      - {_s(ng.text)}  # in {ng.df} READMEs, precision {ng.precision:.2f}; vetoes {ng.vetoes} false hits")
        match = r.match_example if examples == "texts" and r.match_example else f"A project about {r.terms[0].text}."
        out.append("    examples:")
        out.append(f"      match: [{_s(match)}]")
    return "\n".join(out) + "\n"


def write(pack: LearnedPack, folder: str | Path, source: str, extends: str | None = None, examples: str = "texts") -> Path:
    """Write ``folder/learned.yaml`` (the folder is made); returns the file."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / FILE
    path.write_text(render(pack, source, extends, examples), encoding="utf-8")
    return path
