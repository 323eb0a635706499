"""The explorer's charts as inline SVG: box plots, bar charts and kernels (the pictures are in
`analysis.pictures`)."""

from __future__ import annotations

import html

import numpy as np


def _fmt(v) -> str:
    return f"{v:.3g}"


def box_plot(quantiles, means, highlight: int = -1, width: int = 560, height: int = 190) -> str:
    """Per-class distribution: whiskers 5-95%, box 25-75%, median line, mean dot.

    Parameters
    ----------
    quantiles : (classes, 5) at 5, 25, 50, 75, 95 %
    means : (classes,)
    highlight : class drawn in orange (the preferred class), -1 for none
    """
    q = np.asarray(quantiles, np.float64)
    lo, hi = float(min(q.min(), 0.0, np.min(means))), float(max(q.max(), np.max(means), 1e-6))
    pad_l, pad_b, pad_t = 46, 22, 8
    plot_h = height - pad_b - pad_t
    classes = len(q)
    step = (width - pad_l - 8) / classes

    def ypos(v):
        return pad_t + plot_h * (hi - v) / (hi - lo if hi > lo else 1.0)

    parts = [f'<svg class="chart" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
             'xmlns="http://www.w3.org/2000/svg" role="img" aria-label="activation by class">',
             f'<line x1="{pad_l}" y1="{ypos(0):.1f}" x2="{width - 8}" y2="{ypos(0):.1f}" stroke="#bbb"/>']
    for v in (lo, 0.0, hi) if lo < 0 else (0.0, hi):
        parts.append(f'<text x="{pad_l - 4}" y="{ypos(v) + 4:.1f}" text-anchor="end" '
                     f'font-size="11">{_fmt(v)}</text>')
    for k in range(classes):
        cx = pad_l + step * (k + 0.5)
        colour = "#e8871e" if k == highlight else "#4a7ab5"
        p5, p25, p50, p75, p95 = (ypos(v) for v in q[k])
        tip = (f"class {k}: 5% {_fmt(q[k, 0])}, 25% {_fmt(q[k, 1])}, median {_fmt(q[k, 2])}, "
               f"75% {_fmt(q[k, 3])}, 95% {_fmt(q[k, 4])}, mean {_fmt(means[k])}")
        parts.append(f'<g><title>{tip}</title>'
                     f'<line x1="{cx:.1f}" y1="{p95:.1f}" x2="{cx:.1f}" y2="{p5:.1f}" stroke="{colour}"/>'
                     f'<rect x="{cx - step * 0.3:.1f}" y="{p75:.1f}" width="{step * 0.6:.1f}" '
                     f'height="{max(p25 - p75, 1):.1f}" fill="{colour}" fill-opacity="0.35" '
                     f'stroke="{colour}"/>'
                     f'<line x1="{cx - step * 0.3:.1f}" y1="{p50:.1f}" x2="{cx + step * 0.3:.1f}" '
                     f'y2="{p50:.1f}" stroke="#222" stroke-width="2"/>'
                     f'<circle cx="{cx:.1f}" cy="{ypos(means[k]):.1f}" r="2.5" fill="#222"/></g>'
                     f'<text x="{cx:.1f}" y="{height - 6}" text-anchor="middle" font-size="12">{k}</text>')
    parts.append("</svg>")
    return "".join(parts)


def bars(values, label: str, unit: str = "pp", width: int = 280, height: int = 150) -> str:
    """Signed bars per class (e.g. change in accuracy), on an axis symmetric about 0."""
    v = np.asarray(values, np.float64)
    limit = float(np.abs(v).max())
    if limit < 5e-4:  # below the numbers' rounding: nothing to draw
        v, limit = np.zeros_like(v), 1.0
    pad_l, pad_b, pad_t = 48, 20, 16
    plot_h = height - pad_b - pad_t
    step = (width - pad_l - 6) / len(v)
    zero = pad_t + plot_h / 2
    parts = [f'<svg class="chart" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
             f'xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{html.escape(label)}">',
             f'<text x="{pad_l}" y="11" font-size="11">{html.escape(label)}</text>',
             f'<line x1="{pad_l}" y1="{zero}" x2="{width - 6}" y2="{zero}" stroke="#999"/>',
             f'<text x="{pad_l - 4}" y="{pad_t + 4}" text-anchor="end" font-size="10">+{limit:.2g}</text>',
             f'<text x="{pad_l - 4}" y="{pad_t + plot_h + 4}" text-anchor="end" font-size="10">'
             f'&#8722;{limit:.2g}</text>']
    for k, value in enumerate(v):
        h = plot_h / 2 * abs(value) / limit
        y = zero - h if value > 0 else zero
        colour = "#c0392b" if value < 0 else "#2e86c1"
        x = pad_l + step * k + step * 0.15
        parts.append(f'<g><title>class {k}: {value:+.3g} {unit}</title><rect x="{x:.1f}" y="{y:.1f}" '
                     f'width="{step * 0.7:.1f}" height="{max(h, 0.5):.1f}" fill="{colour}"/></g>'
                     f'<text x="{x + step * 0.35:.1f}" y="{height - 5}" text-anchor="middle" '
                     f'font-size="11">{k}</text>')
    parts.append("</svg>")
    return "".join(parts)


def kernel(weights, cell: int = 44) -> str:
    """A 3x3 kernel as coloured cells (red positive, blue negative) with the values written in."""
    w = np.asarray(weights, np.float64)
    limit = max(float(np.abs(w).max()), 1e-9)
    size = cell * w.shape[0]
    parts = [f'<svg class="chart" width="{size}" height="{size}" viewBox="0 0 {size} {size}" '
             'xmlns="http://www.w3.org/2000/svg" role="img" aria-label="kernel">']
    for (r, c), value in np.ndenumerate(w):
        a = abs(value) / limit
        rgb = (255, round(255 * (1 - a)), round(255 * (1 - a))) if value > 0 else \
              (round(255 * (1 - a)), round(255 * (1 - a)), 255)
        parts.append(f'<rect x="{c * cell}" y="{r * cell}" width="{cell}" height="{cell}" '
                     f'fill="rgb{rgb}" stroke="#fff"/><text x="{c * cell + cell / 2}" '
                     f'y="{r * cell + cell / 2 + 4}" text-anchor="middle" font-size="11">'
                     f'{value:+.2f}</text>')
    parts.append("</svg>")
    return "".join(parts)
