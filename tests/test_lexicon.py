from engine.lexicon import Lexicon, segment_readme
from engine.rules import load_pack
from engine.taxonomy import Taxonomy

README = """# Kubectl Lens

[![build](https://img.shields.io/badge/build-passing-green.svg)](https://ci.example)

A terminal UI to explore your Kubernetes clusters and Helm charts.

## Install

```
brew install kubelens
```

## License

MIT, see LICENSE. Built with React for the docs site.
"""


def test_segments():
    doc = segment_readme(README)
    kinds = {doc.text[s.start:s.end].strip()[:20]: s.kind for s in doc.segments if doc.text[s.start:s.end].strip()}
    assert doc.title == "Kubectl Lens"
    assert kinds["# Kubectl Lens"] == "title"
    assert kinds["A terminal UI to exp"] == "tagline"
    assert kinds["brew install kubelen"] == "code"
    assert kinds["[![build](https://im"] == "boilerplate"
    assert kinds["MIT, see LICENSE. Bu"] == "boilerplate"


def test_candidates_carry_evidence(taxonomy):
    lex = Lexicon(load_pack(), taxonomy)
    cands = lex.propose(README)
    top = [c.tag for c in cands[:3]]
    assert "k8s" in top and "terminal" in top
    k8s = next(c for c in cands if c.tag == "k8s")
    for e in k8s.evidence:
        assert README[e.start:e.end] == e.text
    assert any(e.section == "tagline" for e in k8s.evidence)
    react = next((c for c in cands if c.tag == "react"), None)
    assert react is None or react.score < 0.2


def test_fuzzy_names_and_unknown_tags():
    tax = Taxonomy.from_names(["database", "web assembly tools", "zebra-crossing"])
    lex = Lexicon(load_pack(), tax)
    cands = {c.tag: c for c in lex.propose("A fast Postgress proxy. Compiles to Web Assembly. Zebra crossings everywhere.")}
    assert any(e.rule.startswith("fuzzy:") for e in cands["database"].evidence)
    assert "zebra-crossing" in cands  # unknown to the pack: its own name still counts


def test_fuzzy_hits_sit_on_the_words_finditer_finds():
    """The C-level word walk gives the offsets a plain ``finditer`` walk gives."""
    from engine.lexicon.fuzzy import _WORD, FuzzyNames
    from engine.lexicon.matchers import TermInfo

    info = TermInfo("database", "alias", "postgres", 1.0, None)
    text = "Postgress: a proxy.\nUse postgress-tools, or kubernets (c++) with postgress  rocks; postgress."
    spans = [(0, 19), (20, len(text))]
    hits = FuzzyNames([("postgres", info), ("kubernetes", info), ("postgres rocks", info)]).hits(text, spans)
    words = {(m.start(), m.end()) for s, e in spans for m in _WORD.finditer(text, s, e)}
    got = sorted((h.start, h.end, h.term.label) for h in hits)
    assert got and all(" ".join(text[a:b].lower().split()) == label.split("~")[0] for a, b, label in got)
    singles = [(a, b) for a, b, label in got if " " not in label.split("~")[0]]
    assert set(singles) <= words
    postgress = [(a, b) for a, b, label in got if label == "postgress~postgres"]
    assert len(postgress) == 3  # four in the text, at most three positions per query
    assert any(label.startswith("postgress rocks~") for _, _, label in got)  # word pairs too


def test_fuzzy_lookup_by_first_letter_finds_what_scoring_every_name_finds():
    """Queries are scored only against names that share their first letter: the near
    misses, their names' order and scores are those of scoring the whole vocabulary."""
    import random

    from rapidfuzz import fuzz, process

    from engine.lexicon.fuzzy import CUTOFF, FuzzyNames
    from engine.lexicon.matchers import TermInfo

    rng = random.Random(7)
    letters = "abcdeknpst"

    def word(n: int) -> str:
        return "".join(rng.choice(letters) for _ in range(n))

    names = sorted({word(rng.randint(5, 10)) for _ in range(300)})
    names += [n[:-1] + "z" for n in names[:40]] + ["web assembly", "post gres"]
    fuzzy = FuzzyNames([(n, TermInfo("t", "alias", n, 1.0, None)) for n in names])
    queries = {word(rng.randint(3, 11)) for _ in range(2000)} | {n[:-1] for n in names} | {n + "s" for n in names}
    queries |= {"webassembly", "postgres", "x"}
    got = fuzzy._lookup(queries)
    matrix = process.cdist(sorted(queries), fuzzy.choices, scorer=fuzz.ratio, score_cutoff=CUTOFF, workers=1)
    want = {}
    for r, q in enumerate(sorted(queries)):
        found = tuple((c, s) for c in range(len(fuzzy.choices))
                      if (s := FuzzyNames._accept(q, fuzzy.choices[c], float(matrix[r, c]) / 100.0)))
        if found:
            want[q] = found
    assert got == want and len(want) > 100


