"""Shared fixtures: the real model is loaded once per session; property tests use a
tiny randomly initialised model with the real tokenizer (real constraint, fast)."""
from __future__ import annotations

from pathlib import Path

import pytest

from engine.io.records import load_jsonl as read_jsonl  # noqa: F401  (shared by tests)

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
FIXTURES = ROOT / "fixtures"


@pytest.fixture(scope="session")
def shared() -> Path:
    if not (SHARED / "taxonomy.json").exists():
        pytest.skip("../shared/data is not beside the checkout")
    return SHARED


@pytest.fixture(scope="session")
def taxonomy():
    """The requester's 90-tag list (a tag list, not third-party text: kept in fixtures/
    so that engine tests run on a clone without ../shared)."""
    from engine.taxonomy import Taxonomy

    return Taxonomy.load(FIXTURES / "taxonomy.json")


@pytest.fixture(scope="session")
def lm_in():
    """The real model (with the shipped adapter) in a given dtype, loaded once per session
    and dtype: ``lm_in("float32")``; ``lm_in(None)`` is this machine's default."""
    from engine.decision.model import choose_dtype, load_model

    loaded = {}

    def get(dtype=None):
        key = choose_dtype("cpu", dtype)[0]
        if key not in loaded:
            loaded[key] = load_model(None, "cpu", dtype=key)
        return loaded[key]

    return get


@pytest.fixture(scope="session")
def real_lm(lm_in):
    return lm_in(None)


@pytest.fixture(scope="session")
def tiny_lm(real_lm):
    """A 2-layer random Llama sharing the real tokenizer: real constraint, fast forward."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from engine.decision.model import LoadedModel

    tok = real_lm.tokenizer
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=2048,
                      eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    model = LlamaForCausalLM(cfg).eval()
    return LoadedModel(model=model, tokenizer=tok, name="tiny-random", device="cpu", dtype="float32")


@pytest.fixture(scope="session")
def tiny_compiler(tiny_lm):
    from engine.decision.compiler import ConstraintCompiler

    return ConstraintCompiler(tiny_lm.model, tiny_lm.tokenizer)


@pytest.fixture(scope="session")
def outlines_compiler(tiny_lm):
    """Outlines' own regex index: the reference the direct index is held to."""
    from engine.decision.compiler import ConstraintCompiler

    return ConstraintCompiler(tiny_lm.model, tiny_lm.tokenizer, engine="outlines")


def tiny_model(tokenizer, seed=0):
    """A fresh 2-layer random Llama on the real tokenizer (training mutates it)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=2048,
                      eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                      initializer_range=0.3)  # wide enough that 32-d states can move the logits
    return LlamaForCausalLM(cfg).eval()


@pytest.fixture(scope="session")
def tiny_dir(real_lm, tmp_path_factory):
    """The tiny model saved as a local model folder, as a user's own model would be."""
    d = tmp_path_factory.mktemp("tiny-model")
    tiny_model(real_lm.tokenizer).save_pretrained(d)
    real_lm.tokenizer.save_pretrained(d)
    return d
