"""The contract every provider kind passes, table-driven (as Apprise tests its plugins).

Each row of :data:`CASES` is a :class:`KindCase`: a kind on one channel, how to
configure a provider of it so that its network acts each scenario, what its
network's reports look like, and the statuses those reports move an accepted
message through. Every test below runs once per case, through the real HTTP API and
runtime: a production account, providers added through the providers service,
messages sent with ``/api/v4/...`` and read back the same way.

The scenarios (:data:`SCENARIOS`) a case must be able to provoke:

- ``success``: the network takes the message and gives it an id; its receipts follow;
- ``quiet``: it takes the message and reports nothing by itself during the test (the
  tests that deliver reports themselves use this);
- ``retryable``: it fails the first attempts with a retryable error, then takes it;
- ``permanent``: it refuses the message for good;
- ``throttled``: it asks to slow down (until the provider is given ``recovered``);
- ``credentials_refused``: it refuses the provider's credentials;
- ``black_hole``: it never answers (the dispatcher's send deadline ends the attempt).

Adding a kind (say ``smtp``, with a wire-level fake of its server under
``tests/fakes/``): write a ``provoke`` for it, an async context manager that starts
what the scenario needs (the fake, acting the scenario) and yields a
:class:`Provocation` (the provider's config, the recipient, and for the scenarios
that end on their own, the config that makes the network work again); write its
``report`` (the payload its network's receipt is stored as in the inbox, which the
kind's own ``parse_report`` reads); give the settings under which its network keeps
quiet; when its network must know the running app (where to post its webhooks, a
contact who wrote in), an ``attach`` called whenever a provider of it is added or an
app restarted; when the kind needs more of the deployment around its network than a provider (a
bounce domain with its listener, DNS resolvers, a verified sending domain for the
account), a ``deployment``: an async context manager started once per test, around
every app the test runs, yielding a :class:`Deployment` (settings sections merged
into every app's settings, and a ``prepare`` run for the test's account once it has
logged in); then add one ``KindCase(...)`` line to :data:`CASES`. Nothing else
changes. The ``smpp``, ``whatsapp_cloud`` and ``smtp`` cases live beside their
kinds' tests.
"""

from __future__ import annotations

import re
import secrets
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from tests.conftest import make_settings
from tests.providers.helpers import (
    FAST,
    FINAL,
    ORDINARY,
    app_running,
    applied,
    between_attempts,
    circuit_state,
    events,
    eventually,
    http,
    production_token,
    provider,
    read,
    send,
    with_overrides,
)
from tests.providers.smpp.contract_case import provoke_smpp, smpp_report
from tests.providers.smtp.contract_case import (
    SMTP_ID,
    attach_smtp,
    provoke_smtp,
    smtp_deployment,
    smtp_report,
)
from tests.providers.whatsapp_cloud.contract_case import (
    attach_whatsapp,
    provoke_whatsapp,
    whatsapp_report,
)
from tests.support.messages import wait_for
from tests.support.providers import add_provider
from tests.support.users import TestUser, bearer, create_test_user
from tidings.core.environments import Environment
from tidings.messages.models import Message
from tidings.messages.status import Status
from tidings.providers.base import RawReport
from tidings.providers.directory import Choice
from tidings.providers.models import InboxEvent, ProviderRefRow
from tidings.providers.simulator.provider import report_payload
from tidings.providers.simulator.scenarios import FLAKY, REFUSED, Step
from tidings.settings import Settings

SCENARIOS = (
    "success",
    "quiet",
    "retryable",
    "permanent",
    "throttled",
    "credentials_refused",
    "black_hole",
)


@dataclass(frozen=True)
class Provocation:
    config: dict[str, Any]
    to: str
    # The config under which the network works again, for the scenarios that do not
    # end by themselves (throttled, credentials refused, a black hole); None: the
    # same config (the network recovers on its own).
    recovered: dict[str, Any] | None = None


