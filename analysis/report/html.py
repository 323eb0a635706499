"""The report page: `render_html` turns the sections into one self-contained index.html.

Plain HTML with a small inline style sheet in the one page skeleton (`analysis.html.page`):
relative links to the section's files only, no scripts, nothing fetched from the network, every
value escaped.
"""

from __future__ import annotations


from analysis import html
from analysis.report.context import Context, csv_value


_STYLE = """body{font-family:sans-serif;max-width:1150px;margin:2em auto;padding:0 1em;color:#222}
figure{margin:1.5em 0}img{max-width:100%;border:1px solid #ddd}figcaption{font-size:.9em;color:#444}
table{border-collapse:collapse;margin:1em 0;font-size:.85em}td,th{border:1px solid #ccc;padding:2px 6px;
text-align:right}th{background:#f2f2f2}caption{caption-side:top;text-align:left;font-size:.9em;
padding-bottom:4px}code{background:#f4f4f4;padding:0 3px}"""


def _html_table(rows, caption="", show=None, link=None) -> str:
    if not rows:
        return ""
    head = "".join(f"<th>{html.escape(str(k))}</th>" for k in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(csv_value(v)))}</td>"
                                    for v in r.values()) + "</tr>" for r in rows[:show])
    link_html = f' (<a href="{html.escape(link)}">{html.escape(link)}</a>)' if link else ""
    return (f"<table><caption>{html.escape(caption)}{link_html}</caption><tr>{head}</tr>"
            f"{body}</table>")


def render_html(ctx: Context, sections: list, summary: dict) -> str:
    """The report page: key numbers, then each section's text, tables and figures."""
    d, c, noun = ctx.name(ctx.digit), ctx.name(ctx.contrast), ctx.noun
    model = summary["model"]
    key = [{"": "model", "value": f"{model['file']} (sha256 {model['sha256'][:16]}...)"
            if model["file"] else "(in memory, no file)"},
           {"": "test accuracy", "value": f"{summary['test_accuracy']:.4%}"},
           {"": f"{noun} / contrast", "value": f"{d} / {c} ({ctx.contrast_source})"},
           {"": f"confusions {d}->{c}, {c}->{d}",
            "value": ", ".join(map(str, summary["confusions_digit_contrast"].values()))}]
    if summary.get("probe"):
        key.append({"": f"probe accuracy ({ctx.last_conv}, cross-validated)",
                    "value": f"{summary['probe']['all_features']:.2%}"})
    if summary.get("ablation"):
        last = summary["ablation"]["rows"][-1]
        key.append({"": f"accuracy on {d} / {c}, top {last['k']} maps zeroed",
                    "value": f"{last['ranked_accuracy_a']:.2%} / {last['ranked_accuracy_b']:.2%} "
                             f"(random {last['random_accuracy_a_mean']:.2%} / "
                             f"{last['random_accuracy_b_mean']:.2%})"})
    what = "" if ctx.dataset.name == "mnist" else f"{ctx.dataset.title} "
    parts = [f"<h1>How the CNN sees {html.escape(ctx.a(ctx.digit))} (contrast: {html.escape(c)})"
             f"</h1>",
             _html_table(key, "Key numbers (all in summary.json)"),
             "<p>" + " · ".join(f'<a href="#{s.key}">{html.escape(s.title)}</a>' for s in sections)
             + "</p>"]
    for s in sections:
        parts.append(f'<h2 id="{s.key}">{html.escape(s.title)}</h2>')
        if s.text:
            parts.append(f"<p>{html.escape(s.text)}</p>")
        parts += [_html_table(t.rows, t.caption, t.show, t.file) for t in s.tables]
        for f in s.figures:
            parts.append(f'<figure><a href="{f.file}"><img src="{f.file}" alt="{html.escape(f.file)}">'
                         f"</a><figcaption>{html.escape(f.caption)} Numbers: "
                         f'<a href="{f.data}">{f.data}</a>.</figcaption></figure>')
    command = (f"analyze --digit {ctx.digit}" if ctx.dataset.name == "mnist" else
               f"analyze --dataset {ctx.dataset.name} --class {ctx.digit}")
    parts.append(f"<p><small>Written by <code>python -m mnist_cnn {command}</code>; "
                 "files listed in <a href='summary.json'>summary.json</a>.</small></p>")
    return html.page(f"mnist_cnn: {what}{noun} {d}", "\n" + "\n".join(parts), style=_STYLE, lang=None,
                     doctype="<!DOCTYPE html>", quote="'")
