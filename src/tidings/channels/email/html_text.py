"""A plain-text rendering of an HTML email body, for the text/plain alternative.

Deliberately simple: tags are dropped, entities decoded, whitespace collapsed as a
browser would, block elements start new lines, list items get a "- " bullet and links
keep their target as ``text (url)``. It is what a text-only client shows, and what spam
filters compare with the HTML part, so it should carry the same words and links.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

__all__ = ["html_to_text"]

# Contents that are not text for a reader.
_SKIPPED = frozenset({"head", "script", "style", "template", "title"})
# Elements separated by a blank line / by a line break.
_PARAGRAPHS = frozenset(
    {"p", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol", "blockquote", "pre", "hr"}
)
_LINES = frozenset(
    {"div", "li", "tr", "section", "article", "header", "footer", "nav", "dl", "dt", "dd"}
)
_LINKABLE = re.compile(r"(https?:|mailto:)", re.IGNORECASE)
_WHITESPACE = re.compile(r"[ \t\r\n\f]+")


def html_to_text(html: str) -> str:
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    lines = [line.rstrip() for line in "".join(parser.out).split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self._skipping = 0
        self._pre = 0
        # Open <a> elements: their href and where their text starts in ``out``.
        self._links: list[tuple[str | None, int]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED:
            self._skipping += 1
        elif self._skipping:
            return
        elif tag == "br":
            self.out.append("\n")
        elif tag == "a":
            self._links.append((dict(attrs).get("href"), len(self.out)))
        elif tag == "img":
            alt = dict(attrs).get("alt")
            if alt:
                self._text(alt)
        self._block(tag)
        if tag == "li" and not self._skipping:
            self.out.append("- ")
        if tag == "pre":
            self._pre += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED:
            self._skipping = max(0, self._skipping - 1)
            return
        if self._skipping:
            return
        if tag == "a" and self._links:
            href, start = self._links.pop()
            label = "".join(self.out[start:]).strip()
            if href and _LINKABLE.match(href) and href not in (label, f"mailto:{label}"):
                self.out.append(f" ({href})" if label else href)
        if tag == "pre":
            self._pre = max(0, self._pre - 1)
        self._block(tag)

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self._text(data)

    def _block(self, tag: str) -> None:
        if self._skipping:
            return
        if tag in _PARAGRAPHS:
            self._end_line(blank=True)
        elif tag in _LINES:
            self._end_line(blank=False)

    def _end_line(self, *, blank: bool) -> None:
        # Adjacent blocks (</li><li>, </p><p>) share one break instead of stacking them.
        have = 0
        for chunk in reversed(self.out):
            stripped = chunk.rstrip("\n")
            have += len(chunk) - len(stripped)
            if stripped:
                break
        wanted = 2 if blank else 1
        if self.out and have < wanted:
            self.out.append("\n" * (wanted - have))

    def _text(self, data: str) -> None:
        if not self._pre:
            # Browsers render any run of whitespace as one space, none at a line start.
            data = _WHITESPACE.sub(" ", data)
            if not self.out or self.out[-1].endswith("\n"):
                data = data.lstrip(" ")
        if data:
            self.out.append(data)
