"""The sandbox outbox: the emails the simulated provider "sent", as recipients get them.

``GET /api/v4/sandbox/emails`` lists them, newest first; ``GET
/api/v4/sandbox/emails/{id}`` shows one: headers, text, and the HTML with its
tracking links, so a developer can look at it and follow them. Sandbox only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesHeaderParser, BytesParser
from typing import Annotated

from fastapi import APIRouter, Depends, Path
from pydantic import Field
from sqlalchemy import select

from tidings.api.deps import Principal, PrincipalDep, SessionDep
from tidings.core.environments import Environment
from tidings.core.errors import FieldError, Forbidden, NotFound, Unprocessable
from tidings.core.pagination import Page, PageParams, page_params
from tidings.http.openapi_responses import AUTHENTICATED, problem_responses
from tidings.http.schemas import ApiModel
from tidings.providers.simulator.mailbox import SandboxEmail

router = APIRouter(prefix="/api/v4/sandbox", tags=["Sandbox"])


class SandboxEmailSummary(ApiModel):
    id: str = Field(examples=["sbx.4f1c2d3e4f5a6b7c8d9e0f1a"])
    message_id: str = Field(examples=["msg_01JDQ3W6V2X4N8ZB7YH5K9T0RM"])
    to: str = Field(examples=["Ada <ada@example.com>"])
    subject: str = Field(examples=["Your order has shipped"])
    created_at: datetime


class SandboxAttachment(ApiModel):
    filename: str | None
    content_type: str
    size: int


class SandboxEmailDetail(SandboxEmailSummary):
    from_: str = Field(alias="from", examples=["News <news@yourdomain.com>"])
    headers: list[tuple[str, str]] = Field(description="Every header, in order, decoded.")
    text: str | None = None
    html: str | None = Field(
        default=None, description="The HTML part as sent, tracking links and pixel included."
    )
    attachments: list[SandboxAttachment] = Field(default_factory=list)


def _sandbox_only(principal: Principal) -> None:
    if principal.environment != Environment.SANDBOX:
        raise Forbidden("The sandbox outbox exists only in the sandbox.")


def _cursor(row: SandboxEmail) -> str:
    micros = int(row.created_at.timestamp() * 1_000_000)
    return f"{micros}_{row.id}"


def _parse_cursor(text: str) -> tuple[datetime, str]:
    micros, _, email_id = text.partition("_")
    if not micros.isdigit() or not email_id or len(micros) > 18:
        raise Unprocessable(
            "The cursor is not one this list gave.",
            errors=[FieldError("after", "invalid_cursor", "Use nextCursor as given.")],
        )
    return datetime.fromtimestamp(int(micros) / 1_000_000, tz=UTC), email_id


def _summary(row: SandboxEmail, message: EmailMessage) -> dict[str, object]:
    return {
        "id": row.id,
        "messageId": row.message_id,
        "to": str(message.get("To", "")),
        "subject": str(message.get("Subject", "")),
        "createdAt": row.created_at,
    }


@router.get(
    "/emails",
    response_model=Page[SandboxEmailSummary],
    summary="List the emails the sandbox sent",
    responses=problem_responses(*AUTHENTICATED, 403),
)
async def list_sandbox_emails(
    principal: PrincipalDep,
    session: SessionDep,
    page: Annotated[PageParams, Depends(page_params)],
) -> Page[SandboxEmailSummary]:
    """Newest first. Each is kept as the MIME the simulated provider rendered."""
    _sandbox_only(principal)
    query = select(SandboxEmail).where(
        SandboxEmail.account_id == principal.account_id,
        SandboxEmail.environment == principal.environment.value,
    )
    if page.after is not None:
        at, email_id = _parse_cursor(page.after)
        query = query.where(
            (SandboxEmail.created_at < at)
            | ((SandboxEmail.created_at == at) & (SandboxEmail.id < email_id))
        )
    rows = list(
        await session.scalars(
            query.order_by(SandboxEmail.created_at.desc(), SandboxEmail.id.desc()).limit(
                page.limit + 1
            )
        )
    )
    shown = rows[: page.limit]
    parser = BytesHeaderParser(policy=policy.default)
    data = [
        SandboxEmailSummary.model_validate(_summary(row, parser.parsebytes(row.mime)))
        for row in shown
    ]
    cursor = _cursor(shown[-1]) if len(rows) > page.limit else None
    return Page[SandboxEmailSummary](data=data, next_cursor=cursor)


def _part_text(message: EmailMessage, subtype: str) -> str | None:
    part = message.get_body(preferencelist=(subtype,))
    if part is None or part.get_content_subtype() != subtype:
        return None
    return str(part.get_content())


@router.get(
    "/emails/{id}",
    response_model=SandboxEmailDetail,
    summary="Read an email the sandbox sent",
    responses=problem_responses(*AUTHENTICATED, 403, 404),
)
async def get_sandbox_email(
    principal: PrincipalDep,
    session: SessionDep,
    id: Annotated[str, Path(max_length=64, examples=["sbx.4f1c2d3e4f5a6b7c8d9e0f1a"])],
) -> SandboxEmailDetail:
    """Headers, the text part, the HTML part exactly as a recipient would get it (its
    links lead through the tracking routes) and the attachments' names and sizes."""
    _sandbox_only(principal)
    row = await session.scalar(
        select(SandboxEmail).where(
            SandboxEmail.id == id,
            SandboxEmail.account_id == principal.account_id,
            SandboxEmail.environment == principal.environment.value,
        )
    )
    if row is None:
        raise NotFound(f"There is no sandbox email {id!r} here.")
    message = BytesParser(policy=policy.default).parsebytes(row.mime)
    attachments = [
        SandboxAttachment(
            filename=part.get_filename(),
            content_type=part.get_content_type(),
            size=len(part.get_payload(decode=True) or b""),
        )
        for part in message.iter_attachments()
    ]
    return SandboxEmailDetail.model_validate(
        {
            **_summary(row, message),
            "from": str(message.get("From", "")),
            "headers": [(name, str(value)) for name, value in message.items()],
            "text": _part_text(message, "plain"),
            "html": _part_text(message, "html"),
            "attachments": attachments,
        }
    )
