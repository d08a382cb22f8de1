"""Log configuration: readable text for a terminal, or one JSON object per line.

Secrets never reach the logs. Tokens, passwords and provider credentials are not
passed to log calls; URLs are, and some carry secrets in their query strings: the
chat-box page and stream take their token as ``?token=`` (an ``<iframe>`` and an
``EventSource`` cannot send headers), and a webhook URL may hold an ``api_key``.
So every record goes through :class:`RedactSecrets` before it is written: absolute
URLs (the webhook attempts httpx logs) lose their whole query string, and known
secret parameters in any other query string (the access log's paths) are blanked.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

_RESERVED = set(vars(logging.makeLogRecord({})))
REDACTED = "[redacted]"
SECRET_PARAMETERS = (
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "api_key",
    "apikey",
    "api-key",
    "key",
    "secret",
    "client_secret",
    "signature",
    "sig",
    "password",
    "passwd",
    "auth",
    "jwt",
)
_ABSOLUTE_URL_QUERY = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s?#\"'<>]*)\?[^\s#\"'<>]*")
_SECRET_PARAMETER = re.compile(
    r"([?&;](?:" + "|".join(re.escape(name) for name in SECRET_PARAMETERS) + r")=)[^&;#\s\"']*",
    re.IGNORECASE,
)
# Loggers whose records carry URLs; filtered where they are made as well, so a
# handler added later (a test's, an embedding application's) never sees a secret.
URL_LOGGERS = ("httpx", "uvicorn.access")


def redact(text: str) -> str:
    """``text`` with absolute URLs' query strings and secret query parameters blanked."""
    text = _ABSOLUTE_URL_QUERY.sub(rf"\1?{REDACTED}", text)
    return _SECRET_PARAMETER.sub(rf"\1{REDACTED}", text)


class RedactSecrets(logging.Filter):
    """Rewrites a record's message (and its traceback) through :func:`redact`."""

    _tracebacks = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_text is None:
            record.exc_text = redact(self._tracebacks.formatException(record.exc_info))
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(log_format: str, level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactSecrets())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
        # A logging config (or a uvicorn started with its own log level) applied
        # earlier in the process must not leave the access log silent: they follow
        # the root's level.
        logging.getLogger(name).disabled = False
        logging.getLogger(name).setLevel(logging.NOTSET)
    for name in URL_LOGGERS:
        watched = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in watched.filters):
            watched.addFilter(RedactSecrets())
    # Migration chatter on every start says nothing an operator needs.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, root.level))
