"""``/console/webhooks``: the account's webhook endpoints and their deliveries.

Endpoints are created, changed and deleted through :mod:`tidings.webhooks.service`
(the API's: the same URL policy, the same event names, offered as checkboxes built
from the list the API accepts: every event, each kind's prefix, each name); a new endpoint's signing
secret, and a rotated one, is shown once on the answer to that form and never again.
An endpoint's page lists its latest deliveries with every attempt (refreshed while
one is pending), retries one delivery, replays every failed one since a time, and
sends a ``webhook.test`` event.

Reads use :class:`~tidings.webhooks.repository.WebhookRepository` scoped by the
signed-in account and this environment: another account's endpoint is a 404.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.api.deps import ContextDep, SessionDep
from tidings.console.config_form import field_errors
from tidings.console.csrf import CheckedFormDep, Form
from tidings.console.errors import PageNotFound
from tidings.console.form_errors import invalid_form
from tidings.console.paths import CONSOLE, page_links
from tidings.console.rendering import render
from tidings.console.session import ConsoleUser, ConsoleUserDep
from tidings.context import AppContext
from tidings.core.errors import ApiError, FieldError, NotFound, Unprocessable
from tidings.webhooks import service
from tidings.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from tidings.webhooks.repository import DeliveryFilters, WebhookRepository
from tidings.webhooks.schemas import EVENT_TYPES, WebhookCreate, WebhookUpdate

router = APIRouter(prefix=f"{CONSOLE}/webhooks", include_in_schema=False)

MAX_ENDPOINTS = 200
DELIVERIES_SHOWN = 50
REFRESH_SECONDS = 2
REPLAY_SINCE = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class DeliveryLog:
    deliveries: list[WebhookDelivery]
    attempts: Mapping[str, list[WebhookAttempt]]
    only_failed: bool

    @property
    def live(self) -> bool:
        return any(d.status == "pending" for d in self.deliveries)


@dataclass(frozen=True, slots=True)
class EventGroup:
    """The event names of one kind (``message``), shown under their prefix."""

    prefix: str
    names: tuple[str, ...]

    @property
    def every(self) -> str:
        return f"{self.prefix}.*"


# Built from the names the API accepts, in their order: a new event type shows up here.
EVENT_GROUPS: tuple[EventGroup, ...] = tuple(
    EventGroup(prefix, tuple(name for name in EVENT_TYPES if name.split(".", 1)[0] == prefix))
    for prefix in dict.fromkeys(name.split(".", 1)[0] for name in EVENT_TYPES)
)


def _events(form: Form) -> list[str]:
    """The ticked events; none ticked is refused (the API would read it as every event,
    which is not what clearing every box says). The names themselves are checked by the
    service, as the API's are."""
    names = [name.strip() for name in form.every("events") if name.strip()]
    if not names:
        raise Unprocessable(
            "The form has invalid fields.",
            errors=[
                FieldError("events", "required", "Tick at least one event, or every event (*).")
            ],
        )
    return names


def _shown_errors(error: ApiError | None) -> dict[str, str]:
    if error is None:
        return {}
    # Event errors name their position (events.2): shown under the one events input.
    return field_errors(
        [FieldError(e.field.split(".", 1)[0], e.code, e.message) for e in error.errors]
    )


async def _endpoint(session: AsyncSession, user: ConsoleUser, endpoint_id: str) -> WebhookEndpoint:
    endpoint = await WebhookRepository(session).get(
        user.account_id, user.environment, endpoint_id[:64]
    )
    if endpoint is None:
        raise PageNotFound(
            f"There is no webhook {endpoint_id[:64]} in this account's {user.environment}."
        )
    return endpoint


async def _log(session: AsyncSession, endpoint: WebhookEndpoint, only_failed: bool) -> DeliveryLog:
    repo = WebhookRepository(session)
    filters = DeliveryFilters(success=False if only_failed else None)
    rows = (await repo.deliveries(endpoint.id, filters, limit=DELIVERIES_SHOWN, after=None))[
        :DELIVERIES_SHOWN
    ]
    return DeliveryLog(rows, await repo.attempts_of([row.id for row in rows]), only_failed)


