"""The ``smtp`` kind: email through a relay (Postfix, SES, Postmark, Mailgun,
SendGrid, Google Workspace SMTP).

- :mod:`.config` its settings (spec section 13);
- :mod:`.transport` the connection pool (TLS verified, AUTH, timeouts);
- :mod:`.errors` the relay's replies -> the delivery error tree;
- :mod:`.provider` one message, one SMTP transaction;
- :mod:`.refs` the ids it gives recipients, and DSN's xtext;
- :mod:`.mailreports` / :mod:`.reports` reading DSNs, complaints and bounces back;
- :mod:`.listener` the server that takes them on the bounce domain.
"""

from __future__ import annotations

from tidings.providers.registry import KindSpec
from tidings.providers.smtp.config import SmtpConfig
from tidings.providers.smtp.provider import SmtpProvider
from tidings.providers.smtp.reports import parse_report


def _concurrency(config: SmtpConfig) -> int:
    return config.max_connections


SMTP = KindSpec(
    kind="smtp",
    channels=frozenset({"email"}),
    config=SmtpConfig,
    build=SmtpProvider,
    parse_report=parse_report,
    summary="An SMTP relay: DKIM-signed mail with VERP return paths and DSNs.",
    concurrency=_concurrency,
)

__all__ = ["SMTP", "SmtpConfig", "SmtpProvider"]
