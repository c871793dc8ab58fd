"""Training templates, cross-validation and metrics.

* :mod:`finmaas.training.metrics`: AUC, KS, Gini, Brier, log loss and
  cost-sensitive accept/reject decisions (:class:`~finmaas.training.metrics.CostMatrix`).
* :mod:`finmaas.training.cross_validation`: stratified k-fold out-of-fold scores
  and their fold-wise metrics.
* :mod:`finmaas.training.credit`: the credit-risk template (LightGBM and a
  logistic-regression scorecard).

Import from the submodules; this package does not import LightGBM on its own.
"""
