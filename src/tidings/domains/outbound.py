"""What the ``smtp`` kind asks of the deployment per message: the MIME, signed with
the sender domain's DKIM keys, and the envelope sender (a VERP address on the bounce
domain when one is set).

Production mail is only ever sent signed: a sender whose domain was never verified
is refused here too (``sender_not_verified``, permanent), whatever let it through
the API. Bulk mail (marketing tags or a bulk send) gets a ``Feedback-ID`` header
(``<campaign>:<account>:bulk:tidings``) so mailbox providers' feedback loops can
group complaints by campaign and account. The rendering and signing run in a
small process pool when configured (:mod:`.signing_pool`), else on the loop. The
unsealed keys of a domain are kept for a minute, so a deletion takes effect within
that (a verification at once).
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any

from tidings.channels.email.mime import envelope_recipients
from tidings.channels.email.stored import content_from_json
from tidings.core.environments import Environment
from tidings.core.key_ring import SecretUnavailable
from tidings.domains.service import DomainService
from tidings.domains.signing import SigningKeys
from tidings.domains.signing_pool import SigningPool, default_processes, signed_mime
from tidings.domains.verp import Verp
from tidings.providers.base import OutboundMessage
from tidings.providers.errors import ConfigurationError, PermanentDeliveryError
from tidings.providers.smtp.provider import PreparedMail

KEYS_TTL_SECONDS = 60.0


class DomainMail:
    def __init__(
        self, domains: DomainService, verp: Verp | None, *, signing_processes: int | None = None
    ) -> None:
        self._domains = domains
        self._verp = verp
        processes = default_processes() if signing_processes is None else signing_processes
        # Rendering and signing in other processes (started with the first message).
        self.pool = SigningPool(processes) if processes else None
        self._keys: dict[tuple[str, str, str], tuple[float, SigningKeys | None]] = {}

    async def prepare(self, message: OutboundMessage, *, date: datetime) -> PreparedMail:
        content = content_from_json(message.content)
        domain = content.sender.domain.lower()
        keys = await self._keys_for(message.account_id, message.environment, domain)
        if keys is None:
            raise PermanentDeliveryError(
                "sender_not_verified",
                f"{domain} is not a verified sending domain of this account.",
            )
        signed = await signed_mime_soon(message, keys, date, self.pool)
        mail_from = (
            self._verp.address(message.id) if self._verp is not None else content.sender.address
        )
        return PreparedMail(signed, mail_from, tuple(envelope_recipients(content)))

    async def _keys_for(
        self, account_id: str, environment: Environment, domain: str
    ) -> SigningKeys | None:
        cache_key = (account_id, environment.value, domain)
        cached = self._keys.get(cache_key)
        now = time.monotonic()
        if cached is not None and now - cached[0] < KEYS_TTL_SECONDS:
            return cached[1]
        try:
            keys = await self._domains.signing_keys(account_id, environment, domain)
        except SecretUnavailable as error:
            raise ConfigurationError(
                "secret_unavailable", f"The DKIM key of {domain} cannot be opened: {error.reason}"
            ) from None
        if keys is not None:
            # Only found keys are kept: a domain verified a moment ago signs at once.
            self._keys[cache_key] = (now, keys)
        return keys

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()


# Up to this much text, HTML and attachments a message is rendered and signed on the
# event loop (well under a millisecond of CPU); more goes to a thread.
INLINE_CONTENT_BYTES = 64 * 1024


async def signed_mime_soon(
    message: OutboundMessage,
    keys: SigningKeys,
    date: datetime,
    pool: SigningPool | None = None,
) -> bytes:
    """:func:`signed_mime` in the signing pool when there is one (every message,
    large ones too: a worker holds neither the loop nor this process's GIL);
    without one, on the loop for an ordinary message and in a thread for a large one.

    A thread costs more than it saves for small mail: measured with
    ``bench/email_send.py``, the hand-over (and the GIL passed back and forth) added
    about 0.5 ms of CPU to the ~1 ms that rendering and both signatures take, and
    gained no throughput (the GIL serialises the work anyway); a large body (an
    attachment: canonicalised, hashed and base64-encoded) would hold the loop for
    tens of milliseconds, so it still goes to a thread."""
    if pool is not None:
        return await pool.signed_mime(message, keys, date)
    if _content_bytes(message.content) <= INLINE_CONTENT_BYTES:
        return signed_mime(message, keys, date)
    return await asyncio.to_thread(signed_mime, message, keys, date)


def _content_bytes(content: dict[str, Any]) -> int:
    """About how large the body will be (a batch's shared content is put back by now)."""
    size = sum(len(content.get(key) or "") for key in ("text", "html"))
    for item in content.get("attachments") or []:
        size += len(item.get("content") or "")
    return size
