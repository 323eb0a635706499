"""The explorer's concept tables: a unit's strongest measured concepts, a layer's units most
tied to each concept (numbers from `analysis.concepts.units`)."""

from __future__ import annotations

from analysis.concepts.units import most_tied, strongest
from analysis.html import escape as e

CONCEPTS_SHOWN = 3  # strongest measured concepts on a unit page; units per concept on a layer page


def unit_concept_section(u: dict) -> str:
    """The unit's strongest measured concepts (docs/concepts.md), or nothing without them."""
    if not u.get("concepts"):
        return ""
    best = strongest(u["concepts"], CONCEPTS_SHOWN)
    cells = "".join(f"<tr><th>{e(n)}</th><td>{rho:+.3f}</td></tr>" for n, rho in best)
    return ('<section id="concepts"><h2>Concepts</h2><p>Its strongest measured concepts: the '
            "Spearman correlation of its activation with each measurement of the test images "
            "(loops, stroke length and thickness, slant, ...; docs/concepts.md). A correlation "
            f'is no cause.</p><table class="nums">{cells}</table></section>')


def layer_concept_section(units: list) -> str:
    """Per measurement, the units of a layer most tied to it (|rho|), or nothing."""
    names = list(units[0].get("concepts") or {}) if units else []
    if not names:
        return ""
    corr = {n: [u["concepts"][n] for u in units] for n in names}
    rows = []
    for n, best in most_tied(corr, CONCEPTS_SHOWN).items():
        rows.append(f"<tr><th>{e(n)}</th>" + "".join(
            f'<td><a href="{units[i]["name"]}.html">{units[i]["name"]}</a> {rho:+.2f}</td>'
            for i, rho in best) + "</tr>")
    return ('<section id="concepts"><h2>Units most tied to each concept</h2><p>Spearman '
            "correlation of a unit's activation with a measurement of the test images "
            '(docs/concepts.md).</p><table class="nums">' + "".join(rows) + "</table></section>")