def test_addresses_are_no_evidence_but_words_beside_them_are():
    tax = Taxonomy.from_names(["http", "k8s"])
    lex = Lexicon(load_pack(), tax)
    text = ("# Tool\n\nSend HTTP requests (see https://example.org/http/kubernetes-guide) "
            "and [kubernetes](https://k8s.example/http) docs.\n")
    cands = {c.tag: c for c in lex.propose(text)}
    for c in cands.values():
        for e in c.evidence:
            assert "://" not in text[max(0, e.start - 30):e.end] or text[e.start:e.end] in ("HTTP", "HTTP requests", "kubernetes")
            assert text[e.start:e.end] == e.text
    assert {e.text for e in cands["http"].evidence} >= {"HTTP"}
    assert {e.text for e in cands["k8s"].evidence} == {"kubernetes"}


def test_negative_phrases_veto():
    tax = Taxonomy.from_names(["server", "editor"])
    lex = Lexicon(load_pack(), tax)
    cands = {c.tag: c for c in lex.propose("A modal text editor with built-in language server support.")}
    assert "server" not in cands or cands["server"].score == 0
    assert cands["server"].vetoed[0].vetoed_by == "language server"


def test_tokens_keep_exact_offsets_across_newlines_and_symbols():
    from engine.lexicon.nlp import get_nlp, token_offsets

    text = "use c++  and\n\nnode.js,  c# \t(or don't)"
    doc = get_nlp()(text)
    words = [text[s:e] for s, e in zip(*token_offsets(doc))]
    assert words == [t.text for t in doc] == ["use", "c++", "and", "node.js", ",", "c#", "(", "or", "don't", ")"]


def test_required_literals():
    """Sets of strings, one of each in every match (that nothing is skipped wrongly is
    checked on real texts below)."""
    from engine.lexicon.prefilter import required_literals

    assert required_literals(r"cargo\s+add\s+\w") == (frozenset({"cargo"}), frozenset({"add"}))
    assert required_literals(r"(?:brew|npm\s+i)\s+x") == (frozenset({"brew", "npm"}), frozenset({"x"}))
    assert required_literals(r"(?:x|\w+)y|z") == (frozenset({"y", "z"}),)
    assert required_literals(r"(?i)Foo") == () and required_literals(r"a(?i:B)c") == (frozenset({"a"}), frozenset({"c"}))
    assert required_literals(r"\w+") == ()


def _spans(rx, text):
    return [m.span() for m in rx.finditer(text)] if rx is not None else []


def test_alternatives_whose_words_are_absent_are_left_out():
    import re

    from engine.lexicon.prefilter import Prefiltered

    top = Prefiltered(r"<dependency>|\bimplementation\s*\(|^\s*use\s+\w+", re.MULTILINE)
    assert top.for_text("  use serde;").pattern == r"^\s*use\s+\w+"
    assert top.for_text("nothing here") is None
    nested = Prefiltered(r"(?:^|\s)(?:brew|cargo|npm\s+i)\s+install(?!\s+--cask|\s+-g)\b", re.MULTILINE)
    assert nested.for_text("run cargo install x").pattern == r"(?:^|\s)(?:cargo)\s+install(?!(?!))\b"
    # A negative lookahead whose options are all absent still lets everything through.
    for text in ("run cargo install x", "brew install --cask y; npm i install -g", "cargo install\nbrew install -g"):
        assert _spans(nested.for_text(text), text) == _spans(nested.regex, text)
    # An empty option left alone still matches (the group does not become "never").
    empty = Prefiltered(r"foo(?:bar|)baz|qux")
    assert empty.for_text("a foobaz").pattern == r"foo(?:)baz" and _spans(empty.for_text("a foobaz"), "a foobaz") == [(2, 8)]
    # What cannot be cut safely is prefiltered as a whole only.
    for pattern, text in ((r"(a|b)c\1", "aca"), (r"(?i:ab|cd)x", "ABx"), (r"(?P<w>ab|cd)-(?P=w)", "ab-ab")):
        pre = Prefiltered(pattern)
        assert pre.for_text(text) is pre.regex and _spans(pre.regex, text)
    assert Prefiltered(r"(?i)ab|cd").for_text("AB").pattern == r"(?i)ab|cd"