Provoke = Callable[[str], AbstractAsyncContextManager[Provocation]]
Attach = Callable[[FastAPI, httpx.AsyncClient, str, Provocation], Awaitable[None]]
# Run for the test's account once it has a production token: (app, client, token).
Prepare = Callable[[FastAPI, httpx.AsyncClient, str], Awaitable[None]]


@dataclass(frozen=True)
class Deployment:
    """What a kind needs of the deployment around its network, for one test."""

    # Settings sections merged into the settings of every app the test runs (a
    # case's quiet settings and a test's own overrides go on top).
    settings: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # What the account must have before it sends (a verified sending domain).
    prepare: Prepare | None = None


@asynccontextmanager
async def _nothing_more() -> AsyncIterator[Deployment]:
    yield Deployment()


@dataclass(frozen=True)
class KindCase:
    kind: str
    channel: str
    provoke: Provoke
    # The payload under which the kind's network reports ``status`` for ``external_id``.
    report: Callable[[str, Status, datetime], dict[str, Any]]
    # What the receipts of an accepted message move it through, in order.
    progress: tuple[Status, ...]
    # Settings under which its network reports nothing by itself during a test
    # (the reports it owes are stored due later, or never sent).
    quiet_settings: Mapping[str, Any] = field(default_factory=dict)
    # What the ids it gives look like.
    external_id: str = r".+"
    # For kinds whose network needs to know the running app (where to post its
    # webhooks) or the recipient to have written in (WhatsApp's window): called when
    # a provider is added, and when a test starts a new app for an existing one.
    attach: Attach | None = None
    # What the deployment around its network must provide (see the module's docstring).
    deployment: Callable[[], AbstractAsyncContextManager[Deployment]] = _nothing_more

    def __str__(self) -> str:
        return f"{self.kind}-{self.channel}"

    async def connect(
        self, app: FastAPI, client: httpx.AsyncClient, provider_id: str, provocation: Provocation
    ) -> None:
        if self.attach is not None:
            await self.attach(app, client, provider_id, provocation)


# -- the simulator -----------------------------------------------------------------

_SIMULATOR_SCENARIOS: dict[str, Provocation] = {
    "success": Provocation({}, ORDINARY),
    "quiet": Provocation({}, ORDINARY),
    # FLAKY is unavailable for its first two attempts.
    "retryable": Provocation({}, FLAKY),
    "permanent": Provocation({}, REFUSED),
    "throttled": Provocation({"scenario": "throttled"}, ORDINARY, {"scenario": "normal"}),
    "credentials_refused": Provocation(
        {"scenario": "credentials_refused"}, ORDINARY, {"scenario": "normal"}
    ),
    "black_hole": Provocation({"scenario": "black_hole"}, ORDINARY, {"scenario": "normal"}),
}


@asynccontextmanager
async def _simulator(scenario: str) -> AsyncIterator[Provocation]:
    yield _SIMULATOR_SCENARIOS[scenario]


def _simulator_report(external_id: str, status: Status, at: datetime) -> dict[str, Any]:
    return report_payload(external_id, Step(status), at)


# The simulator stores the receipts it owes at once, each due receipt_delay_seconds
# later: an hour keeps them out of the test.
_SIMULATOR_QUIET = {"sandbox": {"receipt_delay_seconds": 3600.0}}

CASES = [
    KindCase(
        "simulator",
        "sms",
        _simulator,
        _simulator_report,
        (Status.DELIVERED,),
        _SIMULATOR_QUIET,
        external_id=r"sbx\.[0-9a-f]{24}",
    ),
    KindCase(
        "simulator",
        "whatsapp",
        _simulator,
        _simulator_report,
        (Status.DELIVERED, Status.READ),
        _SIMULATOR_QUIET,
        external_id=r"sbx\.[0-9a-f]{24}",
    ),
    KindCase(
        "smpp", "sms", provoke_smpp, smpp_report, (Status.DELIVERED,), external_id="[0-9a-f]+"
    ),
    KindCase(
        "whatsapp_cloud",
        "whatsapp",
        provoke_whatsapp,
        whatsapp_report,
        (Status.DELIVERED, Status.READ),
        external_id=r"wamid\.[A-Za-z0-9+/]+",
        attach=attach_whatsapp,
    ),
    KindCase(
        "smtp",
        "email",
        provoke_smtp,
        smtp_report,
        (Status.DELIVERED,),
        external_id=SMTP_ID,
        attach=attach_smtp,
        deployment=smtp_deployment,
    ),
]


