"""Explainability: why each tag was chosen, and why the others were not."""
from engine.report.explanation import ChosenTag, Explanation
from engine.report.markdown import render_markdown

__all__ = ["ChosenTag", "Explanation", "render_markdown"]
