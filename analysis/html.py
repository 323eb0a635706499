"""The one HTML page skeleton of every page the analyses write (the report, predict, the explorer
and its draw page): doctype, head (charset, title, viewport, style sheets or an inline style),
body, scripts; and the escape helpers they share.

Every page is static and self-contained: relative links only, nothing fetched from the network,
every value escaped. The report and predict pages keep the spelling they had before they shared
this skeleton (no `lang`, single-quoted charset; predict's lower-case doctype and no final
newline), so that their bytes did not change with the move (docs/architecture.md).
"""

from __future__ import annotations

import html

DOCTYPE = "<!DOCTYPE html>\n"
VIEWPORT = '<meta name="viewport" content="width=device-width, initial-scale=1">'


def escape(value) -> str:
    """`value` as HTML text or a quoted attribute value: str(value) with &, <, >, " and '
    escaped."""
    return html.escape(str(value))


def page(title: str, body: str, *, style: str = "", stylesheets=(), scripts=(),
         viewport: bool = False, lang: str | None = "en", doctype: str = DOCTYPE,
         quote: str = '"', end: str = "\n") -> str:
    """A whole HTML page around `body`.

    Parameters
    ----------
    title : the page's title, plain text (escaped here).
    body : the body's HTML, as is.
    style : an inline style sheet (a <style> element in the head), or "" for none.
    stylesheets, scripts : relative URLs of style sheets (in the head) and scripts (at the end of
        the body), in order.
    viewport : add the mobile viewport <meta>.
    lang : the <html> element's language, or None for none.
    doctype : the doctype line; quote : the quote of the charset attribute; end : what follows
        </html> (the older pages' spellings, see the module docstring).

    Returns
    -------
    str, the page.
    """
    lang_attr = f' lang="{lang}"' if lang else ""
    head = (f"<meta charset={quote}utf-8{quote}><title>{escape(title)}</title>"
            + (VIEWPORT if viewport else "")
            + "".join(f'<link rel="stylesheet" href="{escape(url)}">' for url in stylesheets)
            + (f"<style>{style}</style>" if style else ""))
    tail = "".join(f'<script src="{escape(url)}"></script>' for url in scripts)
    return f"{doctype}<html{lang_attr}><head>{head}</head><body>{body}{tail}</body></html>{end}"
