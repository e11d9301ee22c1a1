"""The CLI as a user runs it: real subprocesses, exit codes, one-line errors."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import FIXTURES

TAX = '[{"id":1,"name":"cli"},{"id":2,"name":"lib"},{"id":3,"name":"game-engine "}]'


def run(*args, stdin=None, env=None):
    import os

    return subprocess.run([sys.executable, "-m", "engine.cli", *args], input=stdin, capture_output=True,
                          cwd=Path(__file__).parents[1], env={**os.environ, **(env or {})})


def req(text="A command-line tool to rename files.", n="3", tags=TAX):
    return f'{text}", Assign "at most {n} tags" to the expected json: {{"id":"7","tags":[]}} "only from the tags list I provide: {tags}"'.encode()


def test_tag_stdin_rules_mode():
    r = run("tag", "-", "--no-llm", stdin=req())
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode() == '{"id":"7","tags":["cli"]}\n'


def test_rules_mode_starts_without_torch_and_torch_still_loads_after(tmp_path):
    """thinc probes for torch when spaCy is imported (2.3 s of start-up); rules mode
    never needs torch, and a later ``import torch`` (the decision stage) still works."""
    (tmp_path / "d.txt").write_text("A command-line tool to rename files.")
    (tmp_path / "t.json").write_text(TAX)
    code = ("import sys; from engine.cli import main; "
            f"main(['tag', '--text', {str(tmp_path / 'd.txt')!r}, '--taxonomy', {str(tmp_path / 't.json')!r}, '--no-llm']); "
            "print('torch' in sys.modules); import torch; print(int(torch.ones(2).sum()))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, cwd=Path(__file__).parents[1])
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().splitlines() == ['{"id":null,"tags":["cli"]}', "False", "2"]


def test_tag_text_mode(tmp_path):
    (tmp_path / "d.txt").write_text("A header-only C++ library for parsing URLs.")
    (tmp_path / "t.json").write_text(TAX)
    r = run("tag", "--text", str(tmp_path / "d.txt"), "--id", "x", "--taxonomy", str(tmp_path / "t.json"), "--max-tags", "1", "--no-llm")
    assert r.returncode == 0 and json.loads(r.stdout) == {"id": "x", "tags": ["lib"]}


@pytest.mark.parametrize(
    "payload, code",
    [
        (b"no instruction here", "E100"),
        (req(n="0"), "E101"),
        (req(text="  "), "E102"),
        (req(tags='[{"id":1,"name":"cli"},'), "E200"),
        (req(tags='["cli","cli"]'), "E201"),
        (b"\xff\xfe bad bytes", "E103"),
    ],
)
def test_bad_input_one_line_exit_2(payload, code):
    r = run("tag", "-", "--no-llm", stdin=payload)
    err = r.stderr.decode().strip()
    assert r.returncode == 2 and code in err and "Traceback" not in err and len(err.splitlines()) == 1


def test_unknown_model_exit_2():
    r = run("tag", "-", "--model", "/nonexistent/model.gguf", stdin=req())
    assert r.returncode == 2 and "E400" in r.stderr.decode() and "Traceback" not in r.stderr.decode()


def test_uncached_hub_id_offline_exit_2():
    r = run("tag", "-", "--model", "nobody/no-such-model", stdin=req(), env={"HF_HUB_OFFLINE": "1"})
    err = r.stderr.decode()
    assert r.returncode == 2 and "E400" in err and "not in the local Hugging Face cache" in err and "Traceback" not in err


def test_batch_bad_records_and_resume(tmp_path):
    (tmp_path / "t.json").write_text(TAX)
    lines = [
        json.dumps({"id": "a", "text": "A command-line tool."}),
        json.dumps({"id": "b", "text": ""}),
        "{not json",
        json.dumps({"text": "no id"}),
        json.dumps({"id": "a", "text": "duplicate id"}),
        json.dumps({"id": "c", "text": "A library for parsing dates. " * 30}),
        json.dumps({"id": "d", "text": "A small library."}),
    ]
    src = tmp_path / "in.jsonl"
    src.write_bytes(("\n".join(lines) + "\n").encode() + b'{"id":"e","text":"\xff"}\n')
    out = tmp_path / "out.jsonl"
    r = run("batch", str(src), "-o", str(out), "--taxonomy", str(tmp_path / "t.json"), "--no-llm", "--max-chars", "200")
    assert r.returncode == 1
    got = [json.loads(l) for l in out.read_text().splitlines()]
    assert [g["id"] for g in got] == ["a", "d"]
    errs = {e["line"]: e["error"] for e in map(json.loads, (tmp_path / "out.jsonl.errors.jsonl").read_text().splitlines())}
    assert set(errs) == {2, 3, 4, 5, 6, 8}
    assert "duplicate" in errs[5] and "max-chars" in errs[6] and "UTF-8" in errs[8]
    assert r.stderr.decode().count("\r") == 0  # no progress bar when not a TTY
    # A torn last line (killed mid-write) is cut and the record answered again.
    with open(out, "a") as fh:
        fh.write('{"id":"x","ta')
    clean = tmp_path / "clean.jsonl"
    clean.write_text("\n".join(lines[:1] + lines[6:]) + "\n" + json.dumps({"id": "f", "text": "A CLI."}) + "\n")
    r = run("batch", str(clean), "-o", str(out), "--taxonomy", str(tmp_path / "t.json"), "--no-llm", "--resume")
    assert r.returncode == 0, r.stderr
    ids = [json.loads(l)["id"] for l in out.read_text().splitlines()]
    assert ids == ["a", "d", "f"]


def test_rules_commands(tmp_path):
    assert run("rules", "check").returncode == 0
    schema = json.loads(run("rules", "schema").stdout)
    assert "TagRule" in json.dumps(schema)
    (tmp_path / "bad.yaml").write_text("rules:\n  - tag: cli\n    bogus: 1\n")
    r = run("rules", "check", str(tmp_path))
    assert r.returncode == 2 and "bad.yaml:3" in r.stderr.decode()


def test_fixture_request_rules_mode():
    r = run("tag", str(FIXTURES / "request-example.txt"), "--no-llm")
    tags = json.loads(r.stdout)["tags"]
    assert r.returncode == 0 and "cli" in tags and "blog" in tags
