"""tagsmith as a spaCy pipeline component: ``nlp.add_pipe("tagsmith", config={...})``.

Registered through the ``spacy_factories`` entry point, so after ``pip install`` a user
never imports ``engine``. The component sets

- ``doc.cats``: every tag of the list → a confidence in [0, 1]; the chosen tags get the
  explanation's confidence and every other tag ranks below the lowest chosen one (the
  same rule-score × model-probability blend, capped), tags without evidence get 0;
- ``doc._.tags``: the ordered answer, names exactly as listed;
- ``doc._.tag_explanation``: the explanation (dict), as ``tagsmith tag --explain`` gives it.

``nlp.pipe(texts, batch_size=...)`` hands each batch of docs to ``Tagger.tag_many`` (the
batched decoder), not one doc at a time. ``nlp.to_disk`` writes the exact tag list, the
settings and a copy of the rule pack beside the pipeline; ``spacy.load`` reads them
back, so the saved pipeline answers the same on a machine without the original files.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Iterable, Iterator

from spacy.language import Language
from spacy.tokens import Doc

from engine.api import Tagger, TagResult
from engine.report.calibration import confidence
from engine.report.explanation import first_mass, model_scores
from engine.taxonomy import Taxonomy

for _attr in ("tags", "tag_explanation"):
    if not Doc.has_extension(_attr):
        Doc.set_extension(_attr, default=None)

DEFAULT_CONFIG: dict[str, Any] = {"taxonomy": None, "mode": "hybrid", "max_tags": 3, "rules": None, "model": None,
                                  "adapter": "default", "batch_size": None, "dtype": None, "constraint": "direct"}


def cats_of(result: TagResult, taxonomy: Taxonomy) -> dict[str, float]:
    """Every tag's confidence, the chosen ones above all others."""
    exp = result.explanation
    cats = {name: 0.0 for name in taxonomy.names}
    chosen = {c.tag: c.confidence for c in exp.chosen}
    floor = min(chosen.values(), default=1.0)
    steps = exp.decision.get("steps") or []
    label, head = model_scores(exp.decision)
    for cand in exp.candidates:
        tag = cand["tag"]
        if tag in chosen or tag not in cats:
            continue
        # A decision head's probability is already a calibrated confidence.
        conf = head.get(tag, 0.0) if label == "head probability" else confidence(cand["score"], first_mass(steps, tag))
        cats[tag] = round(min(conf, floor * 0.99), 4)
    # Chosen tags are written last so they come first in rank order, best first.
    cats.update({t: chosen[t] for t in result.tags})
    return dict(sorted(cats.items(), key=lambda kv: -kv[1]))


class TagsmithComponent:
    """The pipeline component: tags each doc's text (the README) with the configured list."""

    def __init__(self, nlp: Language, name: str, taxonomy: Any, mode: str, max_tags: int, rules: str | None, model: str | None,
                 adapter: str | None, batch_size: int | None, dtype: str | None = None,
                 constraint: str = "direct") -> None:
        self.name = name
        self.cfg: dict[str, Any] = {"taxonomy": taxonomy, "mode": mode, "max_tags": max_tags, "rules": rules, "model": model,
                                    "adapter": adapter, "batch_size": batch_size, "dtype": dtype, "constraint": constraint}
        self._tagger: Tagger | None = None
        self._taxonomy: Taxonomy | None = None

    # -- lazily built: spacy.load calls the factory with the saved config, then from_disk
    # replaces the list and the pack with the copies saved beside the pipeline.
    @property
    def taxonomy(self) -> Taxonomy:
        if self._taxonomy is None:
            spec = self.cfg["taxonomy"]
            if spec is None:
                from engine.errors import E_TAXONOMY, TagsmithError

                raise TagsmithError(E_TAXONOMY, "the tagsmith component needs a taxonomy: config={'taxonomy': 'tax.json'}", field="taxonomy")
            self._taxonomy = Taxonomy.from_names(spec) if isinstance(spec, (list, tuple)) else Taxonomy.load(spec)
        return self._taxonomy

    @property
    def tagger(self) -> Tagger:
        if self._tagger is None:
            c = self.cfg
            self._tagger = Tagger(c["rules"], mode=c["mode"], model=c["model"], adapter=c["adapter"], batch_size=c["batch_size"],
                                  dtype=c.get("dtype"), constraint=c.get("constraint") or "direct")
        return self._tagger

    def use_tagger(self, tagger: Tagger) -> None:
        """Share an already built ``Tagger`` (e.g. one model across pipelines)."""
        self._tagger = tagger

    def __call__(self, doc: Doc) -> Doc:
        return next(self.pipe([doc]))

    def pipe(self, docs: Iterable[Doc], batch_size: int = 64) -> Iterator[Doc]:
        batch: list[Doc] = []
        for doc in docs:
            batch.append(doc)
            if len(batch) >= batch_size:
                yield from self._tag(batch)
                batch = []
        if batch:
            yield from self._tag(batch)

    def _tag(self, docs: list[Doc]) -> list[Doc]:
        tax = self.taxonomy
        results = self.tagger.tag_many([{"id": None, "text": d.text} for d in docs], taxonomy=tax, max_tags=self.cfg["max_tags"])
        for doc, res in zip(docs, results):
            doc.cats = cats_of(res, tax)
            doc._.tags = list(res.tags)
            doc._.tag_explanation = res.explanation.to_dict()
        return docs

    # -- serialisation ------------------------------------------------------------
    def to_disk(self, path: str | Path, exclude: Iterable[str] = ()) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        cfg = dict(self.cfg, taxonomy=self.taxonomy.to_list(), rules="rules")
        (path / "cfg.json").write_text(json.dumps(cfg, ensure_ascii=False, indent=1), encoding="utf-8")
        dest, root = path / "rules", Path(self.tagger.pack.root)
        if dest.exists():
            shutil.rmtree(dest)
        dest.mkdir()
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml"))
        for f in files:  # the pack's YAML files, where the pack loader finds them
            target = dest / (f.name if f == root else f.relative_to(root))
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, target)

    def from_disk(self, path: str | Path, exclude: Iterable[str] = ()) -> "TagsmithComponent":
        path = Path(path)
        cfg = json.loads((path / "cfg.json").read_text(encoding="utf-8"))
        cfg["rules"] = str(path / "rules")
        self.cfg = cfg
        self._taxonomy = Taxonomy.from_names(cfg["taxonomy"])
        self._tagger = None
        return self


@Language.factory("tagsmith", default_config=DEFAULT_CONFIG)
def make_tagsmith(nlp: Language, name: str, taxonomy: Any, mode: str, max_tags: int, rules: str | None, model: str | None,
                  adapter: str | None, batch_size: int | None, dtype: str | None,
                  constraint: str = "direct") -> TagsmithComponent:
    return TagsmithComponent(nlp, name, taxonomy, mode, max_tags, rules, model, adapter, batch_size, dtype, constraint)
