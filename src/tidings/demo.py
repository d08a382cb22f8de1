"""The demo login that ``make run`` prints: a convenience for trying the sandbox.

On an empty database it creates an account "Demo" and a user with a random
password, and keeps the credentials in ``<data dir>/demo-credentials.json``
(owner-only) so later runs print them again. It is only used by ``tidings serve
--demo``; production deployments create their accounts with the command line.

The demo also lets sandbox webhooks reach this machine and its network (a receiver
on localhost is how one tries them), which deployments leave off; the banner says so.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import MutableMapping
from dataclasses import asdict, dataclass

from tidings.accounts import service
from tidings.accounts.repository import AccountRepository
from tidings.core.clock import SystemClock
from tidings.db.engine import build_engine, build_sessionmaker
from tidings.settings import Settings

DEMO_USERNAME = "demo@tidings.local"
CREDENTIALS_FILE = "demo-credentials.json"
PRIVATE_WEBHOOKS = "TIDINGS_WEBHOOKS__ALLOW_PRIVATE_IN_SANDBOX"


@dataclass(frozen=True)
class DemoCredentials:
    username: str
    password: str
    account_id: str


async def ensure_demo_credentials(settings: Settings) -> DemoCredentials | None:
    path = settings.data_dir / CREDENTIALS_FILE
    if path.exists():
        return DemoCredentials(**json.loads(path.read_text()))
    engine = build_engine(settings)
    try:
        async with build_sessionmaker(engine)() as session:
            repo = AccountRepository(session)
            if await repo.count_accounts() > 0:
                return None
            clock = SystemClock()
            account = await service.create_account(repo, clock, "Demo")
            await session.commit()
            password = secrets.token_urlsafe(12)
            await service.create_user(
                repo, clock, account=account.id, username=DEMO_USERNAME, password=password
            )
            await session.commit()
    finally:
        await engine.dispose()
    credentials = DemoCredentials(DEMO_USERNAME, password, account.id)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(asdict(credentials), handle)
    return credentials


def demo_environment(environ: MutableMapping[str, str]) -> list[str]:
    """Turn on what the demo needs, through the environment (uvicorn's worker
    processes read their settings from it), unless the operator chose otherwise;
    the banner lines that say what was turned on."""
    if PRIVATE_WEBHOOKS in environ:
        return []
    environ[PRIVATE_WEBHOOKS] = "true"
    return [
        "Sandbox webhooks may reach loopback and private addresses in this demo",
        f"  (their answers are not kept in the deliveries log; {PRIVATE_WEBHOOKS}=false"
        " turns it off).",
    ]
