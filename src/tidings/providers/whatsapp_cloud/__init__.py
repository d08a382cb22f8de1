"""The ``whatsapp_cloud`` kind: a WhatsApp Business phone number on Meta's Cloud API.

Its folder holds the config (:mod:`.config`), the Graph client (:mod:`.client`),
the table of Meta's error codes (:mod:`.errors`), the provider that sends
(:mod:`.provider`) and Meta's webhooks (:mod:`.webhook`), which reach Tidings at
``/inbound/whatsapp/<providerId>`` (:mod:`tidings.inbound.router`).
"""

from __future__ import annotations

from tidings.providers.registry import KindSpec
from tidings.providers.whatsapp_cloud.config import WhatsAppCloudConfig
from tidings.providers.whatsapp_cloud.provider import WhatsAppCloudProvider
from tidings.providers.whatsapp_cloud.webhook import WhatsAppWebhook, parse_report


def _rate(config: WhatsAppCloudConfig) -> float | None:
    return config.messages_per_second


WHATSAPP_CLOUD = KindSpec(
    kind="whatsapp_cloud",
    channels=frozenset({"whatsapp"}),
    config=WhatsAppCloudConfig,
    build=WhatsAppCloudProvider,
    parse_report=parse_report,
    summary="A WhatsApp Business phone number on Meta's Cloud API (Graph API).",
    inbound_path=True,
    rate=_rate,
    webhook=WhatsAppWebhook(),
)

__all__ = ["WHATSAPP_CLOUD", "WhatsAppCloudConfig", "WhatsAppCloudProvider"]
