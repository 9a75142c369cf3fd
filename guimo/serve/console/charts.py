"""Server-rendered SVG charts: a stacked bar per day, one colour per model.

No chart library and no build step: the page gets finished SVG markup, which prints, scales, and
reads with a screen reader (``role="img"`` with a title and a description naming the totals; the
page shows the same numbers in a table beside it).
"""

from __future__ import annotations

import math
from html import escape

# Okabe-Ito: distinguishable with the common colour-vision deficiencies
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
W, H = 560, 220
LEFT, RIGHT, TOP, BOTTOM = 64, 12, 14, 40


def nice_ceiling(x: float) -> float:
    """The smallest of 1, 2, 2.5 or 5 times a power of ten that is >= x (an axis maximum people can read)."""
    if x <= 0:
        return 1.0
    p = 10 ** math.floor(math.log10(x))
    return next(m * p for m in (1, 2, 2.5, 5, 10) if m * p >= x * (1 - 1e-12))


def fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 1:
        return f"{v:.4g}"
    return f"{v:.3g}"


def stacked_bars(chart_id: str, title: str, days: list[str], series: dict[str, list[float]], unit: str = "") -> str:
    """SVG markup of ``series`` (model -> value per day) stacked per day, with axes, ticks and a legend."""
    totals = [sum(vals[i] for vals in series.values()) for i in range(len(days))]
    top = nice_ceiling(max(totals, default=0.0))
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM
    step = plot_w / max(len(days), 1)
    bar = max(step * 0.7, 1.0)
    y = lambda v: TOP + plot_h - v / top * plot_h  # noqa: E731
    total = sum(totals)
    desc = f"{title}: {fmt(total)}{' ' + unit if unit else ''} in total" + "".join(
        f"; {escape(m)} {fmt(sum(v))}" for m, v in series.items())
    out = [f'<svg class="chart" id="{chart_id}" viewBox="0 0 {W} {H + 22 * math.ceil(len(series) / 3)}" role="img" '
           f'aria-labelledby="{chart_id}-t {chart_id}-d" xmlns="http://www.w3.org/2000/svg">',
           f'<title id="{chart_id}-t">{escape(title)}</title><desc id="{chart_id}-d">{desc}</desc>']
    for k in range(5):  # grid lines and y ticks
        v = top * k / 4
        out.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y(v):.1f}" y2="{y(v):.1f}" class="grid"/>'
                   f'<text x="{LEFT - 6}" y="{y(v) + 4:.1f}" text-anchor="end" class="tick">{fmt(v)}</text>')
    for i, d in enumerate(days):
        x = LEFT + i * step + (step - bar) / 2
        base = 0.0
        for j, (model, vals) in enumerate(series.items()):
            v = vals[i]
            if v > 0:
                out.append(f'<rect x="{x:.1f}" y="{y(base + v):.1f}" width="{bar:.1f}" height="{y(base) - y(base + v):.1f}" '
                           f'fill="{PALETTE[j % len(PALETTE)]}"><title>{escape(d)} {escape(model)}: {fmt(v)}</title></rect>')
                base += v
        if i % 5 == 0 or i == len(days) - 1:
            out.append(f'<text x="{x + bar / 2:.1f}" y="{TOP + plot_h + 16}" text-anchor="middle" class="tick">{escape(d[5:])}</text>')
    out.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{TOP + plot_h}" y2="{TOP + plot_h}" class="axis"/>')
    if unit:
        out.append(f'<text x="12" y="{TOP + plot_h / 2:.0f}" transform="rotate(-90 12 {TOP + plot_h / 2:.0f})" text-anchor="middle" class="tick">{escape(unit)}</text>')
    for j, model in enumerate(series):  # legend, three per row
        lx, ly = LEFT + (j % 3) * 160, H + 4 + 22 * (j // 3)
        out.append(f'<rect x="{lx}" y="{ly}" width="12" height="12" fill="{PALETTE[j % len(PALETTE)]}"/>'
                   f'<text x="{lx + 18}" y="{ly + 11}" class="legend">{escape(model[:22])}</text>')
    if not series:
        out.append(f'<text x="{W / 2}" y="{TOP + plot_h / 2}" text-anchor="middle" class="empty">no usage in this month yet</text>')
    out.append("</svg>")
    return "".join(out)
