"""What can go wrong when a provider takes a message, as one small tree.

    DeliveryError                       a provider refused or could not take a message
    ├── RetryableDeliveryError          try again later (``retry_after`` when known):
    │   │                               timeouts, 5xx, SMPP 0x14/0x08, SMTP 4xx
    │   ├── ThrottledError              "slow down" (WhatsApp 130429, SMPP 0x58): the
    │   │                               attempt is given back and the pace slows
    │   └── ConnectionDown              the provider cannot be reached at all (bind lost,
    │                                   connection refused): counts against its circuit,
    │                                   the next attempt may go to another provider
    ├── PermanentDeliveryError          never retried, here or elsewhere: invalid number,
    │                                   WhatsApp 131026, SMTP 5.1.1; the message ends
    │                                   ``failed`` (or ``undelivered`` for a hard bounce)
    └── ConfigurationError              the provider itself is unusable: credentials
                                        refused (SMTP 535, SMPP 0x0E/0x0F, Graph 190), a
                                        stored config that no longer validates, a secret
                                        that cannot be opened. The provider is marked
                                        ``failing``; the message waits (no attempt used)
                                        or moves on to another provider.

Providers raise these; the dispatcher turns them into verdicts
(:mod:`tidings.messages.verdicts`) and the directory into health and circuit state.
"""

from __future__ import annotations


class DeliveryError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class RetryableDeliveryError(DeliveryError):
    def __init__(self, code: str, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(code, message)
        self.retry_after = retry_after


class ThrottledError(RetryableDeliveryError):
    """The provider asked to slow down: retried without using up an attempt."""


class ConnectionDown(RetryableDeliveryError):
    """The provider could not be reached; nothing was submitted."""


class PermanentDeliveryError(DeliveryError):
    pass


class ConfigurationError(DeliveryError):
    """The provider cannot work as configured; no message should be tried on it."""