def test_a_name_template_finds_what_the_regex_written_for_the_name_finds():
    """``{name}`` put in after the template was parsed: the same matches as the
    pattern written out for those names, names with regex metacharacters included."""
    import re

    from engine.lexicon import prefilter
    from engine.lexicon.prefilter import NameTemplate, Prefiltered

    templates = [
        r"(?:pip3?|uv)\s+install\s+{name}\b(?!\s*-)|npm\s+i\s+@?{name}\b",
        r"^\s*(?:import\s+{name}\b|use\s+{name}(?:::|;)|#include\s+[<\"]{name})",
        r"go\s+get\s+\S*/{name}\b|cargo\s+add\s+{name}\b",
        r"\b{name}-{name}\b",
        r"run\s+{name}?x",  # a quantified name: prepared per project, as before
        r"\binstall\s+\w+\b(?!\s+{name})",  # no gate: any word would refuse "install foo bar"
        r"x[{name}]y|\[{name}\]",  # no gate inside a class (nonsense, but a pack may say it)
    ]
    texts = [
        "pip install c++ and npm i @node.js\nimport c++\nuse c++::x", "uv install foo-bar -x\ncargo add foo_bar",
        "go get github.com/a/foo_bar now\n  #include <c++>", "foo_bar-foo-bar and c++-c++", "run x; run c++x",
        "nothing of the kind", "pip install other", "install foo bar", "x(y and [c++]",
    ]
    for names in (("c++", "node.js"), ("foo-bar", "foo_bar"), ("x",)):
        for template in map(NameTemplate, templates, [re.MULTILINE] * len(templates)):
            written = Prefiltered(template.template.replace("{name}", "(?:" + "|".join(map(re.escape, names)) + ")"), re.MULTILINE)
            for text in texts:
                derived = template.for_names(names)  # one per README, as in the lexicon
                assert derived.pattern == written.pattern
                assert _spans(derived.for_text(text), text) == _spans(written.regex, text), (template.template, names, text)
    # A gate out of time lets the project's own regex compile and scan: the same matches.
    prefilter.GATE_TIMEOUT_S, was = 0.0, prefilter.GATE_TIMEOUT_S
    try:
        for template in map(NameTemplate, templates, [re.MULTILINE] * len(templates)):
            for text in texts:
                written = Prefiltered(template.template.replace("{name}", "(?:c\\+\\+)"), re.MULTILINE)
                assert _spans(template.for_names(("c++",)).for_text(text), text) == _spans(written.regex, text)
    finally:
        prefilter.GATE_TIMEOUT_S = was
    # A text without the name, or without the template's other words, is not scanned.
    pip = NameTemplate(templates[0]).for_names(("c++",))
    assert pip.for_text("pip install other") is None and pip.for_text("c++ is a language") is None


def test_cut_regexes_find_what_the_whole_regexes_find():
    """Exactly the same matches, for every default-pack regex (``{name}`` ones too), on
    every rule example and every dev README (when ``../shared`` is there)."""
    import json
    import re

    from engine.lexicon.matchers import lowered_pattern, project_names
    from engine.lexicon.nlp import lower_same_length
    from engine.lexicon.prefilter import NameTemplate, Prefiltered
    from tests.conftest import SHARED

    pack = load_pack()
    texts = [README] + [t for r in pack.rules.values() for t in r.examples.match + r.examples.no_match]
    if (SHARED / "dev.jsonl").exists():
        texts += [json.loads(line)["text"] for line in (SHARED / "dev.jsonl").read_text(encoding="utf-8").splitlines()]
    patterns = [lowered_pattern(t.pattern) for r in pack.rules.values() for t in r.regexes]
    fixed = [Prefiltered(p, re.MULTILINE) for p in patterns if "{name}" not in p]
    templates = [NameTemplate(p, re.MULTILINE) for p in patterns if "{name}" in p]
    cut = matched = 0
    for text in map(lower_same_length, texts):
        # ``{name}`` regexes as the lexicon makes them: prepared once, names put in.
        named = [t.for_names(tuple(project_names(segment_readme(text).title) or ["x"])) for t in templates]
        for pre in fixed + named:
            rx = pre.for_text(text)
            assert _spans(rx, text) == _spans(pre.regex, text), (pre.pattern, text[:80])
            # The scanning engine (``regex``, for its time budget) finds what ``re`` finds.
            assert _spans(pre.regex, text) == _spans(re.compile(pre.pattern, re.MULTILINE), text), (pre.pattern, text[:80])
            cut += rx is not None and rx is not pre.regex
            matched += bool(_spans(rx, text))
    assert cut >= 100 and matched >= 50  # (the rule examples alone: 275 cut, 63 matched)