# -- the harness ---------------------------------------------------------------------


@pytest.fixture(params=CASES, ids=str)
def case(request: pytest.FixtureRequest) -> KindCase:
    return request.param  # type: ignore[no-any-return]


class Env:
    """One test's case, data directory and running deployment: the settings of the
    apps it starts."""

    def __init__(self, case: KindCase, data_dir: Path, deployment: Deployment) -> None:
        self.case, self.data_dir, self.deployment = case, data_dir, deployment

    def settings(self, *, dispatch: bool = True, **sections: dict[str, Any]) -> Settings:
        merged = {name: dict(values) for name, values in self.deployment.settings.items()}
        for name, values in sections.items():
            merged.setdefault(name, {}).update(values)
        url = f"sqlite+aiosqlite:///{self.data_dir / 'tidings.db'}"
        timings = with_overrides(FAST, **merged)
        return make_settings(self.data_dir, (url, None), dispatch=dispatch, **timings)

    def quiet(self, *, dispatch: bool = True, **sections: dict[str, Any]) -> Settings:
        """Settings under which the case's network reports nothing by itself."""
        merged = {name: dict(values) for name, values in self.case.quiet_settings.items()}
        for name, values in sections.items():
            merged.setdefault(name, {}).update(values)
        return self.settings(dispatch=dispatch, **merged)


@pytest.fixture
async def env(case: KindCase, data_dir: Path) -> AsyncIterator[Env]:
    async with case.deployment() as deployment:
        yield Env(case, data_dir, deployment)


class Harness:
    """One production account of one running app, for one case."""

    def __init__(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        user: TestUser,
        case: KindCase,
        deployment: Deployment,
    ) -> None:
        self.app, self.client, self.user, self.case = app, client, user, case
        self.deployment = deployment
        self.token = ""
        # What each report stored by the test carried, by its dedupe key.
        self.payloads: dict[str, dict[str, Any]] = {}

    async def login(self) -> None:
        self.token = await production_token(self.app, self.client, self.user)
        if self.deployment.prepare is not None:
            await self.deployment.prepare(self.app, self.client, self.token)

    async def add(self, provocation: Provocation, priority: int = 1) -> str:
        provider_id = await add_provider(
            self.app,
            self.user.account_id,
            self.case.channel,
            self.case.kind,
            config=provocation.config,
            priority=priority,
        )
        await self.case.connect(self.app, self.client, provider_id, provocation)
        return provider_id

    async def send(self, provocation: Provocation, *, wait: bool = False) -> dict[str, Any]:
        return await send(
            self.client, self.token, provocation.to, channel=self.case.channel, wait=wait
        )

    async def until(self, message_id: str, *statuses: str | Status) -> dict[str, Any]:
        wanted = {str(getattr(status, "value", status)) for status in statuses}
        return await wait_for(self.client, self.token, message_id, wanted, base="")

    async def read(self, message_id: str) -> dict[str, Any]:
        return await read(self.client, self.token, message_id)

    async def recover(self, provider_id: str, provocation: Provocation) -> None:
        answer = await self.client.patch(
            f"/api/v4/providers/{provider_id}",
            json={"config": provocation.recovered or provocation.config},
            headers=bearer(self.token),
        )
        assert answer.status_code == 200, answer.text

    async def report(self, provider_id: str, external_id: str, status: Status, key: str) -> int:
        """Store a receipt as the kind's network delivers it; how many were new."""
        payload = self.case.report(external_id, status, datetime.now(UTC))
        self.payloads[key] = payload
        stored: int = await self.app.state.ctx.runtime.inbox.store(
            provider_id, [RawReport(dedupe_key=key, payload=payload)]
        )
        return stored

    async def inbox_rows(self, provider_id: str) -> list[InboxEvent]:
        async with self.app.state.ctx.sessions() as session:
            query = select(InboxEvent).where(InboxEvent.provider_id == provider_id)
            return list(await session.scalars(query.order_by(InboxEvent.id)))

    async def retry_codes(self, message_id: str) -> list[tuple[str, str]]:
        return [
            (event.detail["providerId"], event.detail["error"]["code"])
            for event in await events(self.app, message_id, "retry")
            if event.detail is not None
        ]


