"""Differentially private training (DP-SGD, Abadi et al. 2016) through Opacus, inside the one training loop.

``--set privacy.epsilon=3`` on a scenario whose config has a ``privacy`` section makes
``guimo.train.loop.fit`` call :func:`make_private` once before its first step. What changes then:

- **per-sample clipping**: Opacus' hooks compute every example's gradient, clip each to ``max_grad_norm``
  (the L2 norm over all parameters) and sum them; Gaussian noise of standard deviation
  ``noise_multiplier * max_grad_norm`` is added and the sum divided by the expected batch size;
- **Poisson sampling**: each step takes every training example independently with probability
  ``q = 1 / ceil(n / batch_size)`` (so batches have ``batch_size`` examples on average and vary in size),
  instead of the loop's shuffled epochs of fixed batches;
- **accounting**: the noise multiplier is chosen by ``PrivacyEngine.make_private_with_epsilon`` so that the
  planned number of steps spends at most ``epsilon`` (PRV accountant by default, RDP on request) at ``delta``;
  after training the spent (epsilon, delta) is computed again for the steps actually taken (fewer after an
  early stop or a time budget) and recorded in ``privacy.json``, metrics.json and the report.

Why the accounting holds: the PRV and RDP accountants bound the privacy loss of the *subsampled Gaussian
mechanism*, which is exactly one step here: a Poisson sample at rate ``q`` (:meth:`PrivateTraining.batch_indices`
draws it the way Opacus' ``UniformWithReplacementSampler`` does, ``rand(n) < q``), per-example gradients of
bounded norm (clipping), Gaussian noise calibrated to that bound. T steps compose; the accountant is told
``(noise_multiplier, q, T)``. A fixed-size shuffled batch would not match that analysis, which is why the loop's
DistributedSampler order is not used on the DP path. The random draws use a generator seeded by (seed, step),
not a cryptographic one (Opacus' ``secure_mode`` is off): fine for measurements, and what Opacus warns about.

What the guarantee covers, and what it does not: it covers the model's weights with respect to the training
rows. It does not cover what else a run fits on those rows without noise: the table encoder's statistics
(quantiles, category vocabularies), the gradient-boosting and logistic-regression baselines, and the validation
rows used for early stopping and calibration. A run whose weights must be private must not ship those.
A loss must be a plain mean of per-example terms (each example's weight may depend only on that example):
Opacus rescales the mean's gradient by the batch size to get per-example gradients.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Literal

from guimo.errors import GuimoError

if TYPE_CHECKING:
    import numpy as np
    import torch

ACCOUNTANTS = ("prv", "rdp")


@dataclass
class PrivacyConfig:
    """The ``privacy`` section of a scenario's config (``--set privacy.epsilon=3``)."""

    epsilon: float | None = field(default=None, metadata={"help": "target privacy budget epsilon of DP-SGD; None: no differential privacy (plain training)"})
    delta: float | None = field(default=None, metadata={"help": "target delta; None: 1 / (training rows), the usual ceiling (choose smaller for a stronger guarantee)"})
    max_grad_norm: float = field(default=1.0, metadata={"help": "per-example gradient clipping bound C (L2 over all parameters); the noise scales with it"})
    accountant: Literal["prv", "rdp"] = field(default="prv", metadata={"help": "privacy accountant: prv (tighter, Gopi et al. 2021) or rdp (Renyi DP, Mironov 2017)"})

    def __post_init__(self) -> None:
        if self.epsilon is not None and not self.epsilon > 0:
            raise ValueError(f"privacy.epsilon must be positive (or None: no DP), got {self.epsilon}")
        if self.delta is not None and not 0 < self.delta < 1:
            raise ValueError(f"privacy.delta must be in (0, 1), got {self.delta}")
        if not self.max_grad_norm > 0:
            raise ValueError(f"privacy.max_grad_norm must be positive, got {self.max_grad_norm}")
        if self.accountant not in ACCOUNTANTS:
            raise ValueError(f"privacy.accountant must be one of {', '.join(ACCOUNTANTS)}, got {self.accountant!r}")

    @property
    def enabled(self) -> bool:
        return self.epsilon is not None


