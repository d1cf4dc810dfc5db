"""The run report as ONE self-contained HTML page: the report's Markdown converted here (headings,
paragraphs, lists, tables, code, links and images: the subset the project's renderers write; no new
dependency), every image embedded as a base64 ``data:`` URI, the style inline, nothing fetched.

``page(markdown, images, title)``: ``images`` maps each image path the Markdown names (``plots/x.png``)
to its PNG bytes. A Content-Security-Policy forbids every network load, so the page renders the same
offline. A small inline script records, on ``load``, whether every image decoded and any script
error, into ``<pre id="report-check">`` (the browser test reads it back with ``--dump-dom``).
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Mapping

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"
STYLE = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #1f2328; }
main { max-width: 1180px; margin: 0 auto; padding: 1.5em 2em 4em; }
nav { background: #f6f8fa; border-bottom: 1px solid #d0d7de; padding: .6em 2em; font-size: 13px; }
nav a { margin-right: 1.1em; color: #0969da; text-decoration: none; white-space: nowrap; }
h1 { font-size: 1.7em; border-bottom: 1px solid #d0d7de; padding-bottom: .3em; }
h2 { font-size: 1.35em; margin-top: 2em; border-bottom: 1px solid #d0d7de; padding-bottom: .2em; }
h3 { font-size: 1.1em; margin-top: 1.5em; }
.table { overflow-x: auto; margin: .6em 0 1em; }
table { border-collapse: collapse; font-size: 12.5px; }
th, td { border: 1px solid #d0d7de; padding: 3px 7px; text-align: right; white-space: nowrap; }
th { background: #f6f8fa; }
.text, .long { text-align: left; }
.long { white-space: normal; min-width: 26em; }
tr:nth-child(even) td { background: #fafbfc; }
code { background: #eff1f3; padding: 0 .25em; border-radius: 3px; font-size: 90%; }
pre { background: #f6f8fa; padding: .8em; overflow-x: auto; }
figure { display: inline-block; vertical-align: top; margin: .6em 1em .6em 0; }
img { max-width: 100%; height: auto; border: 1px solid #eaeef2; }
.missing { color: #9a6700; }
"""
# Runs first: records any script error (and images that fail to load, which bubble as error events).
ERROR_RECORDER = """window.__reportErrors = [];
window.addEventListener("error", function (e) {
  window.__reportErrors.push(e.message || ("failed to load " + ((e.target && e.target.alt) || e.type)));
}, true);"""
# Runs on load: every image complete and decoded (naturalWidth > 0), the errors seen, into the DOM.
IMAGE_CHECK = """window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var failed = images.filter(function (i) { return !(i.complete && i.naturalWidth > 0); })
                     .map(function (i) { return i.alt || "(no alt)"; });
  var out = document.getElementById("report-check");
  out.textContent = JSON.stringify({images: images.length, loaded: images.length - failed.length,
                                    failed: failed, errors: window.__reportErrors});
  out.setAttribute("data-done", "1");
});"""

HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
IMAGE_LINE = re.compile(r"^!\[([^\]]*)\]\(([^)\s]+)\)$")
INLINE = re.compile(r"`(?P<code>[^`]*)`|!\[(?P<alt>[^\]]*)\]\((?P<src>[^)\s]+)\)"
                    r"|\[(?P<text>[^\]]+)\]\((?P<href>[^)\s]+)\)|\*\*(?P<bold>.+?)\*\*")
RULE = re.compile(r"^\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?$")
LONG_CELL = 60  # characters: a longer text cell wraps instead of widening its table
LIST_ITEM = re.compile(r"^\s*[-*] ")
NUMERIC = re.compile(r"^[-+−]?[\d,.]+(\s?[%×])?$|^$|^–$")


