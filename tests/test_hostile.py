"""Untrusted rule packs and hostile input: nothing hangs, nothing crashes, nothing is lost."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine import Tagger, TagsmithError
from engine.rules import load_pack
from engine.rules.regex_safety import unsafe_reason
from tests.conftest import FIXTURES, ROOT

TAGSMITH = [sys.executable, "-m", "engine.cli"]
CATASTROPHIC = [r"(a+)+$", r"(\w+\s?)+$", r"(a|aa)+$", r"(x*)*y", r"(\d+)*$", r"(.*a){12}", r"(?:a+){2,}b", r"(a)\1",
                r"^(([a-z])+.)+[A-Z]([a-z])+$"]
SAFE = [r"(?:-\S+\s+)*x", r"(?:\.\w+)*", r"(?>a+)+$", r"a++b", r"(?:\w+\s+){0,3}dev", r"(?:ab)+", r"[a-z]+(?:-[a-z]+)*",
        r"\bfoo\s+bar\b", r"^\s*(?:\$\s*)?go\s+get\s+(?:-u\s+)?[\w.\-]+/"]


def _pack(tmp_path: Path, body: str, name: str = "pack.yaml") -> Path:
    d = tmp_path / "pack"
    d.mkdir(exist_ok=True)
    (d / name).write_text(body)
    return d


def _run(args, **kw):
    return subprocess.run(TAGSMITH + args, capture_output=True, text=True, cwd=ROOT, timeout=120, **kw)


@pytest.mark.parametrize("pattern", CATASTROPHIC)
def test_catastrophic_regexes_are_refused(pattern):
    assert unsafe_reason(pattern), pattern


@pytest.mark.parametrize("pattern", SAFE)
def test_safe_regexes_pass(pattern):
    assert unsafe_reason(pattern) is None, pattern


def test_default_pack_has_no_refused_regex():
    pack = load_pack()
    assert [t.pattern for r in pack.rules.values() for t in r.regexes if unsafe_reason(t.pattern.replace("{name}", "(?:a|b)"))] == []


def test_redos_pack_is_refused_with_file_line_field(tmp_path):
    pack = _pack(tmp_path, "version: 1\nrules:\n  - tag: cli\n    regexes:\n      - {pattern: '(a+)+$', weight: 1.0}\n")
    readme = tmp_path / "r.md"
    readme.write_text("a" * 40 + "!")
    tax = tmp_path / "tax.json"
    tax.write_text('["cli", "lib"]')
    r = _run(["tag", "--text", str(readme), "--id", "4", "--taxonomy", str(tax), "--rules", str(pack), "--no-llm"])
    assert r.returncode == 2 and r.stdout == ""
    line = r.stderr.strip()
    assert line.startswith(f"tagsmith: [E301] {pack / 'pack.yaml'}:5: rules.0.regexes.0.pattern: unsafe regex") and "\n" not in line
    assert "atomic group" in line  # says what to write instead


def test_alias_bomb_is_refused_before_expanding(tmp_path):
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, cur in zip("abcdefgh", "bcdefghi"):
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    pack = _pack(tmp_path, "\n".join(lines) + "\nrules: []\n")
    with pytest.raises(TagsmithError) as err:
        load_pack(pack)
    assert err.value.code == "E302" and "pack.yaml" in str(err.value) and "aliases" in str(err.value)


def test_pack_can_never_execute_code(tmp_path):
    marker = tmp_path / "pwned"
    pack = _pack(tmp_path, f"version: 1\nrules:\n  - tag: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(TagsmithError) as err:
        load_pack(pack)
    assert err.value.code == "E300" and err.value.line == 3 and "not allowed" in str(err.value)
    assert not marker.exists()


def test_oversized_and_overfull_packs_are_refused(tmp_path):
    big = _pack(tmp_path, "version: 1\nrules: []\n# " + "x" * (1 << 20) + "\n")
    with pytest.raises(TagsmithError) as err:
        load_pack(big)
    assert err.value.code == "E302" and "too large" in str(err.value)
    (tmp_path / "l").mkdir()
    long = _pack(tmp_path / "l", "version: 1\nrules:\n  - tag: cli\n    regexes: ['" + "a" * 3000 + "']\n")
    with pytest.raises(TagsmithError) as err:
        load_pack(long)
    assert err.value.code == "E300" and "too long" in str(err.value) and err.value.field == "rules.0.regexes.0.pattern"


def test_regex_time_budget_stops_a_slow_scan_and_says_so():
    """A pattern the load-time check would refuse, planted after loading: the scan stops
    at the document's budget, the answer comes, and the explanation says what was cut."""
    import re

    from engine.lexicon.matchers import TermInfo
    from engine.lexicon.prefilter import Prefiltered

    from engine import Taxonomy

    tagger = Tagger(mode="rules")
    tax = Taxonomy.from_names(["cli", "lib"])
    lex = tagger.lexicon(tax)
    lex.rules.regexes.append((Prefiltered(r"(a|aa)+$", re.MULTILINE), TermInfo("cli", "regex", "(a|aa)+$", 1.0, None)))
    lex.rules.regex_budget = 0.3
    res = tagger.tag("a" * 60 + "!\nA library.", id="1", taxonomy=tax)
    assert res.tags and any("regex time budget" in n and "(a|aa)+$" in n for n in res.explanation.notes)