@dataclass
class PrivacySpent:
    """What a DP run spent: written to ``privacy.json`` and shown in metrics.json and the report."""

    epsilon: float  # spent, for the steps actually taken
    delta: float
    target_epsilon: float
    noise_multiplier: float  # sigma: noise std / max_grad_norm
    sample_rate: float  # q, the Poisson probability of each row per step
    expected_batch_size: float
    steps: int  # optimizer steps taken (what the accountant composed)
    planned_steps: int  # what the noise was calibrated for
    max_grad_norm: float
    accountant: str
    train_rows: int

    def to_dict(self) -> dict:
        return asdict(self)


def check_model(model: "torch.nn.Module") -> None:
    """Refuse, naming them, the layers Opacus cannot compute per-sample gradients for (e.g. BatchNorm).

    ``ModuleValidator.fix`` would swap them (BatchNorm -> GroupNorm), but that changes the architecture a run
    saves and serves, so the model itself must be built Opacus-friendly (as ``FTTransformer`` is).
    """
    from opacus.validators import ModuleValidator

    errors = ModuleValidator.validate(model, strict=False)
    if errors:
        raise GuimoError("DP-SGD cannot train this model (Opacus): " + "; ".join(str(e) for e in errors[:5])
                         + ("" if len(errors) <= 5 else f"; and {len(errors) - 5} more"))


class PrivateTraining:
    """The DP state of one training: the hooked model, the DP optimizer, the Poisson sampler, the account.

    Built by :func:`make_private`. The loop uses ``optimizer`` (a ``DPOptimizer`` around its AdamW; the AdamW
    itself is what checkpoints save), draws each step's rows with ``batch_indices(step)``, and calls ``close()``
    at the end, which removes Opacus' hooks so that the model is a clean module again (Captum fails on a model
    that still carries them).
    """

    def __init__(self, cfg: PrivacyConfig, model: "torch.nn.Module", optimizer: "torch.optim.Optimizer", *,
                 n_examples: int, batch_size: int, max_steps: int, seed: int) -> None:
        import torch
        from opacus import PrivacyEngine

        if not cfg.enabled:
            raise ValueError("PrivateTraining needs privacy.epsilon")
        model.train()  # the loop trains in train mode anyway; Opacus' validator refuses a model loaded in eval mode
        check_model(model)
        self.cfg, self.n, self.seed, self.planned_steps = cfg, n_examples, seed, max_steps
        self.delta = cfg.delta if cfg.delta is not None else 1.0 / n_examples
        # Opacus reads the sample rate off a data loader (1 / its length); a loader of row ids is all it needs.
        loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.arange(n_examples)), batch_size=batch_size)
        # Opacus' hooks on an embedding lookup (whose input, an index, needs no gradient) make torch warn at every
        # backward; the per-sample gradients are still right (the tests check learning and the account)
        warnings.filterwarnings("ignore", message="Full backward hook is firing when gradients are computed with respect to module outputs")
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Secure RNG turned off")  # see the module docstring
            warnings.filterwarnings("ignore", message="Optimal order is the largest alpha")
            engine = PrivacyEngine(accountant=cfg.accountant)
            try:
                self._hooks, self.optimizer, dp_loader = engine.make_private_with_epsilon(
                    module=model, optimizer=optimizer, data_loader=loader, target_epsilon=cfg.epsilon, target_delta=self.delta,
                    epochs=None, steps=max_steps, max_grad_norm=cfg.max_grad_norm, poisson_sampling=True, wrap_model=False)
            except ValueError as e:  # e.g. "The privacy budget is too low."
                raise GuimoError(f"privacy.epsilon={cfg.epsilon} at delta={self.delta:.3g} over {max_steps} steps: {e}") from e
        self.sample_rate = float(dp_loader.batch_sampler.sample_rate)
        self.noise_multiplier = float(self.optimizer.noise_multiplier)

    def batch_indices(self, step: int) -> list[int]:
        """The rows of ``step``: each of the n rows independently with probability q (may be empty).

        Seeded by (seed, step) alone, so a resumed run draws the same batches as an uninterrupted one.
        """
        import torch

        g = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        return (torch.rand(self.n, generator=g) < self.sample_rate).nonzero().flatten().tolist()

    def spent(self, steps: int) -> PrivacySpent:
        """(epsilon, delta) after ``steps`` steps, from a fresh accountant (so a resumed run counts every step once)."""
        from opacus.accountants import create_accountant

        accountant = create_accountant(mechanism=self.cfg.accountant)
        epsilon = 0.0
        if steps:
            accountant.history = [(self.noise_multiplier, self.sample_rate, steps)]
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Optimal order is the largest alpha")
                epsilon = float(accountant.get_epsilon(delta=self.delta))
        return PrivacySpent(epsilon=round(epsilon, 4), delta=self.delta, target_epsilon=float(self.cfg.epsilon),
                            noise_multiplier=self.noise_multiplier, sample_rate=self.sample_rate,
                            expected_batch_size=self.sample_rate * self.n, steps=steps, planned_steps=self.planned_steps,
                            max_grad_norm=self.cfg.max_grad_norm, accountant=self.cfg.accountant, train_rows=self.n)

    def close(self) -> None:
        """Remove Opacus' hooks and per-sample gradients from the model (idempotent)."""
        if self._hooks is not None:
            self._hooks.cleanup()
            self._hooks = None


