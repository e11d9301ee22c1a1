"""The answer language as printed for other runtimes: the regex Outlines compiles and
the JSON Schema accept exactly the answers tagsmith may give (repeats aside, which
only the schema's uniqueItems names and no engine enforces)."""
import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from engine.grammar import UNIQUE_NOTE, answer_regex, answer_schema
from engine.taxonomy import Taxonomy

NAMES = ["cli", "game-engine ", 'say "hi"', "a|b", "c++", "naïve\\"]


def answers(names, n):
    yield []
    for a in names:
        yield [a]
        for b in names:
            if b != a and n >= 2:
                yield [a, b]


@pytest.mark.parametrize("n", [1, 2, 3])
def test_regex_and_schema_accept_the_valid_answers(n):
    tax = Taxonomy.from_names(NAMES)
    rx = re.compile(answer_regex(tax, n))
    schema = answer_schema(tax, n)
    for ans in answers(NAMES, n):
        text = json.dumps(ans, ensure_ascii=False, separators=(",", ":"))
        assert rx.fullmatch(text), text
        jsonschema.validate(ans, schema)


def test_regex_and_schema_refuse_the_invalid_ones():
    tax = Taxonomy.from_names(NAMES)
    rx = re.compile(answer_regex(tax, 2))
    schema = answer_schema(tax, 2)
    bad = [["game-engine"], ["cli", "c++", "a|b"], ["CLI"], ["ab"]]  # unlisted spelling, a 3rd tag, case, a|b as regex
    for ans in bad:
        assert not rx.fullmatch(json.dumps(ans, ensure_ascii=False, separators=(",", ":"))), ans
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(ans, schema)
    with pytest.raises(jsonschema.ValidationError):  # repeats: the schema says so, the regex cannot
        jsonschema.validate(["cli", "cli"], schema)
    assert schema["uniqueItems"] is True and "enforce" in UNIQUE_NOTE


def test_grammar_command(tmp_path):
    (tmp_path / "t.json").write_text(json.dumps([{"id": i, "name": n} for i, n in enumerate(NAMES)]))
    root = Path(__file__).parents[1]

    def run(*a):
        return subprocess.run([sys.executable, "-m", "engine.cli", "grammar", "--taxonomy", str(tmp_path / "t.json"), *a],
                              capture_output=True, text=True, cwd=root)

    r = run("--max-tags", "2")
    assert r.returncode == 0 and re.fullmatch(r.stdout.strip(), '["game-engine ","a|b"]')
    s = run("--format", "json-schema")
    assert s.returncode == 0 and json.loads(s.stdout)["maxItems"] == 3 and json.loads(s.stdout)["items"]["enum"] == NAMES
    bad = run("--max-tags", "0")
    assert bad.returncode == 2 and "E101" in bad.stderr