@asynccontextmanager
async def harness(
    settings: Settings, case: KindCase | Env, user_name: str = "ada@example.com"
) -> AsyncIterator[Harness]:
    """An app under ``settings`` and a logged-in account; given an :class:`Env`, its
    deployment prepares the account."""
    deployment = case.deployment if isinstance(case, Env) else Deployment()
    kind_case = case.case if isinstance(case, Env) else case
    async with app_running(settings) as app, http(app) as client:
        user = await create_test_user(app, user_name)
        running = Harness(app, client, user, kind_case, deployment)
        await running.login()
        yield running


# -- the scenarios ------------------------------------------------------------------


async def test_success_gives_a_provider_id_and_its_receipts_follow(
    case: KindCase, env: Env
) -> None:
    async with case.provoke("success") as provocation, harness(env.settings(), env) as h:
        pid = await h.add(provocation)
        sent = await h.send(provocation, wait=True)
        assert sent["status"] in ("sent", *(s.value for s in case.progress)), sent
        assert sent["providerId"] == pid
        assert re.fullmatch(case.external_id, sent["providerMessageId"])
        async with h.app.state.ctx.sessions() as session:
            refs = list(
                await session.scalars(
                    select(ProviderRefRow).where(ProviderRefRow.message_id == sent["id"])
                )
            )
        assert [(r.provider_id, r.external_id) for r in refs] == [(pid, sent["providerMessageId"])]
        done = await h.until(sent["id"], case.progress[-1])
        assert applied(done) == ["queued", "sent", *(s.value for s in case.progress)]
        assert done["attempts"] == 1 and done["error"] is None
        assert (await provider(h.client, h.token, pid))["health"] == "ok"


async def test_a_retryable_error_is_retried(case: KindCase, env: Env) -> None:
    # A circuit that stays closed: every retry goes to the provider (the circuit
    # opening on a lone provider is the failover tests' business).
    closed = env.settings(providers={"circuit_failures": 100})
    async with case.provoke("retryable") as provocation, harness(closed, env) as h:
        pid = await h.add(provocation)
        sent = await h.send(provocation)
        done = await h.until(sent["id"], case.progress[-1])
        retries = await h.retry_codes(sent["id"])
        assert retries and all(provider_id == pid for provider_id, _ in retries)
        assert done["attempts"] == len(retries) + 1
        assert done["providerId"] == pid


async def test_a_permanent_error_fails_and_is_never_tried_elsewhere(
    case: KindCase, env: Env
) -> None:
    async with case.provoke("permanent") as provocation, harness(env.settings(), env) as h:
        refusing = await h.add(provocation, priority=1)
        spare = await h.add(provocation, priority=2)
        sent = await h.send(provocation)
        done = await h.until(sent["id"], "failed")
        assert (done["providerId"], done["attempts"]) == (refusing, 1)
        assert done["error"]["code"] and done["error"]["code"] != "provider_unavailable"
        assert await h.retry_codes(sent["id"]) == []
        metrics = h.app.state.ctx.runtime.metrics
        assert metrics.count(spare, "accepted") == 0
        # A refusal is the network working: the provider stays healthy.
        assert (await provider(h.client, h.token, refusing))["health"] != "failing"


