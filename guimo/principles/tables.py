"""Results as plain tables, so the CLI (rich) and docs/principles.md (Markdown) show the same cells.

Each ``*_tables`` function turns one result into a list of ``Table``; nothing here computes a
number, it only formats what the computation returned.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from guimo.principles.backprop import W_INIT, ArticleBackprop
from guimo.principles.first_model import SeedStudy, TrainResult
from guimo.principles.gradient_descent import GradientDescentResult
from guimo.principles.mlp import MLPBackprop


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)  # lines shown under the table


def vec(values) -> str:
    """[0.9, 0.9]-style vector; nested lists become [[a, b], [c, d]]. No "-0"."""
    if isinstance(values, (list, tuple)):
        return "[" + ", ".join(vec(v) for v in values) + "]"
    return f"{float(values) + 0.0:.6g}"


def gradient_descent_tables(r: GradientDescentResult, head: int = 10, tail: int = 3, all_rows: bool = False) -> list[Table]:
    rows = [[str(s.step), f"{s.w:.10g}", f"{s.loss:.4e}", f"{s.grad:.4e}"] for s in r.steps]
    if not all_rows and len(rows) > head + tail + 1:
        rows = rows[:head] + [["…", "…", "…", "…"]] + rows[-tail:]
    verdict = {
        "converged": f"converged: |dJ/dw| <= {r.tolerance:g} after {r.steps_taken} steps "
                     f"(closed form predicts {r.predicted_steps}); w = {r.final_w:.10g}",
        "not converged": f"not converged within {r.max_steps} steps; w = {r.final_w:.10g}",
        "diverged": f"DIVERGED: stopped after {r.steps_taken} steps at w = {r.final_w:.6g}, "
                    f"|w - w*| grew by {abs(r.rate):g}x per step",
    }[r.status]
    notes = [
        f"closed-form optimum w* = y/x = {r.optimum:.10g}; each step multiplies w - w* by r = 1 - 2*lr*x^2 = {r.rate:g}",
        f"stable for 0 < lr < 1/x^2 = {r.lr_bound:g}",
        verdict,
        *[f"warning: {w}" for w in r.warnings],
    ]
    title = f"gradient descent on J(w) = (w*x - y)^2 with x = {r.x:g}, y = {r.y:g}, lr = {r.lr:g}, w0 = {r.steps[0].w:g}"
    return [Table(title, ["step", "w", "J(w)", "dJ/dw"], rows, notes)]


def article_tables(r: ArticleBackprop) -> list[Table]:
    v = r.values
    forward = Table(
        "the article's network: forward pass (h = w * x, o = w3 * h, e = o - y; * element-wise)",
        ["quantity", "sample 1", "sample 2"],
        [["h = w_i * x_i", vec(v["h1"]), vec(v["h2"])],
         ["o = w3 * h", vec(v["o1"]), vec(v["o2"])],
         ["e = o - y", vec(v["e1"]), vec(v["e2"])]],
        [f"loss L = 1/2 sum(e1^2) + 1/2 sum(e2^2) = {r.loss:g}"],
    )
    grads = Table(
        "gradients of L: hand-written backprop (NumPy float64) vs torch autograd (float64)",
        ["weight", "backprop by hand", "autograd", "max |difference|"],
        [[f"w{i}", vec(v[f"dL/dw{i}"]), vec(r.autograd[f"dL/dw{i}"]),
          f"{max(abs(a - b) for a, b in zip(v[f'dL/dw{i}'], r.autograd[f'dL/dw{i}'])):.1e}"] for i in (1, 2, 3)],
        [f"agreement: max |hand - autograd| = {r.max_autograd_diff:.1e} (required <= 1e-12)"],
    )
    update = Table(
        "one gradient step, w <- w - 0.1 * dL/dw",
        ["weight", "before", "gradient", "after"],
        [[f"w{i}", vec(W_INIT.tolist()), vec(v[f"dL/dw{i}"]), vec(v[f"w{i}'"])] for i in (1, 2, 3)],
        [f"loss before {r.loss:g}, after {r.loss_after:.6g}"],
    )
    article = Table(
        "the article's values beside the computed ones",
        ["quantity", "article", "computed", "verdict"],
        [[a.quantity, vec(a.published) if a.published is not None else f"({a.claim})", vec(a.correct), a.verdict]
         for a in r.article],
        [f"inconsistency: {line}" for line in r.inconsistencies],
    )
    return [forward, grads, update, article]


def mlp_tables(r: MLPBackprop) -> list[Table]:
    grads = Table(
        f"2-2-1 network on XOR ({r.activation} hidden, linear output, L = 1/2 sum e^2): gradients at the seed-{r.seed} init",
        ["parameter", "initial value", "backprop by hand", "autograd"],
        [[k, vec(r.initial[k]), vec(r.grads[k]), vec(r.autograd[k])] for k in ("W1", "b1", "W2", "b2")],
        [f"agreement over all {len(r.losses) - 1} steps: max |hand - autograd| = {r.max_autograd_diff:.1e} (required <= 1e-12)"],
    )
    steps = len(r.losses) - 1
    picks = sorted({0, 1, 10, 50, 100, steps} & set(range(steps + 1)))
    curve = Table(
        f"gradient descent, lr {r.lr:g}: loss by step",
        ["step", "loss"],
        [[str(i), f"{r.losses[i]:.4e}"] for i in picks],
        ["DIVERGED: the loss overflowed; lower the learning rate"] if r.diverged else
        [f"predictions after {steps} steps for (0,0), (0,1), (1,0), (1,1): {vec(r.predictions)} (targets 0, 1, 1, 0)"],
    )
    return [grads, curve]


def epoch_table(r: TrainResult, every: int = 10) -> Table:
    epochs = [e for e in range(1, len(r.losses) + 1) if e == 1 or e % every == 0 or e == len(r.losses)]
    c = r.config
    return Table(
        f"{r.dataset}: Linear(2,{c.hidden}) -> ReLU -> Linear({c.hidden},1), Adam lr {c.lr:g}, "
        f"batch {c.batch_size}, {c.n} examples, seed {r.seed}",
        ["epoch", "loss", "accuracy"],
        [[str(e), f"{r.losses[e - 1]:.4f}", f"{r.accuracies[e - 1]:.1%}"] for e in epochs],
        [f"saved to {r.path}"] if r.path else [],
    )


def seed_table(studies: list[tuple[str, SeedStudy]]) -> Table:
    rows = []
    for label, s in studies:
        c = s.config
        rows.append([label, s.dataset, f"{c.hidden} / {c.lr:g} / {c.epochs}",
                     f"{s.perfect}/{len(s.seeds)}", f"{min(s.final_accuracies):.1%}",
                     f"{sum(s.final_accuracies) / len(s.final_accuracies):.1%}"])
    return Table("how often training reaches 100% training accuracy, seeds " + _seed_range(studies[0][1].seeds),
                 ["configuration", "dataset", "hidden / lr / epochs", "100% reached", "worst", "mean"], rows)


def search_table(rows: list[dict]) -> Table:
    return Table(
        f"grid search on XOR: seeds reaching 100% (of {rows[0]['seeds']})",
        ["hidden", "lr", "epochs", "100% reached", "mean accuracy"],
        [[str(r["hidden"]), f"{r['lr']:g}", str(r["epochs"]), f"{r['perfect']}/{r['seeds']}", f"{r['mean_accuracy']:.1%}"] for r in rows],
    )


def _seed_range(seeds: list[int]) -> str:
    return f"{seeds[0]}–{seeds[-1]}" if seeds == list(range(seeds[0], seeds[-1] + 1)) else ", ".join(map(str, seeds))


def to_markdown(t: Table) -> str:
    def cell(s: str) -> str:
        return s.replace("|", "\\|")

    lines = [f"**{t.title}**", "", "| " + " | ".join(t.columns) + " |", "|" + "---|" * len(t.columns)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in t.rows]
    if t.notes:
        lines += [""] + [f"- {n}" for n in t.notes]
    return "\n".join(lines) + "\n"


def print_tables(tables: list[Table]) -> None:
    """Render with rich; notes are printed as plain lines under each table."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table as RichTable

    console = Console()
    for t in tables:
        console.print(escape(t.title), style="bold", soft_wrap=True)  # above the table: never wrapped to its width
        rt = RichTable()
        for i, c in enumerate(t.columns):
            rt.add_column(escape(c), justify="left" if i == 0 else "right")
        for row in t.rows:
            style = "bold red" if any(c in ("MISMATCH", "DIVERGED") for c in row) else None
            rt.add_row(*map(escape, row), style=style)
        console.print(rt)
        for n in t.notes:
            style = "bold yellow" if n.startswith(("warning", "inconsistency", "DIVERGED")) else None
            console.print(escape(n), style=style, soft_wrap=True)
        console.print()
