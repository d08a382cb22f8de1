"""Reading back what the simulator stored in the inbox (the simulated receipts)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tidings.messages.status import status_of
from tidings.providers.base import Report, StatusReport


def parse_report(payload: dict[str, Any]) -> list[Report]:
    error = payload.get("error") or {}
    return [
        StatusReport(
            external_id=str(payload["id"]),
            status=status_of(payload["status"]),
            at=datetime.fromisoformat(payload["at"]),
            error_code=error.get("code"),
            error_message=error.get("message"),
            event=payload.get("event"),
        )
    ]
