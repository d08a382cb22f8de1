"""The approved templates every account's sandbox starts with, in English and
Italian: ``one_time_code`` (AUTHENTICATION), ``order_update`` (UTILITY) and
``spring_offer`` (MARKETING, named parameter, image header)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tidings.core.environments import Environment
from tidings.core.ids import new_id
from tidings.templates.models import Template
from tidings.templates.shape import parameter_format_of

FOOTER = {
    "en": "Reply STOP to opt out",
    "it": "Rispondi STOP per non ricevere altri messaggi",
}
TEXTS = {
    ("one_time_code", "en"): (
        "{{1}} is your verification code. For your security, do not share it.",
        "Copy code",
    ),
    ("one_time_code", "it"): (
        "{{1}} è il tuo codice di verifica. Per la tua sicurezza, non condividerlo.",
        "Copia codice",
    ),
    ("order_update", "en"): (
        "Order {{1}}",
        "Hi {{1}}, your order {{2}} has shipped and is on its way to you.",
    ),
    ("order_update", "it"): (
        "Ordine {{1}}",
        "Ciao {{1}}, il tuo ordine {{2}} è stato spedito ed è in viaggio verso di te.",
    ),
    ("spring_offer", "en"): (
        "Hi {{first_name}}, spring is here! Enjoy 20% off everything in our store this week.",
        "Not interested",
        "Shop now",
    ),
    ("spring_offer", "it"): (
        "Ciao {{first_name}}, è arrivata la primavera! Questa settimana tutto il negozio "
        "è scontato del 20%.",
        "Non mi interessa",
        "Acquista ora",
    ),
}
SHOP_URL = "https://shop.example.com/spring/{{1}}"
IMAGE_EXAMPLE = "https://example.com/spring.jpg"


def _one_time_code(language: str) -> list[dict[str, Any]]:
    body, button = TEXTS[("one_time_code", language)]
    return [
        {"type": "BODY", "text": body, "example": {"body_text": [["482913"]]}},
        {
            "type": "BUTTONS",
            "buttons": [{"type": "OTP", "otpType": "COPY_CODE", "text": button}],
        },
    ]


def _order_update(language: str) -> list[dict[str, Any]]:
    header, body = TEXTS[("order_update", language)]
    return [
        {"type": "HEADER", "format": "TEXT", "text": header, "example": {"header_text": ["#1234"]}},
        {"type": "BODY", "text": body, "example": {"body_text": [["Ada", "#1234"]]}},
        {"type": "FOOTER", "text": FOOTER[language]},
    ]


def _spring_offer(language: str) -> list[dict[str, Any]]:
    body, no, shop = TEXTS[("spring_offer", language)]
    named_example = [{"param_name": "first_name", "example": "Ada"}]
    return [
        {"type": "HEADER", "format": "IMAGE", "example": {"header_handle": [IMAGE_EXAMPLE]}},
        {"type": "BODY", "text": body, "example": {"body_text_named_params": named_example}},
        {"type": "FOOTER", "text": FOOTER[language]},
        {
            "type": "BUTTONS",
            "buttons": [
                {"type": "QUICK_REPLY", "text": no},
                {"type": "URL", "text": shop, "url": SHOP_URL, "example": ["ada"]},
            ],
        },
    ]


# (name, language, category, components), components as the API shows them.
SEED: list[tuple[str, str, str, list[dict[str, Any]]]] = [
    (name, language, category, build(language))
    for name, category, build in (
        ("one_time_code", "AUTHENTICATION", _one_time_code),
        ("order_update", "UTILITY", _order_update),
        ("spring_offer", "MARKETING", _spring_offer),
    )
    for language in ("en", "it")
]


async def seed_templates(session: AsyncSession, account_id: str, at: datetime) -> None:
    """Add the approved set to the account's sandbox."""
    for name, language, category, components in SEED:
        session.add(
            Template(
                id=new_id("tpl"),
                account_id=account_id,
                environment=Environment.SANDBOX.value,
                name=name,
                language=language,
                category=category,
                status="APPROVED",
                rejected_reason=None,
                parameter_format=parameter_format_of(components),
                components=components,
                review_due_at=None,
                created_at=at,
                updated_at=at,
            )
        )