def _list_page(
    request: Request,
    user: ConsoleUser,
    endpoints: list[WebhookEndpoint],
    *,
    values: Mapping[str, str] | None = None,
    events: Collection[str] = ("*",),
    error: ApiError | None = None,
) -> HTMLResponse:
    return render(
        request,
        "webhooks.html",
        user=user,
        status=error.status if error else 200,
        endpoints=endpoints,
        values=values or {},
        checked_events=frozenset(events),
        error=error.detail if error else None,
        errors=_shown_errors(error),
        event_groups=EVENT_GROUPS,
    )


@router.get("")
async def webhooks_page(
    request: Request, user: ConsoleUserDep, session: SessionDep
) -> HTMLResponse:
    endpoints = await WebhookRepository(session).page(
        user.account_id, user.environment, limit=MAX_ENDPOINTS, after=None
    )
    return _list_page(request, user, endpoints[:MAX_ENDPOINTS])


@router.post("")
async def create_webhook(
    request: Request,
    user: ConsoleUserDep,
    form: CheckedFormDep,
    ctx: ContextDep,
    session: SessionDep,
) -> Response:
    try:
        try:
            body = WebhookCreate(
                url=form.get("url", "").strip(),
                events=_events(form),
                description=form.get("description", "").strip() or None,
            )
        except ValidationError as invalid:
            raise invalid_form(invalid) from None
        outcome = await service.create(ctx, user.account_id, user.environment, body)
    except ApiError as error:
        endpoints = await WebhookRepository(session).page(
            user.account_id, user.environment, limit=MAX_ENDPOINTS, after=None
        )
        return _list_page(
            request,
            user,
            endpoints[:MAX_ENDPOINTS],
            values=form,
            events=form.every("events"),
            error=error,
        )
    assert isinstance(outcome, tuple)  # no Idempotency-Key: never an earlier answer
    endpoint, secret, warning = outcome
    return await _endpoint_page(
        request, user, ctx, endpoint, secret=secret, notice=warning, created=True
    )


async def _endpoint_page(
    request: Request,
    user: ConsoleUser,
    ctx: AppContext,
    endpoint: WebhookEndpoint,
    *,
    secret: str | None = None,
    notice: str | None = None,
    created: bool = False,
    values: Mapping[str, str] | None = None,
    events: Collection[str] | None = None,
    error: ApiError | None = None,
) -> HTMLResponse:
    only_failed = request.query_params.get("failed") == "1"
    async with ctx.sessions() as session:
        log = await _log(session, endpoint, only_failed)
    since = (ctx.clock.now() - REPLAY_SINCE).astimezone(UTC)
    return render(
        request,
        "webhook.html",
        user=user,
        status=error.status if error else 200,
        switch_path="/webhooks",
        endpoint=endpoint,
        log=log,
        refresh_seconds=REFRESH_SECONDS,
        secret=secret,
        created=created,
        notice=notice,
        replay_since=since.strftime("%Y-%m-%dT%H:%M"),
        values=values
        or {
            "url": endpoint.url,
            "description": endpoint.description or "",
            **({"enabled": "on"} if endpoint.enabled else {}),
        },
        checked_events=frozenset(endpoint.events if events is None else events),
        error=error.detail if error else None,
        errors=_shown_errors(error),
        event_groups=EVENT_GROUPS,
        done=_done(request),
    )


def _done(request: Request) -> str | None:
    """What the last form did, said once after its redirect."""
    query = request.query_params
    if query.get("saved") == "1":
        return "Saved."
    if query.get("tested"):
        return f"A webhook.test event is on its way ({query['tested'][:64]})."
    if query.get("retried"):
        return f"The delivery {query['retried'][:64]} is due again now."
    if query.get("replayed") is not None and query["replayed"].isdigit():
        count = int(query["replayed"])
        return f"{count} failed deliver{'y is' if count == 1 else 'ies are'} due again now."
    return None


@router.get("/{endpoint_id}")
async def webhook_page(
    endpoint_id: str, request: Request, user: ConsoleUserDep, ctx: ContextDep, session: SessionDep
) -> HTMLResponse:
    endpoint = await _endpoint(session, user, endpoint_id)
    return await _endpoint_page(request, user, ctx, endpoint)


@router.get("/{endpoint_id}/deliveries")
async def deliveries_fragment(
    endpoint_id: str, request: Request, user: ConsoleUserDep, session: SessionDep
) -> HTMLResponse:
    """The delivery log alone, for the page's refresh while a delivery is pending."""
    endpoint = await _endpoint(session, user, endpoint_id)
    log = await _log(session, endpoint, request.query_params.get("failed") == "1")
    return render(
        request,
        "webhook_deliveries.html",
        user=user,
        endpoint=endpoint,
        log=log,
        refresh_seconds=REFRESH_SECONDS,
    )