async def test_throttled_gives_the_attempt_back(case: KindCase, env: Env) -> None:
    async with case.provoke("throttled") as provocation, harness(env.settings(), env) as h:
        pid = await h.add(provocation)
        sent = await h.send(provocation)

        async def slowed_twice() -> bool:
            return h.app.state.ctx.runtime.metrics.count(pid, "throttled") >= 2

        await eventually(slowed_twice, "the network asked to slow down twice")
        waiting = await between_attempts(h.app, sent["id"])
        assert (waiting.status, waiting.attempts) == ("queued", 0)
        # Waiting for the same reason is said once, however many times it is asked.
        assert [code for _, code in await h.retry_codes(sent["id"])] == ["throttled"]
        # Slowing down is the network working: no open circuit, not failing.
        assert await circuit_state(h.client, pid) == 0
        assert (await provider(h.client, h.token, pid))["health"] != "failing"
        await h.recover(pid, provocation)
        done = await h.until(sent["id"], case.progress[-1])
        assert (done["providerId"], done["attempts"]) == (pid, 1)


async def test_refused_credentials_fail_the_provider_and_the_message_waits(
    case: KindCase, env: Env
) -> None:
    async with (
        case.provoke("credentials_refused") as refused,
        case.provoke("success") as working,
        harness(env.settings(), env) as h,
    ):
        bad = await h.add(refused)
        sent = await h.send(refused)

        async def failing() -> bool:
            return bool((await provider(h.client, h.token, bad))["health"] == "failing")

        await eventually(failing, "the provider is marked failing")
        shown = await provider(h.client, h.token, bad)
        assert shown["lastError"]["code"] == "credentials_refused"
        assert shown["lastError"]["message"]
        waiting = await between_attempts(h.app, sent["id"])
        assert (waiting.status, waiting.attempts) == ("queued", 0)
        # Another provider of the channel: the waiting message goes on through it.
        good = await h.add(working, priority=2)
        done = await h.until(sent["id"], case.progress[-1])
        assert (done["providerId"], done["attempts"]) == (good, 1)
        assert (await provider(h.client, h.token, bad))["health"] == "failing"


async def test_the_send_deadline_ends_an_attempt_that_gets_no_answer(
    case: KindCase, env: Env
) -> None:
    # Attempts to spare: the message must still be waiting when the network recovers.
    patient = env.settings(delivery={"max_attempts": 20, "send_timeout_seconds": 0.5})
    async with case.provoke("black_hole") as provocation, harness(patient, env) as h:
        pid = await h.add(provocation)
        sent = await h.send(provocation)

        async def timed_out() -> bool:
            return (pid, "provider_timeout") in await h.retry_codes(sent["id"])

        await eventually(timed_out, "an attempt ended at the send deadline")
        assert (await h.read(sent["id"]))["status"] == "queued"
        await h.recover(pid, provocation)
        done = await h.until(sent["id"], case.progress[-1])
        assert done["providerId"] == pid and done["attempts"] >= 2


# -- receipts -------------------------------------------------------------------------


async def _accepted(h: Harness, provocation: Provocation) -> tuple[str, dict[str, Any]]:
    pid = await h.add(provocation)
    sent = await h.send(provocation, wait=True)
    assert sent["status"] == "sent", sent
    return pid, sent


