"""``tidings providers ...``: the operator's path to the providers API's service.

The same :class:`~tidings.providers.service.ProviderService` as
``/api/v4/providers`` (no second path): add, list, show, update, remove, check.
Secrets never come from the command line (they would show in ``ps`` and in shell
history): ``--secrets-file`` names a JSON file of them, ``--secrets-stdin`` reads
that JSON from standard input. Answers print secrets as ``********``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError

from tidings.accounts.repository import AccountRepository
from tidings.core.clock import SystemClock
from tidings.core.environments import Environment
from tidings.core.errors import ApiError, NotFound
from tidings.db.engine import build_engine, build_sessionmaker
from tidings.db.group_commit import GroupCommitter
from tidings.providers.base import ProviderDeps
from tidings.providers.inbox import Inbox
from tidings.providers.registry import default_kinds
from tidings.providers.schemas import ProviderCreate, ProviderUpdate
from tidings.providers.service import ProviderService, TenantScope
from tidings.secrets_cli import key_ring_of
from tidings.settings import Settings

providers_app = typer.Typer(no_args_is_help=True, help="Configure production providers.")

T = TypeVar("T")

AccountArg = Annotated[str, typer.Argument(help="Account id or name.")]
ConfigOption = Annotated[
    str | None,
    typer.Option(help="The kind's settings as a JSON object, WITHOUT secrets."),
]
SecretsFile = Annotated[
    Path | None,
    typer.Option(
        "--secrets-file", help="A JSON object of the secrets (passwords, tokens), from a file."
    ),
]
SecretsStdin = Annotated[
    bool, typer.Option("--secrets-stdin", help="Read the secrets' JSON object from stdin.")
]


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=1)


def _run(work: Callable[[ProviderService, str], Awaitable[T]], account: str) -> T:
    async def run() -> T:
        settings = Settings()
        ring = key_ring_of(settings)
        engine = build_engine(settings)
        sessions = build_sessionmaker(engine)
        writer = GroupCommitter(sessions)
        clock = SystemClock()
        try:
            async with sessions() as session:
                found = await AccountRepository(session).find_account(account)
            if found is None:
                raise NotFound(f"No account has the id or unique name {account!r}.")
            service = ProviderService(
                sessions=sessions,
                writer=writer,
                kinds=default_kinds(),
                key_ring=ring,
                clock=clock,
                deps=ProviderDeps(clock=clock, writer=writer, inbox=Inbox(writer, clock)),
            )
            return await work(service, found.id)
        finally:
            await writer.close()
            await engine.dispose()

    try:
        return asyncio.run(run())
    except ApiError as error:
        details = [f"  {e.field}: {e.message}" for e in error.errors]
        raise _fail("\n".join([error.detail, *details])) from None


def _object(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        raise _fail(f"{what} is not valid JSON") from None
    if not isinstance(value, dict):
        raise _fail(f"{what} must be a JSON object")
    return value


def _secret_names() -> frozenset[str]:
    kinds = default_kinds()
    names: frozenset[str] = frozenset()
    for name in kinds.names():
        spec = kinds.get(name)
        if spec is not None:
            names |= spec.secret_fields
    return names


def _config(config: str | None, secrets_file: Path | None, secrets_stdin: bool) -> dict[str, Any]:
    merged = _object(config, "--config") if config else {}
    on_argv = sorted(set(merged) & _secret_names())
    if on_argv:
        raise _fail(
            f"{', '.join(on_argv)} is a secret: give it with --secrets-file or --secrets-stdin, "
            "not in --config (the process list and shell history show the arguments)"
        )
    if secrets_file is not None and secrets_stdin:
        raise _fail("give the secrets once: --secrets-file or --secrets-stdin")
    secrets: dict[str, Any] = {}
    if secrets_file is not None:
        try:
            secrets = _object(secrets_file.read_text(), "--secrets-file")
        except OSError as error:
            raise _fail(f"cannot read --secrets-file: {error.strerror}") from None
    elif secrets_stdin:
        secrets = _object(sys.stdin.read(), "the secrets on stdin")
    return {**merged, **secrets}


def _print(answer: Any) -> None:
    typer.echo(json.dumps(answer.model_dump(mode="json", by_alias=True), indent=2))


def _production(account_id: str) -> TenantScope:
    return TenantScope(account_id, Environment.PRODUCTION)


@providers_app.command("add")
def add(
    account: AccountArg,
    channel: Annotated[str, typer.Argument(help="whatsapp, sms or email")],
    kind: Annotated[str, typer.Argument(help="Provider kind, e.g. simulator.")],
    name: Annotated[str | None, typer.Option(help="A name to recognise it by.")] = None,
    priority: Annotated[int, typer.Option(help="Lower is tried first.")] = 1,
    config: ConfigOption = None,
    secrets_file: SecretsFile = None,
    secrets_stdin: SecretsStdin = False,
) -> None:
    """Add a production provider; prints its id."""
    try:
        body = ProviderCreate.model_validate(
            {
                "channel": channel,
                "kind": kind,
                "name": name or f"{kind} ({channel})",
                "priority": priority,
                "config": _config(config, secrets_file, secrets_stdin),
            }
        )
    except ValidationError as error:
        raise _fail(f"invalid provider: {error.errors()[0]['msg']}") from None

    async def work(service: ProviderService, account_id: str) -> str:
        row = await service.create(_production(account_id), body)
        return str(getattr(row, "id", ""))

    typer.echo(_run(work, account))


@providers_app.command("list")
def list_providers(account: AccountArg) -> None:
    """List an account's production providers: id, channel, kind, priority, health, name."""

    async def work(service: ProviderService, account_id: str) -> list[str]:
        found = await service.page(_production(account_id), after=None, limit=500)
        return [
            f"{p.id}\t{p.channel}\t{p.kind}\t{p.priority}\t"
            f"{p.health if p.enabled else 'disabled'}\t{p.name}"
            for p in found
        ]

    for line in _run(work, account):
        typer.echo(line)


