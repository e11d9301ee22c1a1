"""Training the decision model (``tagsmith train``): a room above the API.

examples (decoder-format prompts and targets) -> lora (top-layer LoRA on cached
frozen states) -> crossval (policy chosen on held-out folds) -> job (the command).
"""
from engine.training.examples import Example, ExampleSet, build_examples
from engine.training.lora import LoraSettings, LoraTrainer

__all__ = ["Example", "ExampleSet", "LoraSettings", "LoraTrainer", "build_examples"]