async def test_receipts_duplicated_and_out_of_order(case: KindCase, env: Env) -> None:
    async with case.provoke("quiet") as provocation, harness(env.quiet(), env) as h:
        pid, sent = await _accepted(h, provocation)
        external = sent["providerMessageId"]
        last = case.progress[-1]
        # The last report first, then every earlier one, each twice under its own
        # key and once more under the same key (stored once).
        assert await h.report(pid, external, last, "k-last") == 1
        assert await h.report(pid, external, last, "k-last") == 0
        await h.until(sent["id"], last)
        for index, status in enumerate((Status.SENT, *case.progress[:-1], last)):
            await h.report(pid, external, status, f"k-{index}-a")
            await h.report(pid, external, status, f"k-{index}-b")

        async def all_applied() -> bool:
            rows = await h.inbox_rows(pid)
            return all(row.state == "done" for row in rows if row.dedupe_key.startswith("k-"))

        await eventually(all_applied, "every report applied")
        done = await h.read(sent["id"])
        assert done["status"] == last.value
        assert applied(done) == ["queued", "sent", last.value]
        statuses = [event["status"] for event in done["events"]]
        assert statuses.count(last.value) == 1, statuses


async def test_a_receipt_that_comes_before_the_submission_is_recorded_waits(
    case: KindCase, env: Env
) -> None:
    # The early receipt must still be waiting when its id is recorded: on a loaded
    # machine that takes longer than the suite's short unmatched wait (0.3 s), after
    # which it would rightly be kept as unmatched.
    patient = env.quiet(providers={"unmatched_wait_seconds": 60.0})
    async with case.provoke("quiet") as provocation, harness(patient, env) as h:
        pid, sent = await _accepted(h, provocation)
        # Another id of the same message (the second part of a long SMS, say), whose
        # receipt arrives before the submission that gave that id is recorded.
        second = f"{sent['providerMessageId']}-2"
        await h.report(pid, second, case.progress[0], "early")

        async def tried_and_waiting() -> bool:
            rows = [r for r in await h.inbox_rows(pid) if r.dedupe_key == "early"]
            return rows[0].attempts >= 1 and rows[0].state == "pending"

        await eventually(tried_and_waiting, "the early receipt was tried and kept waiting")
        assert (await h.read(sent["id"]))["status"] == "sent"
        # The submission is recorded (as a verdict writes its ids): the receipt applies.
        async with h.app.state.ctx.sessions() as session:
            session.add(
                ProviderRefRow(
                    provider_id=pid,
                    external_id=second,
                    message_id=sent["id"],
                    part=2,
                    created_at=datetime.now(UTC),
                )
            )
            await session.commit()

        async def early_applied() -> bool:
            rows = [r for r in await h.inbox_rows(pid) if r.dedupe_key == "early"]
            return rows[0].state == "done"

        await eventually(early_applied, "the early receipt applied once its id is known")
        # A message in parts is delivered when every part is: the first part's receipt
        # too (for kinds whose ids are not parts, a repeat the status machine drops).
        await h.report(pid, str(sent["providerMessageId"]), case.progress[0], "first")
        done = await h.until(sent["id"], case.progress[0])
        assert applied(done)[-1] == case.progress[0].value


async def test_a_receipt_naming_no_message_is_listed_as_unmatched(case: KindCase, env: Env) -> None:
    async with case.provoke("quiet") as provocation, harness(env.quiet(), env) as h:
        pid, sent = await _accepted(h, provocation)
        other = await h.add(provocation, priority=2)
        unknown = f"unknown-{secrets.token_hex(4)}"
        await h.report(pid, unknown, case.progress[0], "stray")
        # Correlation is by provider and id: the message's own id, reported by another
        # provider, names nothing.
        await h.report(other, sent["providerMessageId"], case.progress[0], "elsewhere")

        async def listed(provider_id: str) -> list[dict[str, Any]]:
            answer = await h.client.get(
                f"/api/v4/providers/{provider_id}/unmatched", headers=bearer(h.token)
            )
            assert answer.status_code == 200, answer.text
            return list(answer.json()["data"])

        async def unmatched() -> bool:
            return bool(await listed(pid)) and bool(await listed(other))

        await eventually(unmatched, "the stray reports are listed after unmatched_wait_seconds")
        [stray] = await listed(pid)
        assert stray["state"] == "unmatched" and stray["attempts"] >= 1
        assert stray["error"] and stray["receivedAt"]
        assert stray["payload"] == h.payloads["stray"]
        [elsewhere] = await listed(other)
        assert elsewhere["payload"] == h.payloads["elsewhere"]
        # The message neither named is untouched.
        assert (await h.read(sent["id"]))["status"] == "sent"