@providers_app.command("show")
def show(account: AccountArg, provider_id: str) -> None:
    """Print one provider as the API answers it (secrets as ********)."""

    async def work(service: ProviderService, account_id: str) -> Any:
        return await service.get(_production(account_id), provider_id)

    _print(_run(work, account))


@providers_app.command("update")
def update(
    account: AccountArg,
    provider_id: str,
    name: Annotated[str | None, typer.Option()] = None,
    priority: Annotated[int | None, typer.Option()] = None,
    enabled: Annotated[bool | None, typer.Option("--enabled/--disabled")] = None,
    config: ConfigOption = None,
    secrets_file: SecretsFile = None,
    secrets_stdin: SecretsStdin = False,
) -> None:
    """Change a provider; secrets not given are kept."""
    given = _config(config, secrets_file, secrets_stdin)
    patch = ProviderUpdate(
        name=name,
        priority=priority,
        enabled=enabled,
        config=given if (config or secrets_file or secrets_stdin) else None,
    )

    async def work(service: ProviderService, account_id: str) -> Any:
        return await service.update(_production(account_id), provider_id, patch)

    _print(_run(work, account))


@providers_app.command("remove")
def remove(account: AccountArg, provider_id: str) -> None:
    """Remove a provider (disabled until its messages in flight are final)."""

    async def work(service: ProviderService, account_id: str) -> None:
        await service.delete(_production(account_id), provider_id)

    _run(work, account)


@providers_app.command("check")
def check(account: AccountArg, provider_id: str) -> None:
    """Connect and authenticate without sending anything; exit 1 when it fails."""

    async def work(service: ProviderService, account_id: str) -> Any:
        return await service.check(_production(account_id), provider_id)

    result = _run(work, account)
    typer.echo(f"{'ok' if result.ok else 'failing'} ({result.latency_ms} ms): {result.detail}")
    if not result.ok:
        raise typer.Exit(code=1)
