"""The predict report's deletion and insertion curves as inline SVG (Matplotlib's start-up
alone would take a tenth of the 10-second budget of `make predict`; the pictures are in
`analysis.pictures`)."""

from __future__ import annotations

import html

import numpy as np


def curves_svg(curves: dict, kind: str, width: int = 320, height: int = 170) -> str:
    """Inline SVG of the mean `kind` ("deletion" or "insertion") curve of each method."""
    pad = 28
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
               "#17becf", "#bcbd22", "#7f7f7f"]
    lines, legend = [], []
    for i, (name, c) in enumerate(curves.items()):
        mean = np.asarray(c[kind]).mean(axis=0)
        xs = pad + np.linspace(0, width - 2 * pad, len(mean))
        ys = height - pad - mean * (height - 2 * pad)
        colour = "#000" if name in ("random", "sobel") else palette[i % len(palette)]
        dash = ' stroke-dasharray="4 3"' if name in ("random", "sobel") else ""
        points = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys))
        lines.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5"{dash} '
                     f'points="{points}"><title>{html.escape(name)}</title></polyline>')
        legend.append(f'<span style="color:{colour};margin-right:.6em">&#9644; {html.escape(name)}</span>')
    axes = (f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="#999"/>'
            f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="#999"/>'
            f'<text x="{width / 2}" y="{height - 6}" font-size="10" text-anchor="middle">share of '
            f'pixels {"removed" if kind == "deletion" else "revealed"} (0-1)</text>'
            f'<text x="4" y="{pad - 8}" font-size="10">probability</text>')
    return (f'<figure class="curve"><svg width="{width}" height="{height}" '
            f'xmlns="http://www.w3.org/2000/svg">{axes}{"".join(lines)}</svg>'
            f'<figcaption>{kind} (mean curve) {" ".join(legend)}</figcaption></figure>')