# -- restart and shutdown ---------------------------------------------------------------


class ShiftedClock:
    """The system clock, ahead by a fixed amount: what was due later is due now."""

    def __init__(self, ahead: timedelta) -> None:
        self._ahead = ahead

    def now(self) -> datetime:
        return datetime.now(UTC) + self._ahead


async def test_a_restart_finishes_the_messages_in_flight(case: KindCase, env: Env) -> None:
    async with case.provoke("quiet") as provocation:
        # Accepted by a server that does not deliver (serve --no-dispatch).
        async with harness(env.quiet(dispatch=False), env) as h:
            pid = await h.add(provocation)
            token = h.token
            queued = [(await h.send(provocation))["id"] for _ in range(4)]
        # Submitted by the next, whose network's reports are stored and not yet due
        # when it stops.
        async with app_running(env.quiet()) as app, http(app) as client:
            await case.connect(app, client, pid, provocation)
            for message_id in queued:
                await wait_for(client, token, message_id, {"sent"}, base="")
            sent = [
                (await send(client, token, provocation.to, channel=case.channel))["id"]
                for _ in range(4)
            ]
            for message_id in sent:
                await wait_for(client, token, message_id, {"sent"}, base="")
        every = queued + sent
        with sqlite3.connect(env.data_dir / "tidings.db") as connection:
            marks = ",".join("?" * len(every))
            found = connection.execute(
                f"SELECT DISTINCT status FROM messages WHERE id IN ({marks})",  # noqa: S608
                every,
            ).fetchall()
        connection.close()
        assert found == [("sent",)], found
        # A new process, later: it applies what was stored, each report once.
        later = ShiftedClock(timedelta(hours=2))
        async with app_running(env.settings(), clock=later) as app, http(app) as client:
            await case.connect(app, client, pid, provocation)
            for message_id in every:
                done = await wait_for(client, token, message_id, {case.progress[-1].value}, base="")
                assert applied(done) == ["queued", "sent", *(s.value for s in case.progress)]
                assert done["attempts"] == 1 and done["providerId"] == pid


async def test_a_clean_shutdown_hands_back_what_it_was_sending(case: KindCase, env: Env) -> None:
    async with case.provoke("black_hole") as provocation:
        hanging = env.settings(delivery={"send_timeout_seconds": 30.0})
        async with harness(hanging, env) as h:
            pid = await h.add(provocation)
            token = h.token
            sent = await h.send(provocation)
            directory = h.app.state.ctx.runtime.providers

            async def submitting() -> bool:
                return bool(h.app.state.ctx.runtime.dispatcher.submissions >= 1)

            await eventually(submitting, "the submission is under way")
            choice = await directory.choose(h.user.account_id, Environment.PRODUCTION, case.channel)
            assert isinstance(choice, Choice)
        # The app stopped while the submission hung: its runtime closed the provider.
        # Closing again, the provider or the whole directory, is harmless.
        await choice.provider.close()
        await choice.provider.close()
        await directory.close()
        async with app_running(env.settings()) as app, http(app) as client:
            async with app.state.ctx.sessions() as session:
                row = await session.get(Message, sent["id"])
                assert row is not None
                # Handed back at once, its attempt too: due again, not left to its lease.
                assert (row.status, row.lease_owner, row.attempts) == ("queued", None, 0)
            await case.connect(app, client, pid, provocation)
            answer = await client.patch(
                f"/api/v4/providers/{pid}",
                json={"config": provocation.recovered or provocation.config},
                headers=bearer(token),
            )
            assert answer.status_code == 200
            done = await wait_for(client, token, sent["id"], {case.progress[-1].value}, base="")
            assert done["providerId"] == pid and done["status"] in FINAL
