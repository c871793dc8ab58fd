"""Optimisation: a registered version turned into a cheaper one (quantised, pruned,
distilled or converted to ONNX), registered as a new version with its lineage and a
report against its parent."""

from finmaas.optimize.report import Report
from finmaas.optimize.runs import METHODS, Method, OptimizedVersion, OptimizeRun, optimize_version

__all__ = ["METHODS", "Method", "OptimizeRun", "OptimizedVersion", "Report", "optimize_version"]