def make_private(cfg: PrivacyConfig, model: "torch.nn.Module", optimizer: "torch.optim.Optimizer", *, n_examples: int,
                 batch_size: int, max_steps: int, seed: int, world_size: int = 1, grad_accum: int = 1,
                 compiled: bool = False) -> PrivateTraining:
    """The hook ``guimo.train.loop.fit`` calls when ``cfg.epsilon`` is set; refuses what DP-SGD here cannot do.

    One process (Opacus' distributed mode is not wired in), one micro-batch per step (a Poisson batch is one
    draw; accumulating several would need Opacus' virtual steps), and no ``torch.compile`` (the per-sample hooks
    need the eager modules).
    """
    if world_size > 1:
        raise GuimoError("privacy.epsilon: DP-SGD runs in one process here; run without torchrun")
    if grad_accum != 1:
        raise GuimoError("privacy.epsilon: DP-SGD needs train.grad_accum=1 (each step is one Poisson-sampled batch)")
    if compiled:
        raise GuimoError("privacy.epsilon: DP-SGD cannot run with train.compile=true (Opacus hooks the eager modules)")
    if n_examples < 2:
        raise GuimoError(f"privacy.epsilon: {n_examples} training rows are too few for DP-SGD")
    return PrivateTraining(cfg, model, optimizer, n_examples=n_examples, batch_size=batch_size, max_steps=max_steps, seed=seed)


def read_spent(run_path) -> dict | None:
    """The ``privacy.json`` a DP training wrote into a run, or None for a run trained without DP."""
    from pathlib import Path

    from guimo.io import read_json

    path = Path(run_path) / "privacy.json"
    return read_json(path) if path.exists() else None


def fit_shift_and_temperature(z: "np.ndarray", y: "np.ndarray") -> tuple[float, float]:
    """Platt scaling of a binary DP-SGD model's positive-class logit on validation rows: the (shift, temperature) that
    minimise the NLL of ``sigmoid((z - shift) / temperature)``.

    Why a DP model needs the shift and not only a temperature: per-example clipping bounds every row's pull on the
    output bias equally, so the majority class outvotes the minority and the learned bias lands off the class prior
    (Bagdasaryan et al. 2019, "Differential privacy has disparate impact on model accuracy"); on breast cancer the
    logits of every row sat ~2.3 below where they should (all rows called benign at ROC-AUC 0.96). A temperature
    scales around 0 and cannot move that; the fitted shift does, and the ranking (ROC-AUC) is unchanged.
    Like the temperature, it is fitted on validation rows without noise (the report says the guarantee does not cover
    them).
    """
    import numpy as np
    from scipy.optimize import minimize

    z, y = np.asarray(z, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(z) == 0 or y.min() == y.max():
        return 0.0, 1.0

    def nll(p: "np.ndarray") -> float:
        u = (z - p[0]) / np.exp(p[1])
        return float(np.mean(np.logaddexp(0.0, u) - y * u))

    start = np.array([float(np.median(z)), float(np.log(max(z.std(), 1e-3)))])
    res = minimize(nll, start, method="Nelder-Mead", options={"xatol": 1e-7, "fatol": 1e-10, "maxiter": 4000})
    shift, log_t = res.x
    return float(shift), float(np.exp(np.clip(log_t, np.log(1e-4), np.log(100.0))))
