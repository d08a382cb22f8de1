"""Tracking in an outgoing email: click links, the open pixel, one-click unsubscribe.

Pure functions of the stored message content; nothing here signs or reads a key.
The tokens are signed when the message is accepted (``tracking_content``, called by
the send rules with the deployment's signer) and kept in ``content["tracking"]``
beside the public base URL of the deployment and the original link targets, so any
process that renders the message (an API process or a worker) produces the same
MIME without holding the key.

``content["tracking"]`` after a send::

    {"opens": true, "clicks": true, "baseUrl": "https://api.example.com/sandbox",
     "links": ["https://example.com/a", ...],           # targets, by index
     "tokens": {"open": "...", "unsubscribe": "...", "clicks": ["...", ...]}}

Rules:

* Clicks: every ``href`` of an ``<a>`` or ``<area>`` whose target is an absolute
  ``http``/``https`` URL becomes ``{base}/t/c/{token}``; the token names the link's
  index, and only the target stored at that index can be reached through it.
* Opens: a 1x1 ``{base}/t/o/{token}.gif`` image goes at the end of the HTML body.
* Marketing mail (:func:`is_marketing`: a tag ``marketing`` or ``bulk``, any case, or
  ``content["bulk"]`` set by a bulk send) gets ``List-Unsubscribe: <{base}/t/u/{token}>``
  and ``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` (RFC 8058), plus an
  unsubscribe line at the end of the text and HTML bodies, whatever the tracking flags.
"""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

MARKETING_TAGS = frozenset({"marketing", "bulk"})


class TrackingSigner(Protocol):
    """Signs the tokens of a message's tracking links (:mod:`tidings.tracking.tokens`)."""

    def open_token(self, message_id: str) -> str: ...

    def click_token(self, message_id: str, link: int) -> str: ...

    def unsubscribe_token(self, message_id: str) -> str: ...


# An href of <a> or <area>: the attribute's prefix, then its value (quoted or not).
_HREF = re.compile(
    r"""(<(?:a|area)\b[^>]*?(?<![\w-])href\s*=\s*)("[^"]*"|'[^']*'|[^\s"'=<>`]+)""",
    re.IGNORECASE,
)
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)


def _target(raw: str) -> str | None:
    """The link's URL when it is one we track (absolute http/https), else None."""
    value = raw[1:-1] if raw[:1] in "\"'" else raw
    url = html_lib.unescape(value).strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return url


def extract_links(html: str) -> list[str]:
    """The tracked link targets of an HTML body, in document order."""
    found = []
    for match in _HREF.finditer(html):
        url = _target(match.group(2))
        if url is not None:
            found.append(url)
    return found


def rewrite_links(html: str, replacement: Callable[[int, str], str | None]) -> str:
    """Each tracked link ``i`` (target ``url``) gets ``replacement(i, url)`` as its href,
    or stays as it is when that returns None."""
    index = 0

    def swap(match: re.Match[str]) -> str:
        nonlocal index
        url = _target(match.group(2))
        if url is None:
            return match.group(0)
        new = replacement(index, url)
        index += 1
        if new is None:
            return match.group(0)
        return f'{match.group(1)}"{html_lib.escape(new, quote=True)}"'

    return _HREF.sub(swap, html)


def _before_body_end(html: str, snippet: str) -> str:
    ends = list(_BODY_END.finditer(html))
    if not ends:
        return html + snippet
    at = ends[-1].start()
    return html[:at] + snippet + html[at:]


def is_marketing(content: dict[str, Any]) -> bool:
    tags = {str(tag).lower() for tag in content.get("tags") or []}
    return bool(content.get("bulk")) or bool(tags & MARKETING_TAGS)


def tracking_content(
    *,
    message_id: str,
    html: str | None,
    tags: list[str],
    flags: dict[str, bool],
    base_url: str | None,
    signer: TrackingSigner | None,
    bulk: bool = False,
) -> dict[str, Any]:
    """``content["tracking"]`` for a new message: flags, base URL, links and tokens."""
    tracking: dict[str, Any] = dict(flags)
    if base_url is None or signer is None:
        return tracking
    tokens: dict[str, Any] = {}
    if flags.get("opens") and html is not None:
        tokens["open"] = signer.open_token(message_id)
    if flags.get("clicks") and html is not None:
        links = extract_links(html)
        tracking["links"] = links
        tokens["clicks"] = [signer.click_token(message_id, i) for i in range(len(links))]
    if is_marketing({"tags": tags, "bulk": bulk}):
        tokens["unsubscribe"] = signer.unsubscribe_token(message_id)
    tracking["baseUrl"] = base_url.rstrip("/")
    tracking["tokens"] = tokens
    return tracking


@dataclass(frozen=True, slots=True)
class TrackedBodies:
    """What tracking changes in a message: its bodies and our extra headers."""

    html: str | None
    text: str | None
    headers: list[tuple[str, str]] = field(default_factory=list)


def apply_tracking(content: dict[str, Any], text: str | None, html: str | None) -> TrackedBodies:
    """The bodies and headers as sent, given the stored content (see module doc)."""
    tracking = content.get("tracking") or {}
    base = tracking.get("baseUrl")
    tokens = tracking.get("tokens") or {}
    if not isinstance(base, str) or not isinstance(tokens, dict):
        return TrackedBodies(html, text)
    headers: list[tuple[str, str]] = []
    if html is not None:
        links: list[str] = tracking.get("links") or []
        clicks: list[str] = tokens.get("clicks") or []

        def tracked(index: int, url: str) -> str | None:
            if index < len(links) and index < len(clicks) and links[index] == url:
                return f"{base}/t/c/{clicks[index]}"
            return None

        html = rewrite_links(html, tracked)
    unsubscribe = tokens.get("unsubscribe")
    if isinstance(unsubscribe, str):
        url = f"{base}/t/u/{unsubscribe}"
        headers += [
            ("List-Unsubscribe", f"<{url}>"),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        ]
        if text is not None:
            text = f"{text.rstrip()}\n\n--\nUnsubscribe: {url}\n"
        if html is not None:
            html = _before_body_end(
                html,
                f'<p style="font-size:12px;color:#666666">'
                f'<a href="{html_lib.escape(url, quote=True)}">Unsubscribe</a></p>',
            )
    opened = tokens.get("open")
    if html is not None and isinstance(opened, str):
        pixel = html_lib.escape(f"{base}/t/o/{opened}.gif", quote=True)
        html = _before_body_end(
            html,
            f'<img src="{pixel}" width="1" height="1" alt="" '
            f'style="display:block;width:1px;height:1px;border:0" />',
        )
    return TrackedBodies(html, text, headers)
