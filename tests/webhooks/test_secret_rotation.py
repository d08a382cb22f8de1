"""`tidings secrets rotate`'s resealers on both databases (webhook secrets, provider
credentials): every sealed value moves to the current key, a second run finds nothing
to do, a value that cannot be opened is counted and kept."""

from __future__ import annotations

from pathlib import Path

import httpx
from cryptography.fernet import Fernet
from sqlalchemy import select

from tests.conftest import make_settings
from tests.support.databases import migrate_to_head
from tests.support.users import bearer, create_test_user, login
from tidings.app import create_app
from tidings.core.clock import SystemClock
from tidings.core.ids import new_id
from tidings.core.key_ring import KeyRing
from tidings.core.secrets import jwt_signing_key, secrets_key_ring
from tidings.providers.models import ProviderRow
from tidings.secrets_rotation import rotate
from tidings.webhooks.models import WebhookEndpoint

SBX = "/sandbox/api/v4/webhooks"


async def test_rotation_moves_every_secret_to_the_current_key(
    data_dir: Path, database_url: tuple[str, str | None]
) -> None:
    old, new = f"k1:{Fernet.generate_key().decode()}", f"k2:{Fernet.generate_key().decode()}"
    common = {"dispatch": False, "webhooks": {"allow_private_in_sandbox": True}}
    before = make_settings(data_dir, database_url, secrets_keys=old, **common)
    app = create_app(before)
    await migrate_to_head(app)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
            token = await login(c, await create_test_user(app))
            url = {"url": "http://127.0.0.1:9/hook"}
            plain = (await c.post(f"{SBX}/create", json=url, headers=bearer(token))).json()
            twice = (await c.post(f"{SBX}/create", json=url, headers=bearer(token))).json()
            twice = (
                await c.post(f"{SBX}/{twice['id']}/rotate-secret", headers=bearer(token))
            ).json()

    after = make_settings(data_dir, database_url, secrets_keys=f"{new},{old}", **common)
    ring = secrets_key_ring(after, jwt_signing_key(after))
    first = {report.what: report for report in await rotate(after, ring)}
    endpoints = first["webhook endpoint secrets"]
    assert (endpoints.resealed, endpoints.current, endpoints.unavailable) == (3, 0, [])
    second = {report.what: report for report in await rotate(after, ring)}
    assert second["webhook endpoint secrets"].resealed == 0
    assert second["webhook endpoint secrets"].current == 3

    only_new = KeyRing([("k2", new.split(":", 1)[1])], legacy=None)
    app = create_app(after)
    async with app.state.ctx.sessions() as session:
        rows = {row.id: row for row in await session.scalars(select(WebhookEndpoint))}
    await app.state.ctx.engine.dispose()
    assert only_new.open(rows[plain["id"]].secret) == plain["secret"]
    assert rows[plain["id"]].previous_secret is None
    assert only_new.open(rows[twice["id"]].secret) == twice["secret"]
    assert only_new.open(str(rows[twice["id"]].previous_secret)).startswith("whsec_")


async def test_rotation_reseals_provider_credentials(
    data_dir: Path, database_url: tuple[str, str | None]
) -> None:
    old, new = f"k1:{Fernet.generate_key().decode()}", f"k2:{Fernet.generate_key().decode()}"
    before = make_settings(data_dir, database_url, secrets_keys=old, dispatch=False)
    app = create_app(before)
    await migrate_to_head(app)
    user = await create_test_user(app)
    ring_before = app.state.ctx.key_ring
    lost = KeyRing([("k0", Fernet.generate_key())], legacy=None).seal("gone")
    now = SystemClock().now()
    rows = {
        "ok": {"apiKey": ring_before.seal("key-1"), "password": ring_before.seal("pw-1")},
        "bad": {"apiKey": ring_before.seal("key-2"), "password": lost},
        "none": {},
    }
    ids = {name: new_id("prv") for name in rows}
    async with app.state.ctx.sessions() as session:
        for name, secrets in rows.items():
            session.add(
                ProviderRow(
                    id=ids[name],
                    account_id=user.account_id,
                    environment="production",
                    channel="sms",
                    kind="simulator",
                    name=name,
                    priority=1,
                    enabled=True,
                    config={},
                    secrets=secrets,
                    health="unknown",
                    created_at=now,
                    updated_at=now,
                )
            )
        await session.commit()
    await app.state.ctx.engine.dispose()

    after = make_settings(data_dir, database_url, secrets_keys=f"{new},{old}", dispatch=False)
    ring = secrets_key_ring(after, jwt_signing_key(after))
    report = {r.what: r for r in await rotate(after, ring)}["provider secrets"]
    assert (report.resealed, report.current) == (3, 0)
    assert report.unavailable == [
        f"{ids['bad']} (password): it was sealed with key 'k0', "
        "which is not in TIDINGS_SECRETS_KEYS"
    ]
    again = {r.what: r for r in await rotate(after, ring)}["provider secrets"]
    assert (again.resealed, again.current, len(again.unavailable)) == (0, 3, 1)

    only_new = KeyRing([("k2", new.split(":", 1)[1])], legacy=None)
    app = create_app(after)
    async with app.state.ctx.sessions() as session:
        stored = {row.id: row for row in await session.scalars(select(ProviderRow))}
    await app.state.ctx.engine.dispose()
    ok, bad = stored[ids["ok"]], stored[ids["bad"]]
    assert {k: only_new.open(v) for k, v in ok.secrets.items()} == {
        "apiKey": "key-1",
        "password": "pw-1",
    }
    assert only_new.open(bad.secrets["apiKey"]) == "key-2" and bad.secrets["password"] == lost
    assert ok.updated_at == now  # nothing a live provider was built from changed
