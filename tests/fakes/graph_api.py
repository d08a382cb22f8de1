"""``GraphApi``: Meta's WhatsApp Cloud API (Graph) on a real local socket.

It speaks Graph JSON at ``http://127.0.0.1:<port>/<version>/...`` and acts what
the real API does to a business that sends:

- ``POST /{phone-number-id}/messages`` checks the bearer token (190, HTTP 401,
  when wrong), validates the body's shape (100 with the field when wrong): the
  recipient is ``to`` (a phone number's digits) or ``recipient`` (a business-scoped
  user id, ``US.13491208655302741918``), ``to`` winning when both are given; it mints
  ``wamid.`` ids, refuses free-form messages outside the 24-hour window with
  131047 (the window opens when :meth:`contact_writes`), refuses the numbers in
  :attr:`undeliverable` with 131026, limits the number's throughput with a token
  bucket (130429) and each recipient's pace (131056); a ``status: read`` body
  marks a message read (``{"success": true}``);
- ``GET /{phone-number-id}`` answers the phone number's display number, verified
  name and quality rating;
- ``GET /{waba-id}/message_templates`` serves :attr:`templates` over several pages
  (``paging.cursors.after`` and an absolute ``paging.next``); ``POST`` there
  creates a PENDING template;
- after each accepted send it posts signed status webhooks (``sent``,
  ``delivered``, ``read`` by default; :attr:`script` per recipient changes them:
  duplicates, ``read`` before ``delivered``, ``failed`` with errors) to
  :attr:`webhook_url` through :attr:`webhook_client`, and :meth:`contact_writes`
  posts a contact's message the same way; every webhook is signed with the app
  secret as Meta signs (HMAC-SHA256 of the exact bytes posted).

Contacts with a user id (:meth:`contact_writes_as_user`) write in as Meta's
webhooks show them since the usernames rollout: ``contacts[].user_id`` always,
``wa_id`` and the message's ``from`` only when their phone may be shown,
``from_user_id`` always. A send by user id is answered with ``contacts[].user_id``
and no ``wa_id``; its status webhooks carry ``recipient_user_id`` (and
``recipient_id`` only when the phone may be shown), and the ``sent``, ``delivered``
and ``read`` ones a ``contacts[]`` with the user id (``failed`` ones none). One
person's window is the same whether addressed by phone or by user id.
:meth:`close_window` makes the fake's clock pass the 24 hours (Meta answers
131047 from then on, until the contact writes again).

Errors have Graph's shape: ``{"error": {"message", "type", "code",
"error_data": {"messaging_product", "details"}, "fbtrace_id"}}``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

PHONE_NUMBER_ID = "106540352242922"
DISPLAY_NUMBER = "15550783881"
BUSINESS_ACCOUNT_ID = "102290129340398"
ACCESS_TOKEN = "EAAG-test-token-kept-secret"
APP_SECRET = "app-secret-for-signing"
VERIFY_TOKEN = "verify-me-please"
MEDIA_TYPES = ("image", "audio", "video", "document", "sticker")
CAPTIONED = ("image", "video", "document")
WINDOW_SECONDS = 24 * 3600
# A business-scoped user id (``US.13491208655302741918``) or a parent one (``US.ENT.…``).
USER_ID = re.compile(r"^[A-Z]{2}\.(ENT\.)?[A-Za-z0-9]{1,128}$")
# Failures Meta reports in ``failed`` status webhooks: title and details.
FAILURES = {
    131026: ("Message undeliverable", "Message undeliverable."),
    131047: (
        "Re-engagement message",
        "Message failed to send because more than 24 hours have passed since the "
        "customer last replied to this number.",
    ),
    131049: (
        "This message was not delivered to maintain healthy ecosystem engagement.",
        "In order to maintain a healthy ecosystem engagement, the message failed to be delivered.",
    ),
}


def graph_error(status: int, code: int, message: str, details: str | None = None) -> JSONResponse:
    body = {
        "error": {
            "message": f"({'#'}{code}) {message}",
            "type": "OAuthException",
            "code": code,
            "error_data": {"messaging_product": "whatsapp", "details": details or message},
            "fbtrace_id": secrets.token_urlsafe(12),
        }
    }
    return JSONResponse(body, status_code=status)


def mint_wamid() -> str:
    return "wamid." + base64.b64encode(secrets.token_bytes(30)).decode().rstrip("=")


def signature(app_secret: str, raw: bytes) -> str:
    return "sha256=" + hmac.new(app_secret.encode(), raw, hashlib.sha256).hexdigest()


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


class _Invalid(Exception):
    def __init__(self, details: str) -> None:
        super().__init__(details)
        self.details = details


@dataclass
class GraphApi:
    version: str = "v25.0"
    phone_number_id: str = PHONE_NUMBER_ID
    business_account_id: str = BUSINESS_ACCOUNT_ID
    access_token: str = ACCESS_TOKEN
    app_secret: str = APP_SECRET
    # The number's throughput (130429 beyond it) and one recipient's (131056).
    messages_per_second: float = 80.0
    pair_burst: int = 1000
    pair_per_second: float = 1 / 6
    enforce_window: bool = True
    undeliverable: set[str] = field(default_factory=set)
    # Per recipient (digits): the statuses its messages go through, in the order
    # they are posted; a "failed:<code>" entry posts a failure with that code.
    script: dict[str, list[str]] = field(default_factory=dict)
    default_script: tuple[str, ...] = ("sent", "delivered", "read")
    templates: list[dict[str, Any]] = field(default_factory=list)
    # Tokens of an app over Meta's rate (80007 for every send until another is used).
    throttled_tokens: set[str] = field(default_factory=set)
    # Keep the status webhooks owed until :meth:`release` (Meta retrying them later,
    # to whichever Tidings process answers then).
    hold: bool = False
    held: list[tuple[str, str, list[str], Any]] = field(default_factory=list)
    webhook_url: str | None = None
    webhook_client: httpx.AsyncClient | None = None
    # What Tidings answered each webhook, in order.
    webhook_answers: list[int] = field(default_factory=list)
    # The webhook bodies posted (those given as JSON), in order.
    posted: list[dict[str, Any]] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)
    read_marks: list[str] = field(default_factory=list)
    # Sends answered with 130429 / 131056 (each a throttled attempt).
    throttled: int = 0
    port: int = 0
    _last_inbound: dict[str, float] = field(default_factory=dict)
    # Users known by user id: their phone's digits, or None when it may not be shown.
    users: dict[str, str | None] = field(default_factory=dict)
    _bucket: float = 0.0
    _bucket_at: float = 0.0
    _pairs: dict[str, tuple[float, float]] = field(default_factory=dict)
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[None] | None = None
    _posting: set[asyncio.Task[None]] = field(default_factory=set)
    _answer_override: Callable[[dict[str, Any]], Response | None] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def provider_config(self, **overrides: Any) -> dict[str, Any]:
        """A ``whatsapp_cloud`` provider's config pointing at this fake."""
        config: dict[str, Any] = {
            "phoneNumberId": self.phone_number_id,
            "businessAccountId": self.business_account_id,
            "accessToken": self.access_token,
            "appSecret": self.app_secret,
            "verifyToken": VERIFY_TOKEN,
            "apiVersion": self.version,
            "baseUrl": self.base_url,
        }
        config.update(overrides)
        return config

    def sent(self) -> list[dict[str, Any]]:
        """The message bodies Graph accepted or refused, in order (read marks aside)."""
        return [
            r.body
            for r in self.requests
            if r.method == "POST"
            and r.path.endswith("/messages")
            and isinstance(r.body, dict)
            and r.body.get("status") != "read"
        ]

    # -- the server ------------------------------------------------------------------

    async def start(self) -> None:
        self._bucket = self.messages_per_second
        self._bucket_at = time.monotonic()
        prefix = f"/{self.version}"
        app = Starlette(
            routes=[
                Route(f"{prefix}/{{number}}/messages", self._messages, methods=["POST"]),
                Route(
                    f"{prefix}/{{waba}}/message_templates",
                    self._templates,
                    methods=["GET", "POST"],
                ),
                Route(f"{prefix}/{{number}}", self._phone_number, methods=["GET"]),
            ]
        )
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]

    async def stop(self) -> None:
        for task in list(self._posting):
            task.cancel()
        for task in list(self._posting):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._server = None

    async def settled(self) -> None:
        """Wait until every webhook the fake owes has been posted."""
        while self._posting:
            await asyncio.gather(*list(self._posting), return_exceptions=True)

    # -- requests ----------------------------------------------------------------------

    async def _record(self, request: Request) -> Received:
        raw = await request.body()
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except json.JSONDecodeError:
                body = raw
        received = Received(request.method, request.url.path, dict(request.headers), body)
        self.requests.append(received)
        return received

    def _authorised(self, received: Received) -> JSONResponse | None:
        if received.headers.get("authorization", "").removeprefix("Bearer ") in (
            self.throttled_tokens
        ):
            self.throttled += 1
            return graph_error(
                400, 80007, "Rate limit issues", "The WhatsApp Business account's rate limit."
            )
        if received.headers.get("authorization") != f"Bearer {self.access_token}":
            return graph_error(
                401,
                190,
                "Error validating access token: Session has expired.",
                "The access token is invalid or has expired.",
            )
        return None

    async def _phone_number(self, request: Request) -> Response:
        received = await self._record(request)
        refused = self._authorised(received)
        if refused is not None:
            return refused
        if request.path_params["number"] != self.phone_number_id:
            return graph_error(400, 100, "Unsupported get request.", "Object does not exist.")
        return JSONResponse(
            {
                "id": self.phone_number_id,
                "display_phone_number": "+1 555-078-3881",
                "verified_name": "Tidings Test Shop",
                "quality_rating": "GREEN",
            }
        )

    async def _messages(self, request: Request) -> Response:
        received = await self._record(request)
        refused = self._authorised(received)
        if refused is not None:
            return refused
        if request.path_params["number"] != self.phone_number_id:
            return graph_error(400, 100, "Invalid parameter", "Unknown phone number id.")
        body = received.body
        if not isinstance(body, dict) or body.get("messaging_product") != "whatsapp":
            return graph_error(400, 100, "Invalid parameter", "messaging_product must be whatsapp.")
        if body.get("status") == "read":
            if not str(body.get("message_id", "")).startswith("wamid."):
                return graph_error(400, 100, "Invalid parameter", "message_id is required.")
            self.read_marks.append(str(body["message_id"]))
            return JSONResponse({"success": True})
        if self._answer_override is not None:
            override = self._answer_override(body)
            if override is not None:
                return override
        try:
            recipient = self._validate(body)
        except _Invalid as invalid:
            return graph_error(400, 100, "Invalid parameter", invalid.details)
        if not self._take_number_token():
            self.throttled += 1
            return graph_error(
                400, 130429, "Rate limit hit", "Cloud API message throughput has been reached."
            )
        if not self._take_pair_token(recipient):
            self.throttled += 1
            return graph_error(
                400,
                131056,
                "(Business Account, Consumer Account) pair rate limit hit",
                "Too many messages sent from this phone number to the same phone number "
                "in a short period of time.",
            )
        if recipient in self.undeliverable:
            return graph_error(400, 131026, "Message undeliverable", "Message undeliverable.")
        if (
            self.enforce_window
            and body["type"] != "template"
            and time.time() - self._last_inbound.get(self._person(recipient), 0) > WINDOW_SECONDS
        ):
            return graph_error(
                400,
                131047,
                "Re-engagement message",
                "Message failed to send because more than 24 hours have passed since the "
                "customer last replied to this number.",
            )
        wamid = mint_wamid()
        contact: dict[str, str] = {"input": str(body.get("to") or body.get("recipient"))}
        if body.get("to"):
            contact["wa_id"] = recipient
        else:
            contact["user_id"] = recipient
        answer: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "contacts": [contact],
            "messages": [{"id": wamid}],
        }
        if body["type"] == "template":
            answer["messages"][0]["message_status"] = "accepted"
        self._owe_statuses(wamid, recipient, body.get("biz_opaque_callback_data"))
        return JSONResponse(answer)

    def _validate(self, body: dict[str, Any]) -> str:
        to, user_id = body.get("to"), body.get("recipient")
        if not to and not user_id:
            raise _Invalid("The parameter to or recipient is required.")
        if body.get("recipient_type", "individual") != "individual":
            raise _Invalid("recipient_type must be individual.")
        if to is not None and not (isinstance(to, str) and to.lstrip("+").isdigit()):
            raise _Invalid("to must be a phone number (a user id goes in recipient).")
        if user_id is not None and not (isinstance(user_id, str) and USER_ID.match(user_id)):
            raise _Invalid("recipient must be a business-scoped user id.")
        # Both given: Meta sends to the phone number.
        recipient = str(to or user_id)
        kind = body.get("type")
        if kind not in ("text", "template", *MEDIA_TYPES):
            raise _Invalid(f"Unsupported message type {kind!r}.")
        item = body.get(kind)
        if not isinstance(item, dict):
            raise _Invalid(f"The {kind} object is required.")
        context = body.get("context")
        if context is not None and not str((context or {}).get("message_id", "")).startswith(
            "wamid."
        ):
            raise _Invalid("context.message_id must be a wamid.")
        if kind == "text":
            text = item.get("body")
            if not isinstance(text, str) or not text or len(text) > 4096:
                raise _Invalid("text.body is required (at most 4096 characters).")
            if not isinstance(item.get("preview_url", False), bool):
                raise _Invalid("text.preview_url must be a boolean.")
            if set(item) - {"body", "preview_url"}:
                raise _Invalid("Unknown fields in text.")
        elif kind == "template":
            self._validate_template(item)
        else:
            if ("link" in item) == ("id" in item):
                raise _Invalid(f"{kind} takes one of link and id.")
            if "link" in item and not str(item["link"]).startswith("https://"):
                raise _Invalid(f"{kind}.link must be a public https URL.")
            if "caption" in item and kind not in CAPTIONED:
                raise _Invalid(f"{kind} takes no caption.")
            if "filename" in item and kind != "document":
                raise _Invalid("Only documents take a filename.")
            if len(str(item.get("caption", ""))) > 1024:
                raise _Invalid("caption has at most 1024 characters.")
        return recipient.lstrip("+")

    @staticmethod
    def _validate_template(item: dict[str, Any]) -> None:
        if not isinstance(item.get("name"), str):
            raise _Invalid("template.name is required.")
        language = item.get("language")
        if not isinstance(language, dict) or not isinstance(language.get("code"), str):
            raise _Invalid("template.language.code is required.")
        for component in item.get("components", []):
            kind = component.get("type")
            if kind not in ("header", "body", "button"):
                raise _Invalid(f"Unknown component type {kind!r}.")
            parameters = component.get("parameters")
            if not isinstance(parameters, list) or not parameters:
                raise _Invalid(f"{kind} component needs parameters.")
            for parameter in parameters:
                ptype = parameter.get("type")
                if ptype not in parameter:
                    raise _Invalid(f"Parameter of type {ptype!r} lacks its {ptype} value.")
            if kind == "button" and (
                component.get("sub_type") not in ("url", "quick_reply", "copy_code")
                or not str(component.get("index", "")).isdigit()
            ):
                raise _Invalid("A button component needs sub_type and index.")

    def _person(self, recipient: str) -> str:
        """Who a phone's digits or a user id is: the user id when Meta knows one."""
        if recipient in self.users:
            return recipient
        for user_id, phone in self.users.items():
            if phone == recipient:
                return user_id
        return recipient

    def close_window(self, contact: str) -> None:
        """More than 24 hours pass, as Meta counts them, since ``contact`` (a phone or
        a user id) last wrote: free-form sends get 131047 until it writes again."""
        self._last_inbound.pop(self._person(contact.lstrip("+")), None)

    def _take_number_token(self) -> bool:
        now = time.monotonic()
        self._bucket = min(
            self.messages_per_second,
            self._bucket + (now - self._bucket_at) * self.messages_per_second,
        )
        self._bucket_at = now
        if self._bucket < 1:
            return False
        self._bucket -= 1
        return True

    def _take_pair_token(self, recipient: str) -> bool:
        now = time.monotonic()
        tokens, at = self._pairs.get(recipient, (float(self.pair_burst), now))
        tokens = min(float(self.pair_burst), tokens + (now - at) * self.pair_per_second)
        if tokens < 1:
            self._pairs[recipient] = (tokens, now)
            return False
        self._pairs[recipient] = (tokens - 1, now)
        return True

    async def _templates(self, request: Request) -> Response:
        received = await self._record(request)
        refused = self._authorised(received)
        if refused is not None:
            return refused
        if request.path_params["waba"] != self.business_account_id:
            return graph_error(400, 100, "Invalid parameter", "Unknown business account.")
        if request.method == "POST":
            body = received.body if isinstance(received.body, dict) else {}
            if not all(isinstance(body.get(k), str) for k in ("name", "language", "category")):
                return graph_error(400, 100, "Invalid parameter", "name, language, category.")
            if any(
                t.get("name") == body["name"] and t.get("language") == body["language"]
                for t in self.templates
            ):
                return graph_error(
                    400, 100, "Invalid parameter", "Content in this language already exists."
                )
            created = {
                "id": str(10**15 + len(self.templates)),
                "status": "PENDING",
                "category": body["category"],
                **{k: body[k] for k in ("name", "language", "components") if k in body},
            }
            self.templates.append(created)
            return JSONResponse(
                {"id": created["id"], "status": "PENDING", "category": body["category"]}
            )
        limit = int(request.query_params.get("limit", "25"))
        start = int(request.query_params.get("after") or 0)
        page = self.templates[start : start + limit]
        answer: dict[str, Any] = {"data": page, "paging": {"cursors": {"before": str(start)}}}
        if start + limit < len(self.templates):
            after = str(start + limit)
            answer["paging"]["cursors"]["after"] = after
            answer["paging"]["next"] = (
                f"{self.base_url}/{self.version}/{self.business_account_id}/message_templates"
                f"?limit={limit}&after={after}"
            )
        return JSONResponse(answer)

    # -- webhooks ----------------------------------------------------------------------

    def envelope(self, value: dict[str, Any], field_name: str = "messages") -> dict[str, Any]:
        return {
            "object": "whatsapp_business_account",
            "entry": [
                {"id": self.business_account_id, "changes": [{"field": field_name, "value": value}]}
            ],
        }

    def messages_value(self, **parts: Any) -> dict[str, Any]:
        return {
            "messaging_product": "whatsapp",
            "metadata": {
                "display_phone_number": DISPLAY_NUMBER,
                "phone_number_id": self.phone_number_id,
            },
            **parts,
        }

    async def post_webhook(
        self, body: dict[str, Any] | bytes, *, signed_with: str | None = None, sign: bool = True
    ) -> httpx.Response:
        """Post one webhook to Tidings as Meta would: compact JSON, non-ASCII escaped."""
        assert self.webhook_url is not None and self.webhook_client is not None
        raw = body if isinstance(body, bytes) else json.dumps(body, separators=(",", ":")).encode()
        if isinstance(body, dict):
            self.posted.append(body)
        headers = {"Content-Type": "application/json"}
        if sign:
            headers["X-Hub-Signature-256"] = signature(signed_with or self.app_secret, raw)
        answer = await self.webhook_client.post(self.webhook_url, content=raw, headers=headers)
        self.webhook_answers.append(answer.status_code)
        return answer

    async def contact_writes(
        self, phone: str, text: str = "Hi there", *, name: str = "Sheena", ago: float = 0
    ) -> str:
        """A contact writes to the business number (``ago`` seconds before the
        webhook reaches Tidings): the window opens; the wamid."""
        digits = phone.lstrip("+")
        self._last_inbound[self._person(digits)] = time.time() - ago
        wamid = mint_wamid()
        value = self.messages_value(
            contacts=[{"profile": {"name": name}, "wa_id": digits}],
            messages=[
                {
                    "from": digits,
                    "id": wamid,
                    "timestamp": str(int(time.time() - ago)),
                    "type": "text",
                    "text": {"body": text},
                }
            ],
        )
        answer = await self.post_webhook(self.envelope(value))
        assert answer.status_code == 200, answer.text
        return wamid

    async def contact_writes_as_user(
        self,
        user_id: str,
        text: str = "Hi there",
        *,
        phone: str | None = None,
        name: str = "Sheena",
        username: str | None = None,
        ago: float = 0,
    ) -> str:
        """A contact known by its business-scoped user id writes in (its phone shown
        only when ``phone`` is given; ``ago`` seconds before the webhook reaches
        Tidings): the window opens; the wamid."""
        assert USER_ID.match(user_id), user_id
        digits = phone.lstrip("+") if phone else None
        self.users[user_id] = digits
        self._last_inbound[user_id] = time.time() - ago
        wamid = mint_wamid()
        profile: dict[str, str] = {"name": name}
        if username:
            profile["username"] = username
        contact: dict[str, Any] = {"profile": profile, "user_id": user_id}
        message: dict[str, Any] = {
            "from_user_id": user_id,
            "id": wamid,
            "timestamp": str(int(time.time() - ago)),
            "type": "text",
            "text": {"body": text},
        }
        if digits:
            contact["wa_id"] = digits
            message["from"] = digits
        value = self.messages_value(contacts=[contact], messages=[message])
        answer = await self.post_webhook(self.envelope(value))
        assert answer.status_code == 200, answer.text
        return wamid

    async def contact_changes_number(
        self,
        phone: str,
        new_phone: str,
        *,
        name: str = "Sheena",
        user_id: str | None = None,
        previous_user_id: str | None = None,
    ) -> str:
        """A contact changes its number (and so its user id: ``user_id`` the new one,
        ``previous_user_id`` the old): Meta's ``user_changed_number`` system message,
        which has no ``contacts`` array. Its window is the same person's; the wamid."""
        old, new = phone.lstrip("+"), new_phone.lstrip("+")
        person = self._person(old)
        last = self._last_inbound.pop(person, None)
        if previous_user_id:
            self.users.pop(previous_user_id, None)
        if user_id:
            self.users[user_id] = new
        if last is not None:
            self._last_inbound[self._person(new)] = last
        system: dict[str, Any] = {
            "body": f"User {name} changed from {old} to {new}",
            "wa_id": new,
            "type": "user_changed_number",
        }
        if user_id:
            system["user_id"] = user_id
        if previous_user_id:
            system["previous_user_id"] = previous_user_id
        return await self._post_system(system, phone=old)

    async def contact_changes_user_id(
        self, user_id: str, new_user_id: str, *, name: str = "Sheena"
    ) -> str:
        """A contact's user id changes with no phone to share: Meta's
        ``user_changed_user_id`` system message; the wamid."""
        assert USER_ID.match(new_user_id), new_user_id
        self.users[new_user_id] = self.users.pop(user_id, None)
        last = self._last_inbound.pop(user_id, None)
        if last is not None:
            self._last_inbound[new_user_id] = last
        system = {
            "body": f"User {name} changed their business-scoped user ID",
            "type": "user_changed_user_id",
            "user_id": new_user_id,
            "previous_user_id": user_id,
        }
        return await self._post_system(system, user_id=user_id)

    async def _post_system(
        self, system: dict[str, Any], *, phone: str | None = None, user_id: str | None = None
    ) -> str:
        wamid = mint_wamid()
        message: dict[str, Any] = {
            "id": wamid,
            "timestamp": str(int(time.time())),
            "type": "system",
            "system": system,
        }
        if phone:
            message["from"] = phone
        if user_id:
            message["from_user_id"] = user_id
        answer = await self.post_webhook(self.envelope(self.messages_value(messages=[message])))
        assert answer.status_code == 200, answer.text
        return wamid

    def status_value(
        self, wamid: str, recipient: str, status: str, callback: str | None = None
    ) -> dict[str, Any]:
        item: dict[str, Any] = {
            "id": wamid,
            "status": status,
            "timestamp": str(int(time.time())),
        }
        person = self._person(recipient)
        phone = self.users.get(person) if person in self.users else recipient
        if phone:
            item["recipient_id"] = phone
        if person in self.users:
            item["recipient_user_id"] = person
        if callback:
            item["biz_opaque_callback_data"] = callback
        if status in ("sent", "delivered", "read"):
            item["pricing"] = {
                "billable": True,
                "pricing_model": "PMP",
                "type": "free_customer_service",
                "category": "service",
            }
        if status.startswith("failed"):
            code = int(status.split(":", 1)[1]) if ":" in status else 131026
            item["status"] = "failed"
            title, details = FAILURES.get(code, ("Failure", f"Meta failed it with {code}."))
            item["errors"] = [
                {
                    "code": code,
                    "title": title,
                    "message": title,
                    "error_data": {"details": details},
                    "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
                }
            ]
        if person in self.users and item["status"] != "failed":
            contact: dict[str, Any] = {"user_id": person}
            if phone:
                contact["wa_id"] = phone
            return self.messages_value(contacts=[contact], statuses=[item])
        return self.messages_value(statuses=[item])

    def _owe_statuses(self, wamid: str, recipient: str, callback: Any) -> None:
        if not self.hold and (self.webhook_url is None or self.webhook_client is None):
            return
        steps = self.script.get(recipient, list(self.default_script))
        if self.hold:
            self.held.append((wamid, recipient, steps, callback))
            return
        self._post_later(wamid, recipient, steps, callback)

    def release(self) -> None:
        """Post the held status webhooks (to the current :attr:`webhook_url`)."""
        held, self.held = self.held, []
        for wamid, recipient, steps, callback in held:
            self._post_later(wamid, recipient, steps, callback)

    def _post_later(self, wamid: str, recipient: str, steps: list[str], callback: Any) -> None:
        async def post_all() -> None:
            # After the send's answer has gone out, as Meta's webhooks follow it.
            await asyncio.sleep(0.01)
            for index, step in enumerate(steps):
                value = self.status_value(wamid, recipient, step, callback)
                try:
                    answer = await self.post_webhook(self.envelope(value))
                except (httpx.HTTPError, RuntimeError):
                    answer = None
                if answer is None or answer.status_code != 200:
                    # Meta tries again later: kept for the next release.
                    self.held.append((wamid, recipient, steps[index:], callback))
                    return

        task = asyncio.create_task(post_all())
        self._posting.add(task)
        task.add_done_callback(self._posting.discard)

    def answer_with(self, override: Callable[[dict[str, Any]], Response | None] | None) -> None:
        """Answer message sends with ``override`` (None: the fake's own answer)."""
        self._answer_override = override
