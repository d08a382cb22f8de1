"""Imports every model so that ``Base.metadata`` holds the whole schema."""

from tidings.accounts.models import Account, User
from tidings.auth.models import RevokedToken
from tidings.bulk.models import Batch, PaceSlot, SharedContent
from tidings.contacts.models import Contact, ContactList, ListMember, OptOut
from tidings.contacts.suppressions import Suppression
from tidings.contacts.whatsapp import WhatsAppContact
from tidings.credits.models import CreditBalance, CreditEntry
from tidings.db.base import Base
from tidings.domains.models import EmailDomain
from tidings.idempotency.models import IdempotencyKey
from tidings.messages.models import Message, MessageEvent, OutboxEvent
from tidings.providers.models import InboxEvent, ProviderRefRow, ProviderRow
from tidings.providers.simulator.mailbox import SandboxEmail
from tidings.templates.models import Template
from tidings.webhooks.models import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookFannedEvent,
)

__all__ = [
    "Account",
    "Base",
    "Batch",
    "Contact",
    "ContactList",
    "CreditBalance",
    "CreditEntry",
    "EmailDomain",
    "IdempotencyKey",
    "InboxEvent",
    "ListMember",
    "Message",
    "MessageEvent",
    "OptOut",
    "OutboxEvent",
    "PaceSlot",
    "ProviderRefRow",
    "ProviderRow",
    "RevokedToken",
    "SandboxEmail",
    "SharedContent",
    "Suppression",
    "Template",
    "User",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookFannedEvent",
    "WhatsAppContact",
]
