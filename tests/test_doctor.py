"""tagsmith doctor: what a bug report needs; exit 1 with the reason when the install is not sound."""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def doctor(*args, env=None):
    return subprocess.run([sys.executable, "-m", "engine.cli", "doctor", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, **(env or {})})


def test_doctor_reports_and_is_sound(tmp_path):
    r = doctor("--json", env={"TAGSMITH_CACHE": str(tmp_path), "TAGSMITH_DTYPE": "float32"})
    assert r.returncode == 0, r.stdout + r.stderr
    rep = json.loads(r.stdout)
    by = {f["name"]: f for f in rep["findings"]}
    assert rep["sound"] and set(by) == {"versions", "device", "model", "cache", "adapter", "rules"}
    assert by["device"]["facts"]["dtype"] == "float32" and "TAGSMITH_DTYPE" in by["device"]["facts"]["dtype reason"]
    assert by["device"]["facts"]["cpu bfloat16 path"] in ("amx", "avx512_bf16", "none")
    assert len(by["model"]["facts"]["sha256"]) == 64
    assert by["versions"]["facts"]["torch"] and by["cache"]["facts"]["folder"] == str(tmp_path)


def test_doctor_fails_on_a_damaged_cache(tmp_path):
    folder = tmp_path / "models" / "some-model"
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"12345")
    (folder / "tagsmith-manifest.json").write_text(json.dumps({"files": {"model.safetensors": {"size": 9, "sha256": "0" * 64}}}))
    r = doctor(env={"TAGSMITH_CACHE": str(tmp_path)})
    assert r.returncode == 1
    assert "[fail] cache" in r.stdout and "size 5, expected 9" in r.stdout and r.stdout.splitlines()[-1].startswith("NOT sound")


def test_doctor_refuses_a_bad_dtype_variable(tmp_path):
    r = doctor(env={"TAGSMITH_CACHE": str(tmp_path), "TAGSMITH_DTYPE": "float8"})
    assert r.returncode == 2 and "E400" in r.stderr and "TAGSMITH_DTYPE" in r.stderr


def test_an_adapter_trained_under_other_versions_warns(tmp_path, capsys):
    import shutil

    from engine.decision.adapter import DEFAULT_ADAPTER, read_adapter, version_drift, warn_drift

    copy = tmp_path / "old"
    shutil.copytree(DEFAULT_ADAPTER, copy)
    card = json.loads((copy / "card.json").read_text())
    card["training"]["versions"] = {"torch": "1.0.0", "transformers": "4.0.1"}
    (copy / "card.json").write_text(json.dumps(card))
    info = read_adapter(copy)
    assert [d.split()[0] for d in version_drift(info.card)] == ["torch", "transformers"]
    warn_drift(info)
    warn_drift(info)  # once per adapter and process
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("tagsmith: warning: adapter") and "trained with 4.0.1" in err[0]
    r = doctor("--adapter", str(copy), env={"TAGSMITH_CACHE": str(tmp_path / "cache")})
    assert r.returncode == 0 and "[warn] adapter: trained under other library versions" in r.stdout
