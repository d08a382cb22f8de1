"""SMPP ``command_status`` codes, and which error of our tree each one is.

=================  =======  ================================  ==========================
name               code     meaning                           our error
=================  =======  ================================  ==========================
ESME_ROK           0x00     accepted                          (none)
ESME_RINVMSGLEN    0x01     message length invalid            PermanentDeliveryError
ESME_RINVCMDLEN    0x02     command length invalid            PermanentDeliveryError
ESME_RINVCMDID     0x03     command id invalid                PermanentDeliveryError
ESME_RINVBNDSTS    0x04     wrong bind state                  ConnectionDown (rebind)
ESME_RALYBND       0x05     already bound                     ConnectionDown (rebind)
ESME_RSYSERR       0x08     system error at the SMSC          RetryableDeliveryError
ESME_RINVSRCADR    0x0A     invalid source address            PermanentDeliveryError
ESME_RINVDSTADR    0x0B     invalid destination address       PermanentDeliveryError
ESME_RBINDFAIL     0x0D     bind failed                       ConfigurationError
ESME_RINVPASWD     0x0E     invalid password                  ConfigurationError
ESME_RINVSYSID     0x0F     invalid system_id                 ConfigurationError
ESME_RMSGQFUL      0x14     SMSC queue full                   RetryableDeliveryError
ESME_RINVESMCLASS  0x43     invalid esm_class                 PermanentDeliveryError
ESME_RSUBMITFAIL   0x45     submit_sm failed                  PermanentDeliveryError
ESME_RINVSRCTON    0x48     invalid source TON                PermanentDeliveryError
ESME_RINVSRCNPI    0x49     invalid source NPI                PermanentDeliveryError
ESME_RINVDSTTON    0x50     invalid destination TON           PermanentDeliveryError
ESME_RINVDSTNPI    0x51     invalid destination NPI           PermanentDeliveryError
ESME_RTHROTTLED    0x58     throughput exceeded               ThrottledError (bind paused)
ESME_RINVSCHED     0x61     invalid scheduled time            PermanentDeliveryError
ESME_RINVEXPIRY    0x62     invalid validity period           PermanentDeliveryError
ESME_RINVOPTPARAM  0xC4     invalid optional parameter        PermanentDeliveryError
ESME_RUNKNOWNERR   0xFF     unknown error                     RetryableDeliveryError
(any other)                                                   RetryableDeliveryError
=================  =======  ================================  ==========================

A code we do not know is retried (a bounded number of attempts), never taken as
final: an SMSC's vendor-specific codes (0x400-0x4FF) are as often transient as not.
0x58 reaches the dispatcher (as ``throttled``) only when the bind's pause outlasts
the provider's ``throttleWaitSeconds``: until then the bind pauses and resubmits
(:mod:`.window`).
"""

from __future__ import annotations

from tidings.providers.errors import (
    ConfigurationError,
    ConnectionDown,
    DeliveryError,
    PermanentDeliveryError,
    RetryableDeliveryError,
    ThrottledError,
)

ESME_ROK = 0x00
ESME_RINVBNDSTS = 0x04
ESME_RALYBND = 0x05
ESME_RSYSERR = 0x08
ESME_RINVDSTADR = 0x0B
ESME_RBINDFAIL = 0x0D
ESME_RINVPASWD = 0x0E
ESME_RINVSYSID = 0x0F
ESME_RMSGQFUL = 0x14
ESME_RTHROTTLED = 0x58

NAMES = {
    0x00: "ESME_ROK",
    0x01: "ESME_RINVMSGLEN",
    0x02: "ESME_RINVCMDLEN",
    0x03: "ESME_RINVCMDID",
    0x04: "ESME_RINVBNDSTS",
    0x05: "ESME_RALYBND",
    0x08: "ESME_RSYSERR",
    0x0A: "ESME_RINVSRCADR",
    0x0B: "ESME_RINVDSTADR",
    0x0D: "ESME_RBINDFAIL",
    0x0E: "ESME_RINVPASWD",
    0x0F: "ESME_RINVSYSID",
    0x14: "ESME_RMSGQFUL",
    0x43: "ESME_RINVESMCLASS",
    0x45: "ESME_RSUBMITFAIL",
    0x48: "ESME_RINVSRCTON",
    0x49: "ESME_RINVSRCNPI",
    0x50: "ESME_RINVDSTTON",
    0x51: "ESME_RINVDSTNPI",
    0x58: "ESME_RTHROTTLED",
    0x61: "ESME_RINVSCHED",
    0x62: "ESME_RINVEXPIRY",
    0xC4: "ESME_RINVOPTPARAM",
    0xFF: "ESME_RUNKNOWNERR",
}

PERMANENT = frozenset({0x01, 0x02, 0x03, 0x0A, 0x0B, 0x43, 0x45, 0x48, 0x49, 0x50, 0x51})
PERMANENT |= {0x61, 0x62, 0xC4}
CREDENTIALS = frozenset({ESME_RBINDFAIL, ESME_RINVPASWD, ESME_RINVSYSID})
BIND_STATE = frozenset({ESME_RINVBNDSTS, ESME_RALYBND})
# Retried after this many seconds (Jasmin's table, shortened: our retries back off).
RETRY_AFTER = {ESME_RSYSERR: 30.0, ESME_RMSGQFUL: 60.0}


def describe(status: int) -> str:
    return f"{NAMES.get(status, 'vendor-specific')} (0x{status:02X})"


def error_for(status: int) -> DeliveryError:
    """The error a non-zero ``command_status`` on a submission is."""
    code = f"smpp_0x{status:02x}"
    said = f"The SMSC answered {describe(status)}."
    if status in CREDENTIALS:
        return ConfigurationError("credentials_refused", f"The SMSC refused the bind: {said}")
    if status == ESME_RTHROTTLED:
        return ThrottledError("throttled", said, retry_after=1.0)
    if status in PERMANENT:
        return PermanentDeliveryError(code, said)
    if status in BIND_STATE:
        return ConnectionDown(code, said)
    return RetryableDeliveryError(code, said, retry_after=RETRY_AFTER.get(status))
