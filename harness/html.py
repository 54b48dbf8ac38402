"""Self-contained HTML pages: tables, text and figures in one file (plots inlined as base64 PNGs,
styles inline, no scripts), readable in any browser with no server and no network."""

from __future__ import annotations

import base64
import html
import io
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from recsec.harness.significance import Estimate
from recsec.harness.version import code_version

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1200px;
       color: #1d2329; line-height: 1.45; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #d5dbe1; }
h3 { margin-top: 1.6rem; } .meta { color: #5b6670; font-size: .9rem; }
table { border-collapse: collapse; margin: .6rem 0 1rem; font-size: .85rem; }
th, td { border: 1px solid #d5dbe1; padding: .25rem .5rem; text-align: left; vertical-align: top; }
th { background: #eef1f4; } tr:nth-child(even) td { background: #f8f9fa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.scroll { overflow-x: auto; } figure { margin: 1rem 0; } figure img { max-width: 100%; height: auto; }
td.links { white-space: nowrap; font-family: ui-monospace, monospace; font-size: .8rem; }
figcaption { color: #5b6670; font-size: .85rem; } .yes { color: #137333; font-weight: 600; }
sup.sig { color: #137333; font-weight: 600; margin-left: .15rem; cursor: help; }
a { color: #0b57d0; text-decoration: none; } a:hover { text-decoration: underline; }
"""


@dataclass
class Link:
    text: str
    href: str


@dataclass
class Page:
    title: str
    subtitle: str = ""
    parts: list[str] = field(default_factory=list)

    def heading(self, text: str, level: int = 2) -> "Page":
        self.parts.append(f"<h{level}>{html.escape(text)}</h{level}>")
        return self

    def text(self, text: str, css: str = "") -> "Page":
        klass = f' class="{css}"' if css else ""
        self.parts.append(f"<p{klass}>{html.escape(text)}</p>")
        return self

    def table(self, frame: pd.DataFrame, index: bool = False, caption: str = "") -> "Page":
        """A DataFrame as a table. Cells may hold a Link or a list of Links; numbers align right."""
        frame = frame.reset_index() if index else frame
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
        body = []
        for row in frame.itertuples(index=False):
            body.append("<tr>" + "".join(_cell(v) for v in row) + "</tr>")
        cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
        self.parts.append(f'<div class="scroll"><table>{cap}<thead><tr>{head}</tr></thead>'
                          f'<tbody>{"".join(body)}</tbody></table></div>')
        return self

    def figure(self, fig, caption: str = "") -> "Page":
        """A matplotlib figure, inlined as a PNG (and closed)."""
        import matplotlib.pyplot as plt

        buffer = io.BytesIO()
        fig.tight_layout()
        fig.savefig(buffer, format="png", dpi=110)
        plt.close(fig)
        data = base64.b64encode(buffer.getvalue()).decode("ascii")
        cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
        self.parts.append(f'<figure><img alt="{html.escape(caption or "figure")}" '
                          f'src="data:image/png;base64,{data}">{cap}</figure>')
        return self

    def render(self) -> str:
        generated = f"made {time.strftime('%Y-%m-%d %H:%M %Z')} by recsec {code_version()}"
        sub = f'<p class="meta">{html.escape(self.subtitle)}</p>' if self.subtitle else ""
        return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                f"<title>{html.escape(self.title)}</title><style>{_STYLE}</style></head><body>"
                f"<h1>{html.escape(self.title)}</h1>{sub}<p class=\"meta\">{html.escape(generated)}</p>"
                + "\n".join(self.parts) + "</body></html>\n")


def _cell(value) -> str:
    if isinstance(value, Estimate):
        mark = ""
        if value.above:
            rows = ", ".join(value.above)
            mark = (f'<sup class="sig" title="significantly above row{"s" if len(value.above) > 1 else ""} {rows}'
                    f' (paired t over seeds, Holm-corrected over the table)">{html.escape(rows)}</sup>')
        return f'<td class="num">{html.escape(value.interval.text(value.digits))}{mark}{html.escape(value.note)}</td>'
    if isinstance(value, Link):
        return f'<td><a href="{html.escape(value.href)}">{html.escape(value.text)}</a></td>'
    if isinstance(value, list) and all(isinstance(v, (Link, str)) for v in value):
        links = "<br>".join(f'<a href="{html.escape(v.href)}">{html.escape(v.text)}</a>' if isinstance(v, Link)
                            else html.escape(v) for v in value)
        return f'<td class="links">{links}</td>'
    if isinstance(value, (bool, np.bool_)):
        return '<td class="yes">yes</td>' if value else "<td></td>"
    if isinstance(value, (int, np.integer)):
        return f'<td class="num">{value}</td>'
    if isinstance(value, (float, np.floating)):
        return '<td class="num"></td>' if pd.isna(value) else f'<td class="num">{value:.4f}</td>'
    return f"<td>{html.escape(str(value))}</td>"