def slug(text: str) -> str:
    """An anchor id from a heading's text."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"


def _data_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _img(alt: str, path: str, images: Mapping[str, bytes]) -> str:
    if path not in images:  # never a src pointing outside the page
        return f'<span class="missing">[image not available: {html.escape(alt)}]</span>'
    return f'<img alt="{html.escape(alt, quote=True)}" src="{_data_uri(images[path])}">'


def _link(text: str, target: str) -> str:
    if re.match(r"^[a-z]+:", target):  # an address on the network: shown, never followed or fetched
        return f"{text} ({html.escape(target)})"
    return f'<a href="{html.escape(target, quote=True)}">{text}</a>'


def inline(text: str, images: Mapping[str, bytes]) -> str:
    """One line of Markdown text → HTML: `code`, **bold**, [links](path) (their text inline too) and
    ![images](path), in the order they appear; everything else escaped."""
    out, pos = [], 0
    for m in INLINE.finditer(text):
        out.append(html.escape(text[pos:m.start()]))
        if m.group("code") is not None:
            out.append(f"<code>{html.escape(m.group('code'))}</code>")
        elif m.group("src") is not None:
            out.append(_img(m.group("alt"), m.group("src"), images))
        elif m.group("href") is not None:
            out.append(_link(inline(m.group("text"), images), m.group("href")))
        else:
            out.append(f"<strong>{inline(m.group('bold'), images)}</strong>")
        pos = m.end()
    out.append(html.escape(text[pos:]))
    return "".join(out)


def split_cells(line: str) -> list[str]:
    """The cells of a Markdown table row (``\\|`` is a literal bar inside a cell)."""
    body = line.strip()
    body = body[1:] if body.startswith("|") else body
    body = body[:-1] if body.endswith("|") and not body.endswith("\\|") else body
    return [cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", body)]


def table(lines: list[str], images: Mapping[str, bytes]) -> str:
    """A Markdown table (header, rule, rows) → an HTML table in a horizontally scrolling box; a column
    of numbers is right-aligned, any other left-aligned."""
    header = split_cells(lines[0])
    rows = [split_cells(line) for line in lines[2:]]
    text = [any(not NUMERIC.match(row[i]) for row in rows if i < len(row)) or i == 0 for i in range(len(header))]

    def cells(tag: str, values: list[str]) -> str:
        attrs = [(' class="long"' if len(v) > LONG_CELL else ' class="text"') if i >= len(text) or text[i] else ""
                 for i, v in enumerate(values)]
        return "".join(f"<{tag}{a}>{inline(v, images)}</{tag}>" for a, v in zip(attrs, values, strict=True))

    body = "".join(f"<tr>{cells('td', row)}</tr>" for row in rows)
    return f'<div class="table"><table><thead><tr>{cells("th", header)}</tr></thead><tbody>{body}</tbody></table></div>'


def _block(lines: list[str], images: Mapping[str, bytes]) -> str:
    """One block of consecutive non-blank lines (no heading, no code fence) → HTML."""
    if len(lines) >= 2 and lines[0].lstrip().startswith("|") and RULE.match(lines[1].strip()):
        return table(lines, images)
    if all(IMAGE_LINE.match(line.strip()) for line in lines):
        return "".join(f"<figure>{_img(m.group(1), m.group(2), images)}</figure>"
                       for m in (IMAGE_LINE.match(line.strip()) for line in lines))
    if all(LIST_ITEM.match(line) for line in lines):
        items = "".join("<li>" + inline(LIST_ITEM.sub("", line), images) + "</li>" for line in lines)
        return f"<ul>{items}</ul>"
    return f"<p>{inline(' '.join(line.strip() for line in lines), images)}</p>"


def _code(lines: list[str]) -> str:
    return "<pre><code>" + html.escape("\n".join(lines)) + "</code></pre>"


def to_html(markdown: str, images: Mapping[str, bytes]) -> tuple[str, list[tuple[int, str, str]]]:
    """The body HTML of a Markdown document (the subset above) and its headings (level, id, text);
    ids are unique (``-2``, ``-3``… on repeats)."""
    out: list[str] = []
    headings: list[tuple[int, str, str]] = []
    block: list[str] = []
    code: list[str] | None = None
    for line in [*markdown.splitlines(), ""]:
        if code is not None:
            if line.strip().startswith("```"):
                out.append(_code(code))
                code = None
            else:
                code.append(line)
            continue
        heading = HEADING.match(line)
        if block and (not line.strip() or heading or line.strip().startswith("```")):
            out.append(_block(block, images))
            block = []
        if line.strip().startswith("```"):
            code = []
        elif heading:
            level, text = len(heading.group(1)), heading.group(2).strip()
            anchor, n = slug(text), 1
            while anchor in {h[1] for h in headings}:
                n += 1
                anchor = f"{slug(text)}-{n}"
            headings.append((level, anchor, text))
            out.append(f'<h{level} id="{anchor}">{inline(text, images)}</h{level}>')
        elif line.strip():
            block.append(line)
    if code is not None:  # an unclosed fence: keep its text
        out.append(_code(code))
    return "\n".join(out), headings


def _nav(headings: list[tuple[int, str, str]]) -> str:
    """Links to the second-level sections."""
    links = [f'<a href="#{anchor}">{html.escape(re.sub(r"[`*]", "", text))}</a>'
             for level, anchor, text in headings if level == 2]
    return f"<nav>{''.join(links)}</nav>" if links else ""


def page(markdown: str, images: Mapping[str, bytes], title: str) -> str:
    """The whole self-contained page."""
    body, headings = to_html(markdown, images)
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title>", f"<style>{STYLE}</style>", f"<script>{ERROR_RECORDER}</script>",
        "</head>", "<body>", _nav(headings), "<main>", body, "</main>",
        '<pre id="report-check" hidden></pre>', f"<script>{IMAGE_CHECK}</script>", "</body>", "</html>", ""])
