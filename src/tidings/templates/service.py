"""Use cases: creating a template, and turning a template notification into a
:class:`~tidings.messages.drafts.Draft` that :class:`~tidings.messages.service.SendFlow`
stores and sends.

A notification is allowed outside the 24-hour customer service window (that is
what templates are for), but never to a number that opted out. Its message keeps
the text a reader sees as ``body`` and the template (name, language, category,
parameters, and the components as WhatsApp's Cloud API sends them) in
``content["template"]``. Production charges by category (``prices.whatsapp_*``).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.contacts.whatsapp import address_of, delivery_target
from tidings.context import AppContext
from tidings.core.clock import Clock
from tidings.core.environments import Environment
from tidings.core.errors import (
    Conflict,
    FieldError,
    NotFound,
    ServiceUnavailable,
    Unprocessable,
)
from tidings.core.ids import new_id
from tidings.idempotency.service import (
    KeyScope,
    StoredAnswer,
    hold_key,
    reread_after_conflict,
    taken_answer,
)
from tidings.messages.drafts import Draft
from tidings.messages.rules.sms import check_not_opted_out
from tidings.providers.errors import DeliveryError, PermanentDeliveryError
from tidings.providers.registry import Capabilities
from tidings.settings import PriceSettings, Settings
from tidings.templates.models import Template
from tidings.templates.rendering import Rendered, render
from tidings.templates.repository import TemplateRepository
from tidings.templates.schemas import TemplateCreate, TemplateParameters
from tidings.templates.shape import shape_of
from tidings.templates.validation import check_template

TEMPLATES_ENDPOINT = "/api/v4/notifications/whatsapp/templates"


def price_of(prices: PriceSettings, category: str) -> Decimal:
    return {
        "MARKETING": prices.whatsapp_marketing,
        "UTILITY": prices.whatsapp_utility,
        "AUTHENTICATION": prices.whatsapp_authentication,
    }.get(category, prices.whatsapp_message)


def _exists(name: str, language: str) -> Conflict:
    return Conflict(
        f"A template named {name!r} in language {language!r} already exists here.",
        code="template_exists",
        errors=[FieldError("name", "template_exists", "Choose another name or language.")],
    )


async def create_template(
    ctx: AppContext,
    account_id: str,
    environment: Environment,
    request: TemplateCreate,
    scope: KeyScope | None = None,
) -> Template | StoredAnswer:
    """The new PENDING template, or the earlier answer for a reused Idempotency-Key.

    In the sandbox the simulated review decides it after
    ``sandbox.template_review_seconds`` (see :mod:`tidings.templates.review`). In
    production it is first submitted to the WhatsApp Business account of the
    account's Cloud API provider (:mod:`tidings.templates.catalog`), and stays
    PENDING until Meta's decision arrives (a status webhook, or the next sync): a
    refusal answers 422 ``template_refused`` and an unreachable account 503, and
    nothing is stored. Without a Cloud API provider it stays PENDING here."""
    checked = check_template(request)
    now = ctx.clock.now()
    review_due = (
        now + timedelta(seconds=ctx.settings.sandbox.template_review_seconds)
        if environment == Environment.SANDBOX
        else None
    )
    template = Template(
        id=new_id("tpl"),
        account_id=account_id,
        environment=environment.value,
        name=checked.name,
        language=checked.language,
        category=checked.category,
        status="PENDING",
        rejected_reason=None,
        parameter_format=checked.parameter_format,
        components=checked.components,
        review_due_at=review_due,
        created_at=now,
        updated_at=now,
    )

    if environment == Environment.PRODUCTION:
        await _submit_to_business_account(ctx, template)

    async def write(session: AsyncSession) -> StoredAnswer | None:
        earlier = await taken_answer(session, scope, now)
        if earlier is not None:
            return earlier
        repo = TemplateRepository(session)
        if await repo.get_by_name(account_id, environment, checked.name, checked.language):
            raise _exists(checked.name, checked.language)
        repo.add(template)
        hold_key(session, scope, template.id, now)
        return None

    try:
        earlier = await ctx.runtime.writer.submit(write)
    except IntegrityError:
        # Lost a race: to a request with the same name, or with the same key.
        async with ctx.sessions() as session:
            taken = await TemplateRepository(session).get_by_name(
                account_id, environment, checked.name, checked.language
            )
        if scope is None or (taken is not None and taken.id != template.id):
            raise _exists(checked.name, checked.language) from None
        return await reread_after_conflict(ctx.sessions, scope, now)
    return earlier if earlier is not None else template


async def _submit_to_business_account(ctx: AppContext, template: Template) -> None:
    async with ctx.sessions() as session:
        taken = await TemplateRepository(session).get_by_name(
            template.account_id, Environment(template.environment), template.name, template.language
        )
    if taken is not None:
        raise _exists(template.name, template.language)
    try:
        await ctx.runtime.template_sync.submit(template)
    except PermanentDeliveryError as error:
        raise Unprocessable(
            f"WhatsApp refused the template: {error.message}",
            code="template_refused",
            errors=[FieldError("name", "template_refused", error.message)],
        ) from None
    except DeliveryError as error:
        raise ServiceUnavailable(
            "The WhatsApp Business account could not take the template now "
            f"({error.message}); try again later.",
            code="provider_unavailable",
        ) from None


async def approved_template(
    session: AsyncSession, account_id: str, environment: Environment, name: str, language: str
) -> Template:
    """The APPROVED template of that name and language, or the 404/422 that refuses it."""
    repo = TemplateRepository(session)
    template = await repo.get_by_name(account_id, environment, name, language)
    if template is None:
        others = await repo.languages_of(account_id, environment, name)
        hint = (
            f" It exists in: {', '.join(others)}."
            if others
            else f" See GET {TEMPLATES_ENDPOINT}?status=all."
        )
        raise NotFound(
            f"There is no WhatsApp template {name!r} in language {language!r} here.{hint}",
            code="template_not_found",
            errors=[FieldError("template.name", "template_not_found", "No such template.")],
        )
    if template.status != "APPROVED":
        reason = f" ({template.rejected_reason})" if template.rejected_reason else ""
        raise Unprocessable(
            f"The template {name!r} ({language}) is {template.status}{reason}; only APPROVED "
            "templates can be sent.",
            code="template_not_approved",
            errors=[
                FieldError("template.name", "template_not_approved", f"It is {template.status}.")
            ],
            extra={"templateStatus": template.status},
        )
    return template


def template_content(template: Template, rendered: Rendered) -> dict[str, Any]:
    """``content["template"]`` of a message sending ``template`` as ``rendered``."""
    return {
        "template": {
            "id": template.id,
            "name": template.name,
            "language": template.language,
            "category": template.category,
            "parameterFormat": template.parameter_format,
            "parameters": rendered.parameters,
            "components": rendered.components,
        }
    }


async def notification_draft(
    session: AsyncSession,
    *,
    account_id: str,
    environment: Environment,
    provider: Capabilities,
    settings: Settings,
    clock: Clock,
    to: str,
    name: str,
    language: str,
    parameters: TemplateParameters | dict[str, Any],
) -> Draft:
    """The draft of a template notification, or the 404/422 that refuses it."""
    # A number or a WhatsApp user id, resolved to the contact's conversation.
    contact = await address_of(
        session, account_id, environment, to, extra_valid=provider.test_numbers, field="to"
    )
    template = await approved_template(session, account_id, environment, name, language)
    rendered = render(shape_of(template.components), parameters)
    await check_not_opted_out(session, account_id, environment, "whatsapp", contact)
    content = template_content(template, rendered)
    # A contact who changed its number or user id is reached at the new one.
    target = await delivery_target(session, account_id, environment, contact)
    if target is not None:
        content["deliverTo"] = target
    return Draft(
        channel="whatsapp",
        to=contact,
        sender=None,
        body=rendered.text,
        content=content,
        cost=price_of(settings.prices, template.category),
    )
