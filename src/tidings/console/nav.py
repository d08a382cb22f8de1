"""The console's navigation: one entry per top-level page, in the order shown.

A new page adds its entry here; ``path`` is below ``/console`` ("" is the overview),
and the entry is marked current for its path and every path beneath it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class NavEntry:
    label: str
    path: str

    def is_current(self, page_path: str) -> bool:
        if not self.path:
            return page_path in ("", "/")
        return page_path == self.path or page_path.startswith(self.path + "/")


NAV: tuple[NavEntry, ...] = (
    NavEntry("Overview", ""),
    NavEntry("Messages", "/messages"),
    NavEntry("Providers", "/providers"),
    NavEntry("Domains", "/domains"),
    NavEntry("Webhooks", "/webhooks"),
    NavEntry("Batches", "/batches"),
    NavEntry("Templates", "/templates"),
    NavEntry("Contacts", "/contacts"),
)
