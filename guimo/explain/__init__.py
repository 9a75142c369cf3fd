"""Per-prediction explanations: which features pushed one prediction up or down.

- ``integrated``: Integrated Gradients (Sundararajan et al. 2017, via Captum) for the tabular transformer, with its
  completeness check (the attributions sum to f(row) - f(baseline));
- ``trees``: exact TreeSHAP contributions of the run's LightGBM baseline (``pred_contrib=True``);
- ``rows``: both for rows of a served run, keyed by the columns a user sent (``guimo explain``,
  ``guimo predict --explain``, ``/v1/classifications`` with ``"explain": true``).

Serving code: imports no training code. Heavy imports (torch, captum, lightgbm) live in the submodules.
"""