@router.post("/{endpoint_id}")
async def update_webhook(
    endpoint_id: str,
    request: Request,
    user: ConsoleUserDep,
    form: CheckedFormDep,
    ctx: ContextDep,
    session: SessionDep,
) -> Response:
    endpoint = await _endpoint(session, user, endpoint_id)
    try:
        try:
            patch = WebhookUpdate(
                url=form.get("url", "").strip(),
                events=_events(form),
                description=form.get("description", "").strip() or None,
                enabled="enabled" in form,
            )
        except ValidationError as invalid:
            raise invalid_form(invalid) from None
        await service.update_endpoint(ctx, user.account_id, user.environment, endpoint.id, patch)
    except ApiError as error:
        return await _endpoint_page(
            request, user, ctx, endpoint, values=form, events=form.every("events"), error=error
        )
    return _back(request, endpoint.id, saved="1")


def _back(request: Request, endpoint_id: str, **query: str) -> RedirectResponse:
    return RedirectResponse(
        page_links(request).to(f"/webhooks/{endpoint_id}", **query), status_code=303
    )


@router.post("/{endpoint_id}/delete")
async def delete_webhook(
    endpoint_id: str,
    request: Request,
    user: ConsoleUserDep,
    form: CheckedFormDep,
    ctx: ContextDep,
    session: SessionDep,
) -> Response:
    endpoint = await _endpoint(session, user, endpoint_id)
    await service.delete(ctx, user.account_id, user.environment, endpoint.id)
    return RedirectResponse(page_links(request).to("/webhooks"), status_code=303)


@router.post("/{endpoint_id}/rotate-secret")
async def rotate_secret(
    endpoint_id: str,
    request: Request,
    user: ConsoleUserDep,
    form: CheckedFormDep,
    ctx: ContextDep,
    session: SessionDep,
) -> HTMLResponse:
    """The new secret, on this answer only (reloading does not show it again)."""
    endpoint = await _endpoint(session, user, endpoint_id)
    rotated, secret = await service.rotate_secret(
        ctx, user.account_id, user.environment, endpoint.id
    )
    return await _endpoint_page(request, user, ctx, rotated, secret=secret)


@router.post("/{endpoint_id}/test")
async def send_test(
    endpoint_id: str,
    request: Request,
    user: ConsoleUserDep,
    form: CheckedFormDep,
    ctx: ContextDep,
    session: SessionDep,
) -> Response:
    endpoint = await _endpoint(session, user, endpoint_id)
    delivery = await service.send_test(ctx, user.account_id, user.environment, endpoint.id)
    return _back(request, endpoint.id, tested=delivery.id)


@router.post("/{endpoint_id}/deliveries/{delivery_id}/retry")
async def retry_delivery(
    endpoint_id: str,
    delivery_id: str,
    request: Request,
    user: ConsoleUserDep,
    form: CheckedFormDep,
    ctx: ContextDep,
    session: SessionDep,
) -> Response:
    endpoint = await _endpoint(session, user, endpoint_id)
    try:
        delivery = await service.retry_delivery(
            ctx, user.account_id, user.environment, endpoint.id, delivery_id[:64]
        )
    except NotFound:
        raise PageNotFound(f"There is no delivery {delivery_id[:64]} for this webhook.") from None
    return _back(request, endpoint.id, retried=delivery.id)


@router.post("/{endpoint_id}/replay")
async def replay_failed(
    endpoint_id: str,
    request: Request,
    user: ConsoleUserDep,
    form: CheckedFormDep,
    ctx: ContextDep,
    session: SessionDep,
) -> Response:
    """Every failed delivery since the given time (UTC) is due again."""
    endpoint = await _endpoint(session, user, endpoint_id)
    try:
        since = datetime.fromisoformat(form.get("since", "").strip()).replace(tzinfo=UTC)
    except ValueError:
        error = Unprocessable(
            "Say since when to replay.",
            errors=[FieldError("since", "invalid_value", "A date and time, in UTC.")],
        )
        return await _endpoint_page(request, user, ctx, endpoint, error=error)
    count = await service.replay_failed(ctx, user.account_id, user.environment, endpoint.id, since)
    return _back(request, endpoint.id, replayed=str(count))
