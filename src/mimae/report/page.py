"""One page in two forms: ``report.md``, and ``report.html`` rendered from it by the ``markdown`` package, with its
PNG figures embedded as data URIs so that the HTML page stands alone."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

import markdown

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 62rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: left; }
th { background: #f3f3f3; }
td:nth-child(n+2) { font-variant-numeric: tabular-nums; }
img { max-width: 100%; }
pre { background: #f6f6f6; padding: 0.6rem; overflow-x: auto; }
"""


def table(header: tuple[str, ...], rows: list[tuple]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(str(cell) for cell in row) + " |" for row in rows)]


def embed_images(page: str, base: Path) -> str:
    """``<img src="relative.png">`` -> the PNG as a data URI, so that the page stands alone."""
    def data_uri(match: re.Match) -> str:
        png = (base / html.unescape(match.group(2))).read_bytes()
        return f'{match.group(1)}data:image/png;base64,{base64.b64encode(png).decode()}"'
    return re.sub(r'(<img[^>]*\bsrc=")([^":]+\.png)"', data_uri, page)


def html_page(text: str, title: str, base: Path) -> str:
    body = markdown.markdown(text, extensions=["tables", "fenced_code"])
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{html.escape(title)}</title>\n'
            f"<style>{STYLE}</style>\n</head>\n<body>\n{embed_images(body, base)}\n</body>\n</html>\n")


def write_page(text: str, folder: Path, title: str) -> tuple[Path, Path]:
    """Write ``folder/report.md`` and ``folder/report.html`` (figures referenced relative to ``folder``)."""
    folder.mkdir(parents=True, exist_ok=True)
    md, page = folder / "report.md", folder / "report.html"
    md.write_text(text)
    page.write_text(html_page(text, title, folder))
    return md, page
