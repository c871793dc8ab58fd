"""Explanations: per-decision contributions and adverse-action reasons."""

from finmaas.explain.explainer import DEFAULT_REASONS, Explainer
from finmaas.explain.profile import ExplanationProfile, build_explanation_profile

__all__ = ["DEFAULT_REASONS", "Explainer", "ExplanationProfile", "build_explanation_profile"]