def test_huge_text_is_cut_and_noted_in_the_api():
    text = "# bigtool\n\nA command-line tool.\n" + ("lorem ipsum dolor sit amet\n" * 800_000)  # ~22 MB
    res = Tagger(mode="rules").tag(text, id="big", taxonomy=["cli", "lib"])
    assert res.tags == ["cli"]
    assert any(n.startswith("text cut: the first") and f"{len(text):,}" in n for n in res.explanation.notes)
    with pytest.raises(TagsmithError):
        Tagger(mode="rules", analyze_chars=-1)


def test_huge_raw_request_on_stdin_answers_in_bounded_memory(tmp_path):
    head = 'Here it is: "# bigtool\n\nA command-line tool.\n'
    tail = ('", Assign "at most 2 tags" to the expected json: {"id":"77","tags":[]} "only from the tags list I provide: '
            '[{"id":1,"name":"cli"},{"id":2,"name":"lib"}]" returns me the "expected json"')
    src = tmp_path / "req.txt"
    with open(src, "w") as f:
        f.write(head)
        block = "lorem ipsum dolor sit amet " * 40 + "\n"
        for _ in range(25_000):  # ~27 MB
            f.write(block)
        f.write(tail)
    exp = tmp_path / "exp.json"
    with open(src, "rb") as stdin:
        r = _run(["tag", "-", "--no-llm", "--explain-file", str(exp)], stdin=stdin)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"id": "77", "tags": ["cli"]}
    notes = json.loads(exp.read_text())["notes"]
    assert any("bytes past the analysed part were not read" in n for n in notes)


def _records(tmp_path: Path, n: int) -> Path:
    rows = [json.loads(x) for x in (FIXTURES / "train-mini.jsonl").read_text().splitlines()]
    src = tmp_path / "in.jsonl"
    with open(src, "w") as f:
        for i in range(n):
            f.write(json.dumps({"id": f"r{i}", "text": rows[i % len(rows)]["text"]}) + "\n")
    return src


def test_batch_file_size_limit_then_resume_loses_nothing(tmp_path):
    import resource

    src, out = _records(tmp_path, 300), tmp_path / "out.jsonl"
    args = ["batch", str(src), "-o", str(out), "--taxonomy", str(FIXTURES / "taxonomy-mini.json"), "--no-llm", "--quiet"]

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.RLIM_INFINITY))

    r = _run(args, preexec_fn=limit)
    assert r.returncode == 1 and "[E107]" in r.stderr and "--resume" in r.stderr and "Traceback" not in r.stderr
    assert 0 < out.read_text().count("\n") < 300
    r = _run(args + ["--resume"])
    assert r.returncode == 0, r.stderr
    ids = [json.loads(x)["id"] for x in out.read_text().splitlines()]
    assert sorted(ids) == sorted(f"r{i}" for i in range(300))  # every id exactly once