def test_ascii_phrases_matched_on_lemmas_alone_find_what_matching_both_ways_found(taxonomy, monkeypatch):
    """A phrase the lemma matcher has is matched on its surface form too only when it
    is not ASCII (``_surface_needed``): the matches, in order, are those of matching
    every phrase both ways. The default pack's phrases and names with inflections,
    symbols and characters whose case changes length, over the rule examples, a text
    written for those, and the dev READMEs (when ``../shared`` is there)."""
    import json

    from engine.lexicon import matchers
    from engine.lexicon.nlp import get_nlp, lower_same_length
    from tests.conftest import SHARED

    pack = load_pack()
    names = ["İstanbul maps", "straße tools", "Café Tools", "c++ builds", "helm charts", "node.js crossing", "ai models"]
    tax = Taxonomy.from_names([*taxonomy.names, *names])
    odd = ("İSTANBUL MAPS, i̇stanbul maps, istanbul maps; STRASSE tools, straße Tools; CAFÉ TOOLS, café tools; "
           "C++ Builds, c++ build; Helm Charts, helm chart; Node.js crossings, node.js crossing; AI models, ai model, has")
    texts = [README, odd] + [t for r in pack.rules.values() for t in r.examples.match + r.examples.no_match]
    if (SHARED / "dev.jsonl").exists():
        texts += [json.loads(line)["text"] for line in (SHARED / "dev.jsonl").read_text(encoding="utf-8").splitlines()]
    cut = matchers.CompiledRules(pack, tax)
    monkeypatch.setattr(matchers, "_surface_needed", lambda pattern, by_lemma: True)
    both = matchers.CompiledRules(pack, tax)
    assert len(cut.surface) < len(both.surface) // 10
    nlp, seen = get_nlp(), 0
    for text in texts:
        doc = nlp(lower_same_length(text))
        found = list(dict.fromkeys([*cut.phrases(doc), *cut.surface(doc)]))
        assert found == list(dict.fromkeys([*both.phrases(doc), *both.surface(doc)])), text[:80]
        seen += len(found)
    assert seen >= 200


def test_a_token_pattern_reads_its_attributes_on_words_met_before_and_after(tmp_path):
    """New words get LOWER only (``engine/lexicon/nlp.py``); a pack whose token
    patterns read flags and shapes brings those back, for words the vocabulary met
    before the pack was compiled as for new ones."""
    from engine.lexicon.nlp import get_nlp

    before = "release 20250731 of qx9 sensors"
    get_nlp()(before)  # its words met now (with LOWER only, unless a pack brought more back)
    (tmp_path / "p.yaml").write_text(
        "rules:\n  - tag: iot\n    patterns:\n      - pattern: [{IS_DIGIT: true}, {LOWER: of}]\n"
        "      - pattern: [{SHAPE: xxd}, {LEMMA: sensor}]\n", encoding="utf-8")
    lex = Lexicon(load_pack(tmp_path), Taxonomy.from_names(["iot"]))
    for text, words in ((before, {"20250731 of", "qx9 sensors"}), ("build 77123456 of zq4 sensors", {"77123456 of", "zq4 sensors"})):
        (iot,) = lex.propose(text)
        assert {e.text for e in iot.evidence} == words
    assert get_nlp()(before)[1].is_digit


def test_the_collector_comes_back_as_it_was(taxonomy):
    """The lexicon pauses the cyclic collector per README (a speed measure): whatever
    the caller had, enabled or disabled, is what the caller gets back, errors included."""
    import gc

    from engine.lexicon import proposer

    lex = Lexicon(load_pack(), taxonomy)
    was = gc.isenabled()
    try:
        for state in (True, False):
            (gc.enable if state else gc.disable)()
            assert lex.propose(README)
            assert gc.isenabled() is state
            with proposer._collector_paused():
                with proposer._collector_paused():
                    assert not gc.isenabled()
                assert not gc.isenabled()
            assert gc.isenabled() is state
        gc.enable()
        try:
            lex.propose(None)  # type: ignore[arg-type]
        except Exception:
            pass
        assert gc.isenabled()
    finally:
        (gc.enable if was else gc.disable)()
