"""`tidings secrets new-key` and `tidings secrets rotate` as an operator runs them, and
the refusal to start without a key ring (only the demo makes its own). Nothing these
commands print holds a secret, except the key `new-key` exists to print."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
from cryptography.fernet import Fernet
from sqlalchemy import select

from tests.conftest import make_settings
from tests.support.databases import migrate_to_head
from tests.support.processes import TIDINGS, cli_env, free_port, run_cli, stop, wait_ready
from tests.support.users import bearer, create_test_user, login
from tidings.app import create_app
from tidings.core.key_ring import KeyRing, derived_legacy_key, parse_entries
from tidings.core.secrets import jwt_signing_key
from tidings.idempotency.models import IdempotencyKey
from tidings.webhooks.models import WebhookEndpoint

CREATE = "/sandbox/api/v4/webhooks/create"


def test_new_key_prints_one_entry_for_the_setting(tmp_path: Path) -> None:
    made = run_cli(["secrets", "new-key", "--id", "2027a"], cli_env(tmp_path))
    assert made.returncode == 0 and made.stderr == ""
    [(key_id, key)] = parse_entries(made.stdout.strip())
    assert key_id == "2027a" and Fernet(key)
    other = run_cli(["secrets", "new-key"], cli_env(tmp_path)).stdout.strip()
    assert other.startswith("k") and other.split(":")[1] != key
    bad = run_cli(["secrets", "new-key", "--id", "a:b"], cli_env(tmp_path))
    assert bad.returncode == 1 and "key id" in bad.stderr


def test_serve_refuses_without_a_key_ring_and_the_demo_makes_its_own(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "data")
    del env["TIDINGS_SECRETS_KEYS"]
    refused = run_cli(["serve", "--port", str(free_port())], env)
    assert refused.returncode == 1
    assert "TIDINGS_SECRETS_KEYS is not set" in refused.stderr
    assert "tidings secrets new-key" in refused.stderr
    assert run_cli(["worker"], env).returncode == 1
    unusable = run_cli(["serve"], {**env, "TIDINGS_SECRETS_KEYS": "k1:not-a-key"})
    assert unusable.returncode == 1 and "'k1' is not a Fernet key" in unusable.stderr
    assert "not-a-key" not in unusable.stderr

    port = free_port()
    with (tmp_path / "serve.log").open("w") as log:
        process = subprocess.Popen(
            [*TIDINGS, "serve", "--demo", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        wait_ready(f"http://127.0.0.1:{port}", process)
    finally:
        stop(process)
    kept = tmp_path / "data" / "secrets-keys"
    assert kept.stat().st_mode & 0o777 == 0o600
    assert kept.read_text().split(":")[1].strip() not in (tmp_path / "serve.log").read_text()


async def test_rotate_reseals_everything_and_reports_what_it_cannot_open(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    old, new = f"k1:{Fernet.generate_key().decode()}", f"k2:{Fernet.generate_key().decode()}"
    database = (f"sqlite+aiosqlite:///{data / 'tidings.db'}", None)
    settings = make_settings(
        data,
        database,
        secrets_keys=old,
        dispatch=False,
        webhooks={"allow_private_in_sandbox": True},
    )
    app = create_app(settings)
    await migrate_to_head(app)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
            token = await login(c, await create_test_user(app))
            url = {"url": "http://127.0.0.1:9/hook"}
            kept = await c.post(CREATE, json=url, headers={**bearer(token), "Idempotency-Key": "a"})
            made = await c.post(CREATE, json=url, headers=bearer(token))
            assert made.status_code == 201, made.text
            rotated = made.json()
            rotated = (
                await c.post(
                    f"/sandbox/api/v4/webhooks/{rotated['id']}/rotate-secret",
                    headers=bearer(token),
                )
            ).json()
            legacy = (await c.post(CREATE, json=url, headers=bearer(token))).json()
            lost = (await c.post(CREATE, json=url, headers=bearer(token))).json()
    # A row from before key ids (enc:v1, the JWT-derived key) and one sealed with a
    # key nobody has any more.
    v1_key = derived_legacy_key(jwt_signing_key(settings))
    v1_value = "enc:v1:" + Fernet(v1_key).encrypt(legacy["secret"].encode()).decode()
    lost_value = KeyRing([("k0", Fernet.generate_key())], legacy=None).seal(lost["secret"])
    async with app.state.ctx.sessions() as session:
        for endpoint_id, value in ((legacy["id"], v1_value), (lost["id"], lost_value)):
            row = await session.get(WebhookEndpoint, endpoint_id)
            assert row is not None
            row.secret = value
        await session.commit()
    await app.state.ctx.engine.dispose()

    env = cli_env(data, TIDINGS_SECRETS_KEYS=f"{new},{old}")
    first = run_cli(["secrets", "rotate"], env)
    assert first.returncode == 1  # something could not be opened: say so to scripts
    assert "sealing key: k2" in first.stdout
    # kept + rotated (current and previous) + legacy; the lost one is left as it is.
    assert "webhook endpoint secrets: 4 resealed, 0 already current, 1 cannot be opened" in (
        first.stdout
    )
    assert "webhook secrets in stored create answers: 1 resealed" in first.stdout
    assert lost["id"] in first.stderr and "'k0'" in first.stderr
    secrets = [kept.json()["secret"], rotated["secret"], legacy["secret"], lost["secret"]]
    for output in (first.stdout, first.stderr):
        assert not any(s in output for s in secrets)
        assert old.split(":")[1] not in output and new.split(":")[1] not in output

    # Only the new key is needed now: the old one and the legacy key can go.
    ring = KeyRing([("k2", new.split(":", 1)[1])], legacy=None)
    app = create_app(settings)
    async with app.state.ctx.sessions() as session:
        rows = {row.id: row for row in await session.scalars(select(WebhookEndpoint))}
        answer = await session.scalar(select(IdempotencyKey.response_body))
    await app.state.ctx.engine.dispose()
    assert rows[lost["id"]].secret == lost_value  # never destroyed
    assert ring.open(rows[kept.json()["id"]].secret) == kept.json()["secret"]
    assert ring.open(rows[rotated["id"]].secret) == rotated["secret"]
    assert ring.open(str(rows[rotated["id"]].previous_secret)).startswith("whsec_")
    assert ring.open(rows[legacy["id"]].secret) == legacy["secret"]
    assert answer is not None and ring.open(answer["secret"]) == kept.json()["secret"]

    again = run_cli(["secrets", "rotate"], env)
    assert "webhook endpoint secrets: 0 resealed, 4 already current, 1 cannot be opened" in (
        again.stdout
    )
    assert "stored create answers: 0 resealed, 1 already current" in again.stdout
