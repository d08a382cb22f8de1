"""`tidings secrets rotate` reseals the sending domains' DKIM keys (SQLite and
PostgreSQL): moved to the current key, an unopenable one counted and kept."""

from __future__ import annotations

from pathlib import Path

from cryptography.fernet import Fernet
from sqlalchemy import select

from tests.conftest import make_settings
from tests.support.databases import migrate_to_head
from tests.support.users import create_test_user
from tidings.app import create_app
from tidings.core.clock import SystemClock
from tidings.core.ids import new_id
from tidings.core.key_ring import KeyRing
from tidings.core.secrets import jwt_signing_key, secrets_key_ring
from tidings.domains.models import EmailDomain
from tidings.secrets_rotation import rotate


async def test_rotation_reseals_domain_keys(
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
    secrets = {
        "ok": {"rsa": ring_before.seal("rsa-pem"), "ed25519": ring_before.seal("seed")},
        "bad": {"rsa": ring_before.seal("rsa-2"), "ed25519": lost},
    }
    ids = {name: new_id("dom") for name in secrets}
    async with app.state.ctx.sessions() as session:
        for name, sealed in secrets.items():
            session.add(
                EmailDomain(
                    id=ids[name],
                    account_id=user.account_id,
                    environment="production",
                    domain=f"{name}.example",
                    selector="td000000",
                    rsa_public="x",
                    ed25519_public="y",
                    secrets=sealed,
                    status="pending",
                    created_at=now,
                    updated_at=now,
                )
            )
        await session.commit()
    await app.state.ctx.engine.dispose()

    after = make_settings(data_dir, database_url, secrets_keys=f"{new},{old}", dispatch=False)
    ring = secrets_key_ring(after, jwt_signing_key(after))
    report = {r.what: r for r in await rotate(after, ring)}["sending domain keys"]
    assert (report.resealed, report.current) == (3, 0)
    assert report.unavailable == [
        f"{ids['bad']} (ed25519): it was sealed with key 'k0', which is not in TIDINGS_SECRETS_KEYS"
    ]
    again = {r.what: r for r in await rotate(after, ring)}["sending domain keys"]
    assert (again.resealed, again.current, len(again.unavailable)) == (0, 3, 1)

    only_new = KeyRing([("k2", new.split(":", 1)[1])], legacy=None)
    app = create_app(after)
    async with app.state.ctx.sessions() as session:
        stored = {row.id: row for row in await session.scalars(select(EmailDomain))}
    await app.state.ctx.engine.dispose()
    ok, bad = stored[ids["ok"]], stored[ids["bad"]]
    assert {k: only_new.open(v) for k, v in ok.secrets.items()} == {
        "rsa": "rsa-pem",
        "ed25519": "seed",
    }
    assert bad.secrets["ed25519"] == lost and only_new.open(bad.secrets["rsa"]) == "rsa-2"
    assert ok.updated_at == now
