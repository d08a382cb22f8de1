"""Request and answer bodies of ``/api/v4/contacts`` and ``/api/v4/lists``."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from tidings.contacts.models import Contact, ContactList
from tidings.http.schemas import ApiModel, ApiRequest

MAX_LIST_ADDITIONS = 10_000

PHONE_EXAMPLE = "+393331234567"
EMAIL_EXAMPLE = "ada@example.com"
VARIABLES_EXAMPLE = {"name": "Ada", "city": "Rome"}


class ContactCreate(ApiRequest):
    phone: str | None = Field(
        default=None, max_length=64, description="E.164.", examples=[PHONE_EXAMPLE]
    )
    email: str | None = Field(default=None, max_length=400, examples=[EMAIL_EXAMPLE])
    variables: dict[str, str] = Field(
        default_factory=dict,
        description="Values for bulk placeholders: names are letters, digits and "
        "underscores (not starting with a digit, up to 64), values strings up to 1,024 "
        "characters, at most 50 of them.",
        examples=[VARIABLES_EXAMPLE],
    )


class ContactUpdate(ApiRequest):
    phone: str | None = Field(
        default=None, max_length=64, description="null removes it.", examples=[PHONE_EXAMPLE]
    )
    email: str | None = Field(
        default=None, max_length=400, description="null removes it.", examples=[EMAIL_EXAMPLE]
    )
    variables: dict[str, str | None] | None = Field(
        default=None,
        description="Merged into the contact's variables; a null value removes that variable.",
        examples=[{"city": "Milan", "nickname": None}],
    )


class OptOutState(ApiModel):
    sms: bool = Field(description="Replied STOP to an SMS.")
    whatsapp: bool = Field(description="Opted out of WhatsApp messages.")
    email: bool = Field(description="On the email suppression list.")


class ContactOut(ApiModel):
    id: str = Field(examples=["con_01JDQ3W6V2X4N8ZB7YH5K9T0RM"])
    phone: str | None = Field(examples=[PHONE_EXAMPLE])
    email: str | None = Field(examples=[EMAIL_EXAMPLE])
    variables: dict[str, str] = Field(examples=[VARIABLES_EXAMPLE])
    opt_out: OptOutState
    created_at: datetime
    updated_at: datetime


def contact_out(row: Contact, opt_out: dict[str, bool]) -> ContactOut:
    return ContactOut(
        id=row.id,
        phone=row.phone,
        email=row.email,
        variables=dict(row.variables or {}),
        opt_out=OptOutState(**opt_out),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class ListCreate(ApiRequest):
    name: str = Field(min_length=1, max_length=200, examples=["Newsletter"])
    description: str | None = Field(
        default=None, max_length=1000, examples=["Customers who asked for news."]
    )


class ListUpdate(ApiRequest):
    name: str | None = Field(default=None, min_length=1, max_length=200, examples=["News"])
    description: str | None = Field(
        default=None, max_length=1000, description="null removes it.", examples=["Monthly."]
    )


class ListOut(ApiModel):
    id: str = Field(examples=["lst_01JDQ3W6V2X4N8ZB7YH5K9T0RM"])
    name: str
    description: str | None
    contact_count: int = Field(examples=[1200])
    created_at: datetime
    updated_at: datetime


def list_out(row: ContactList, count: int) -> ListOut:
    return ListOut(
        id=row.id,
        name=row.name,
        description=row.description,
        contact_count=count,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class NewMember(ApiRequest):
    phone: str | None = Field(default=None, max_length=64, examples=[PHONE_EXAMPLE])
    email: str | None = Field(default=None, max_length=400, examples=[EMAIL_EXAMPLE])
    variables: dict[str, str] = Field(default_factory=dict, examples=[VARIABLES_EXAMPLE])


class MembersAdd(ApiRequest):
    contact_ids: list[str] = Field(
        default_factory=list,
        max_length=MAX_LIST_ADDITIONS,
        examples=[["con_01JDQ3W6V2X4N8ZB7YH5K9T0RM"]],
    )
    contacts: list[NewMember] = Field(
        default_factory=list,
        max_length=MAX_LIST_ADDITIONS,
        description="Found by phone or email (and updated: variables merged) or created.",
    )


class Rejected(ApiModel):
    field: str = Field(examples=["contacts[3].phone"])
    code: str = Field(examples=["invalid_phone_number"])
    message: str


class MembersAdded(ApiModel):
    added: int = Field(description="Contacts that became members.")
    already_member: int = Field(description="Contacts that were members already.")
    created: int = Field(description="Contacts created from `contacts`.")
    rejected: int
    errors: list[Rejected] = Field(description="Every rejected entry, with its reason.")


class ImportRowError(ApiModel):
    line: int = Field(description="Line in the file; the header is line 1.", examples=[17])
    code: str = Field(examples=["invalid_phone_number"])
    reason: str


class ImportAnswer(ApiModel):
    rows: int = Field(description="Data rows read (blank lines are skipped).")
    accepted: int = Field(description="created + updated.")
    created: int
    updated: int = Field(description="Rows that matched an existing contact by phone or email.")
    rejected: int
    errors: list[ImportRowError] = Field(description="The first 1,000 rejected rows.")
