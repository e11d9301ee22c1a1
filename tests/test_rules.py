from pathlib import Path

import pytest

from engine.errors import TagsmithError
from engine.rules import load_pack
from engine.rules.examples import run_examples


def write(tmp_path: Path, body: str) -> Path:
    d = tmp_path / "pack"
    d.mkdir(exist_ok=True)
    (d / "x.yaml").write_text(body)
    return d


def error_of(tmp_path, body) -> TagsmithError:
    with pytest.raises(TagsmithError) as exc:
        load_pack(write(tmp_path, body))
    return exc.value


def test_default_pack_covers_the_taxonomy(taxonomy):
    pack = load_pack()
    missing = [t.name for t in taxonomy if pack.get(t.name) is None]
    assert missing == []


def test_every_default_rule_has_examples():
    pack = load_pack()
    bare = [r.tag for r in pack.rules.values() if not r.examples.match or not r.examples.no_match]
    assert bare == []


def test_default_pack_examples_pass():
    failures, total = run_examples(load_pack())
    assert total >= 180 and failures == []


def test_unknown_field_names_file_line_field(tmp_path):
    e = error_of(tmp_path, "version: 1\nrules:\n  - tag: cli\n    aliases: [cli]\n    wieght: 2\n")
    assert e.file.endswith("x.yaml") and e.line == 5 and e.field == "rules.0.wieght"


def test_bad_regex_is_reported(tmp_path):
    e = error_of(tmp_path, "rules:\n  - tag: cli\n    regexes:\n      - '([unclosed'\n")
    assert e.line == 4 and e.field.startswith("rules.0.regexes.0") and "regex" in e.message


def test_bad_weight(tmp_path):
    e = error_of(tmp_path, "rules:\n  - tag: cli\n    phrases:\n      - {text: x, weight: -1}\n")
    assert e.line == 4 and "weight" in e.field


def test_bad_token_pattern(tmp_path):
    e = error_of(tmp_path, "rules:\n  - tag: cli\n    patterns:\n      - pattern: [{NOTANATTR: x}]\n")
    assert e.code == "E300" and e.field == "rules.0.patterns.0.pattern" and e.line == 4


def test_yaml_syntax_error(tmp_path):
    e = error_of(tmp_path, "rules:\n  - tag: [cli\n")
    assert e.line is not None and "YAML" in e.message


def test_duplicate_tag_across_files(tmp_path):
    d = write(tmp_path, "rules:\n  - tag: cli\n")
    (d / "y.yaml").write_text("rules:\n  - tag: CLI\n")
    with pytest.raises(TagsmithError) as exc:
        load_pack(d)
    assert "already has a rule" in exc.value.message and exc.value.file.endswith("y.yaml")


def test_broken_rule_fails_its_examples(tmp_path):
    d = write(tmp_path, "rules:\n  - tag: cli\n    aliases: [command-line tool]\n    examples:\n      match: ['A terminal program.']\n      no_match: ['A command-line tool.']\n")
    failures, total = run_examples(load_pack(d))
    assert total == 2 and len(failures) == 2 and all("x.yaml:2: cli" in f for f in failures)


def test_rules_analyze_numbers(tmp_path):
    from engine.lexicon import Lexicon
    from engine.report.rule_analysis import analyze
    from engine.taxonomy import Taxonomy

    d = write(tmp_path, "rules:\n  - tag: cli\n    aliases: [command-line tool]\n    phrases: [terminal]\n  - tag: lib\n    aliases: [library]\n")
    lex = Lexicon(load_pack(d), Taxonomy.from_names(["cli", "lib"]))
    gold = [
        ("A command-line tool.", ["cli"]),
        ("A library you call from the terminal.", ["lib"]),
        ("A library.", ["lib"]),
        ("A command-line tool and a library.", ["cli"]),
    ]
    tags, terms = analyze(lex, gold)
    assert (tags["cli"].gold, tags["cli"].fires, tags["cli"].hits) == (2, 3, 2)
    assert (tags["lib"].gold, tags["lib"].fires, tags["lib"].hits) == (2, 3, 2)
    assert tags["cli"].conflicts["lib"] == 1 and tags["lib"].overlaps["cli"] == 2
    by_term = {(t.tag, t.term): t for t in terms}
    assert (by_term[("cli", "phrase:terminal")].fires, by_term[("cli", "phrase:terminal")].precision) == (1, 0.0)
    assert by_term[("cli", "alias:command-line tool")].precision == 1.0
    assert terms[0].precision == 0.0  # noisiest first


def test_schema_and_loader_agree(tmp_path):
    import json as _json

    import jsonschema
    import yaml

    from engine.rules.schema import RulePackFile

    schema = RulePackFile.model_json_schema()
    shipped = _json.loads((Path(__file__).parents[1] / "grammars" / "rulepack.schema.json").read_text())
    assert shipped == schema  # the file editors use is the loader's model
    good = "rules:\n  - tag: cli\n    phrases: [{text: command line, weight: 2}]\n"
    bad = "rules:\n  - tag: cli\n    phrases: [{text: command line, weight: 'heavy'}]\n    colour: red\n"
    jsonschema.validate(yaml.safe_load(good), schema)
    load_pack(write(tmp_path, good))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(yaml.safe_load(bad), schema)
    with pytest.raises(TagsmithError):
        load_pack(write(tmp_path, bad))
    for f in (Path(__file__).parents[1] / "rules" / "default").glob("*.yaml"):
        assert f.read_text().startswith("# yaml-language-server: $schema=../../grammars/rulepack.schema.json")
        jsonschema.validate(yaml.safe_load(f.read_text()), schema)


def test_admit_adds_a_common_tag_below_the_relative_cut(tmp_path):
    """`admit` lets a tag with a middling score join an answer that has room; without it
    the same scores give a one-tag answer. Scores come from the real lexicon."""
    from engine import Tagger

    body = ("rules:\n  - tag: parser\n    aliases: [parser]\n    weight: 3\n"
            "  - tag: lib\n    aliases: [library]\n    weight: 0.5\n{admit}")
    text = "Quickparse\n\nA fast parser for config files. Use the library from your code."
    answers = {}
    for admit in ("", "    admit: 0.2\n"):
        d = write(tmp_path, body.format(admit=admit))
        res = Tagger(d, mode="rules").tag(text, taxonomy=["parser", "lib", "cli"])
        lib = next(c for c in res.explanation.candidates if c["tag"] == "lib")
        answers[bool(admit)] = res.tags
        assert 0.2 <= lib["score"] < 0.8 * res.explanation.chosen[0].rule_score  # below the relative cut
    assert answers == {False: ["parser"], True: ["parser", "lib"]}
    e = error_of(tmp_path, "rules:\n  - tag: lib\n    admit: 1.5\n")
    assert e.line == 3 and e.field == "rules.0.admit"
