"""What a kind with an HTTP webhook gives the inbound edge (:mod:`tidings.inbound.router`).

The edge is generic: it finds the provider named in the URL, opens its config,
and asks the kind's adapter to answer the network's verification handshake, to
verify a delivery's signature over the raw bytes, and to cut a verified body
into raw reports, each naming the provider it is for by a route key (WhatsApp:
the phone number id, since one Meta app may post every number's events to one
URL). Template decisions found in the body go to the template catalog.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from tidings.providers.base import RawReport


class SplitBody(Protocol):
    @property
    def reports(self) -> list[tuple[str, RawReport]]:
        """Each report with the route key of the provider it is for."""
        ...

    @property
    def templates(self) -> list[Any]:
        """Template decisions for the catalog (see :mod:`tidings.templates.catalog`)."""
        ...


class WebhookAdapter(Protocol):
    max_body_bytes: int

    def handshake(self, config: Any, params: Mapping[str, str]) -> str | None:
        """The text to answer a verification request with; None refuses it (403)."""
        ...

    def verify(self, config: Any, headers: Mapping[str, str], raw: bytes) -> bool:
        """Whether the raw body is signed by the network (constant time)."""
        ...

    def split(self, raw: bytes) -> SplitBody:
        """The body's reports; ValueError (or a JSON error) when it is unreadable."""
        ...

    def route_key(self, config: Any) -> str:
        """What names this provider in the reports of :meth:`split`."""
        ...

    def route_key_of(self, config_values: Mapping[str, Any]) -> str | None:
        """The same, read from another provider's stored public config."""
        ...

    def catalog_key(self, config: Any) -> str:
        """What names this provider's template catalog in template updates."""
        ...
