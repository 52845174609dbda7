"""A report page written twice from the same calls: Markdown (images as files beside it) and
one self-contained HTML file (images inlined as base64, no script, no network)."""

from __future__ import annotations

import base64
import html
from pathlib import Path

from matplotlib.figure import Figure

STYLE = ("body{font-family:sans-serif;max-width:1150px;margin:2em auto;padding:0 1em;color:#222}"
         "table{border-collapse:collapse;margin:1em 0;font-size:0.9em}"
         "td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}th{background:#f2f2f2}"
         "img{max-width:100%;border:1px solid #eee;margin:0.5em 0}"
         "pre{background:#f6f6f6;padding:0.7em;overflow-x:auto;white-space:pre-wrap}"
         ".warn{background:#fff3cd;border-left:4px solid #e0a800;padding:0.4em 0.8em;margin:0.4em 0}")


class Page:
    """Markdown and HTML built side by side; figures saved as PNG into ``folder``."""

    def __init__(self, title: str, folder: Path) -> None:
        self.folder = folder
        self.images: list[Path] = []
        self.md = [f"# {title}", ""]
        self.html = [f"<h1>{html.escape(title)}</h1>"]
        self.title = title

    def heading(self, text: str, level: int = 2) -> None:
        self.md += ["#" * level + " " + text, ""]
        self.html.append(f"<h{level}>{html.escape(text)}</h{level}>")

    def para(self, text: str) -> None:
        self.md += [text, ""]
        self.html.append(f"<p>{html.escape(text)}</p>")

    def warn(self, text: str) -> None:
        self.md += [f"> **warning:** {text}", ""]
        self.html.append(f"<div class='warn'><b>warning:</b> {html.escape(text)}</div>")

    def code(self, text: str) -> None:
        self.md += ["```bash", text, "```", ""]
        self.html.append(f"<pre><code>{html.escape(text)}</code></pre>")

    def table(self, header: list[str], rows: list[list[object]]) -> None:
        cells = [[str(c).replace("|", "\\|") for c in row] for row in rows]
        self.md += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        self.md += ["| " + " | ".join(row) + " |" for row in cells] + [""]
        head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                       for row in rows)
        self.html.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")

    def figure(self, fig: Figure, name: str, alt: str) -> Path:
        """Save ``fig`` as ``name`` (a PNG in the folder) and show it on both pages."""
        path = self.folder / name
        fig.savefig(path, dpi=100, bbox_inches="tight")
        self.images.append(path)
        self.md += [f"![{alt}]({name})", ""]
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        self.html.append(f"<figure><img alt='{html.escape(alt)}' src='data:image/png;base64,"
                         f"{data}'><figcaption>{html.escape(alt)}</figcaption></figure>")
        return path

    def write(self, stem: str = "report") -> tuple[Path, Path]:
        """Write ``report.md`` and ``report.html``; return their paths."""
        md, page = self.folder / f"{stem}.md", self.folder / f"{stem}.html"
        md.write_text("\n".join(self.md))
        page.write_text("<!doctype html><html lang='en'><head><meta charset='utf-8'>"
                        f"<title>{html.escape(self.title)}</title><style>{STYLE}</style></head>"
                        f"<body>{''.join(self.html)}</body></html>")
        return md, page
