"""Self-contained HTML pieces for reports: inline SVG figures, tables, one stylesheet."""

from __future__ import annotations

import html
import io

import matplotlib

matplotlib.use("Agg")  # reports render headless, in step processes
import matplotlib.pyplot as plt

# Text stays text in the SVG (the browser's font), not one path per glyph: smaller and faster.
matplotlib.rcParams["svg.fonttype"] = "none"


def svg(figure: plt.Figure) -> str:
    """The figure as inline SVG markup (and closed)."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def table(header: list[str], rows: list[list[str]]) -> str:
    """An HTML table with escaped cells."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ddd; padding: 4px 10px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.pass { color: #1a7f37; } .fail { color: #cf222e; } .note { background: #fff8c5; padding: 6px; }
svg { max-width: 100%; height: auto; }
"""
