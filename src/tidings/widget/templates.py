"""The chat box's templates: what it offers when the 24-hour window is closed.

``GET /widget/api/templates`` lists the account's APPROVED WhatsApp templates of the
token's environment, each with the inputs it needs (one per parameter, labelled);
``POST /widget/api/templates/send`` sends one to the token's contact through the same
path as ``POST /api/v4/whatsapp/notifications`` (template checks, opt-outs,
idempotency, webhooks).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.api.deps import ContextDep, SessionDep
from tidings.api.sending import send_answer
from tidings.core.pagination import PageParams, next_cursor, page_params
from tidings.http.schemas import ApiModel
from tidings.messages.drafts import Draft
from tidings.templates.repository import TemplateRepository
from tidings.templates.schemas import TemplateOut, TemplateParameters, template_out
from tidings.templates.service import notification_draft
from tidings.widget.access import BearerWidgetDep, widget_tenant
from tidings.widget.api import NO_STORE, as_view, require_writable
from tidings.widget.page import API_PATH

router = APIRouter(prefix=API_PATH, include_in_schema=False)

MEDIA_FORMATS = frozenset({"IMAGE", "DOCUMENT", "VIDEO"})


class TemplateField(ApiModel):
    part: Literal["header", "body", "buttons"]
    key: str = Field(description="The parameter's name (1, 2... or first_name).")
    label: str


class WidgetTemplate(ApiModel):
    name: str
    language: str
    category: str
    parameter_format: str
    header_format: str | None = None
    text: str = Field(description="The body, placeholders as written.")
    fields: list[TemplateField]


class TemplateSendRequest(ApiModel):
    name: str = Field(max_length=512)
    language: str = Field(max_length=16)
    parameters: TemplateParameters = Field(default_factory=TemplateParameters)


def widget_template(template: TemplateOut) -> WidgetTemplate:
    fields: list[TemplateField] = []
    header_format: str | None = None
    body = ""
    for component in template.components:
        if component.type == "HEADER":
            header_format = component.format or "TEXT"
            if header_format in MEDIA_FORMATS:
                label = f"Header {header_format.lower()} URL"
                fields.append(TemplateField(part="header", key="media", label=label))
            else:
                fields.extend(
                    TemplateField(part="header", key=name, label=f"Header {{{{{name}}}}}")
                    for name in component.parameter_names
                )
        elif component.type == "BODY":
            body = component.text or ""
            fields.extend(
                TemplateField(part="body", key=name, label=f"Body {{{{{name}}}}}")
                for name in component.parameter_names
            )
        elif component.type == "BUTTONS":
            for index, button in enumerate(component.buttons or []):
                if button.parameter_count:
                    label = f"Button “{button.text or button.type.lower()}”"
                    fields.append(TemplateField(part="buttons", key=str(index), label=label))
    return WidgetTemplate(
        name=template.name,
        language=template.language,
        category=template.category,
        parameter_format=template.parameter_format,
        header_format=header_format,
        text=body,
        fields=fields,
    )


@router.get("/templates")
async def templates(
    claims: BearerWidgetDep,
    session: SessionDep,
    page: Annotated[PageParams, Depends(page_params)],
) -> JSONResponse:
    rows = await TemplateRepository(session).list(
        claims.account_id,
        claims.environment,
        status="APPROVED",
        after=page.after,
        limit=page.limit + 1,
    )
    shown, cursor = next_cursor(rows, page.limit)
    data = [
        widget_template(template_out(row)).model_dump(mode="json", by_alias=True) for row in shown
    ]
    return JSONResponse({"data": data, "nextCursor": cursor}, headers=NO_STORE)


@router.post("/templates/send")
async def send_template(
    body: TemplateSendRequest, request: Request, claims: BearerWidgetDep, ctx: ContextDep
) -> JSONResponse:
    """An approved template to the token's contact, allowed outside the window."""
    require_writable(claims)

    async def prepare(session: AsyncSession) -> Draft:
        provider = await ctx.runtime.providers.require(
            claims.account_id, claims.environment, "whatsapp"
        )
        return await notification_draft(
            session,
            account_id=claims.account_id,
            environment=claims.environment,
            provider=provider,
            settings=ctx.settings,
            clock=ctx.clock,
            to=claims.contact,
            name=body.name,
            language=body.language,
            parameters=body.parameters,
        )

    answer = await send_answer(ctx, request, widget_tenant(claims), prepare)
    return await as_view(ctx, claims, answer)