def test_second_writer_is_refused_and_output_untouched(tmp_path):
    import fcntl

    src, out = _records(tmp_path, 10), tmp_path / "out.jsonl"
    out.write_text('{"id":"r0","tags":["cli"]}\n')
    with open(out, "a") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        r = _run(["batch", str(src), "-o", str(out), "--taxonomy", str(FIXTURES / "taxonomy-mini.json"), "--no-llm"])
    assert r.returncode == 2 and "[E106]" in r.stderr
    assert out.read_text() == '{"id":"r0","tags":["cli"]}\n'


def test_unwritable_output_is_an_e_code(tmp_path):
    src = _records(tmp_path, 3)
    r = _run(["batch", str(src), "-o", str(tmp_path / "no" / "such" / "out.jsonl"), "--taxonomy", str(FIXTURES / "taxonomy-mini.json"),
              "--no-llm"])
    assert r.returncode == 2 and r.stderr.startswith("tagsmith: [E105]") and "Traceback" not in r.stderr


def test_model_cache_manifest_detects_damage(tmp_path):
    from engine.decision.model import cache_problem, write_manifest

    d = tmp_path / "model"
    d.mkdir()
    (d / "model.safetensors").write_bytes(os.urandom(4096))
    (d / "config.json").write_text("{}")
    assert cache_problem(d) == "no valid manifest"
    write_manifest(d)
    assert cache_problem(d) is None
    assert cache_problem(d) is None  # the second time from the recorded stamps, no hashing

    def rewrite(data: bytes) -> None:  # a later write: its time differs from the verified one
        f = d / "model.safetensors"
        old = f.stat().st_mtime_ns
        f.write_bytes(data)
        os.utime(f, ns=(old + 10**9, old + 10**9))

    data = bytearray((d / "model.safetensors").read_bytes())
    data[2000] ^= 1
    rewrite(bytes(data))
    assert cache_problem(d) == "model.safetensors: content changed"
    rewrite(bytes(data[:100]))
    assert "size 100" in cache_problem(d)
    (d / "config.json").unlink()
    write_manifest(d)
    (d / "model.safetensors").unlink()
    assert cache_problem(d) == "model.safetensors: missing"


def test_fuzz_campaign_rules_mode():
    """A few hundred generated hostile requests, raw format and API calls, rules mode."""
    sys.path.insert(0, str(ROOT / "bench"))
    from fuzz import campaign

    outcomes, kinds, failures = campaign(300, seed=1, bound=30, pool=12, modes=("rules",))
    assert outcomes["traceback"] == outcomes["hang"] == outcomes["invalid"] == 0, failures[:3]
    assert outcomes["valid"] >= 150 and outcomes["refused"] >= 20


def test_fuzz_campaign_model_modes(real_lm):
    """llm and hybrid with a tiny random model on the real tokenizer."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from engine.decision.model import LoadedModel

    sys.path.insert(0, str(ROOT / "bench"))
    from fuzz import campaign

    tok = real_lm.tokenizer
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                      num_key_value_heads=1, max_position_embeddings=4096, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    lm = LoadedModel(LlamaForCausalLM(cfg).eval(), tok, "tiny-random", "cpu", "float32")
    outcomes, kinds, failures = campaign(50, seed=2, bound=60, pool=4, modes=("llm", "hybrid"), lm=lm)
    assert outcomes["traceback"] == outcomes["hang"] == outcomes["invalid"] == 0, failures[:3]
    assert outcomes["valid"] >= 25
