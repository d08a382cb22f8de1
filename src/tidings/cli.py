"""The ``tidings`` command line: serve, worker, migrate, accounts, users, credits,
providers, secrets, version.

Every command is scriptable: no prompts, results on stdout (ids alone where a
script wants to capture them), problems on stderr with a non-zero exit code.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
import uvicorn
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from uvicorn.supervisors import Multiprocess

from tidings import __version__
from tidings.accounts import service as accounts_service
from tidings.accounts.repository import AccountRepository
from tidings.core.clock import SystemClock
from tidings.core.errors import ApiError, NotFound
from tidings.credits.repository import CreditRepository
from tidings.db import migrate as migrations
from tidings.db.engine import build_engine, build_sessionmaker
from tidings.delivery_process import DeliveryProcess
from tidings.demo import DemoCredentials, demo_environment, ensure_demo_credentials
from tidings.http.reuse_port import REUSE_PORT, reuse_port_socket
from tidings.http.server_protocol import IMPORT_PATH as SERVER_PROTOCOL
from tidings.http.shared_metrics import share_between_processes
from tidings.http.tls import uvicorn_tls_options
from tidings.logging_setup import configure_logging
from tidings.providers_cli import providers_app
from tidings.secrets_cli import checked_settings, secrets_app
from tidings.serve_banner import base_urls, port_problem
from tidings.settings import Settings
from tidings.settings_errors import describe, is_settings_error

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Tidings messaging API.")
accounts_app = typer.Typer(no_args_is_help=True, help="Manage accounts.")
users_app = typer.Typer(no_args_is_help=True, help="Manage users.")
credits_app = typer.Typer(no_args_is_help=True, help="Manage credits (production).")
app.add_typer(accounts_app, name="accounts")
app.add_typer(users_app, name="users")
app.add_typer(credits_app, name="credits")
app.add_typer(providers_app, name="providers")
app.add_typer(secrets_app, name="secrets")

T = TypeVar("T")


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=1)


def _with_session(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    async def run() -> T:
        settings = Settings()
        engine = build_engine(settings)
        try:
            async with build_sessionmaker(engine)() as session:
                result = await work(session)
                await session.commit()
                return result
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except ApiError as error:
        raise _fail(error.detail) from None


async def _migrate(settings: Settings) -> None:
    engine = build_engine(settings)
    try:
        await migrations.upgrade(engine)
    finally:
        await engine.dispose()


@app.command()
def migrate() -> None:
    """Apply the database migrations (safe to run again)."""
    asyncio.run(_migrate(Settings()))
    typer.echo(f"database at revision {migrations.head_revision()}")


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


@accounts_app.command("create")
def accounts_create(name: str) -> None:
    """Create an account; prints its id alone."""

    async def work(session: AsyncSession) -> str:
        account = await accounts_service.create_account(
            AccountRepository(session), SystemClock(), name
        )
        return account.id

    typer.echo(_with_session(work))


@accounts_app.command("list")
def accounts_list() -> None:
    """List accounts: id, users, name (tab-separated)."""

    async def work(session: AsyncSession) -> list[str]:
        repo = AccountRepository(session)
        lines = []
        for account in await repo.list_accounts():
            users = await repo.count_users(account.id)
            lines.append(f"{account.id}\t{users}\t{account.name}")
        return lines

    for line in _with_session(work):
        typer.echo(line)


@accounts_app.command("set-country")
def accounts_set_country(
    account: Annotated[str, typer.Argument(help="Account id or unique name.")],
    country: Annotated[
        str, typer.Argument(help="ISO 3166 code (US, GB, IT...), or 'none' to clear.")
    ],
) -> None:
    """Read the account's phone numbers written without + or 00 as national numbers of
    this country (else the deployment's TIDINGS_PHONE_DEFAULT_COUNTRY). Takes effect in
    every process within 30 s."""
    chosen = None if country.strip().lower() == "none" else country

    async def work(session: AsyncSession) -> str:
        repo = AccountRepository(session)
        found = await accounts_service.set_phone_country(repo, account, chosen)
        return f"{found.id}\t{found.phone_default_country or 'none'}"

    typer.echo(_with_session(work))


@users_app.command("create")
def users_create(
    account: Annotated[str, typer.Option(help="Account id (or its unique name).")],
    username: Annotated[str, typer.Option(help="Login name, often an email address.")],
    password: Annotated[
        str | None, typer.Option(help="Password (visible in the process list: prefer stdin).")
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Create a user in an account; prints the user id alone."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise _fail("give a password with --password-stdin (or --password)")
    secret = password

    async def work(session: AsyncSession) -> str:
        user = await accounts_service.create_user(
            AccountRepository(session),
            SystemClock(),
            account=account,
            username=username,
            password=secret,
        )
        return user.id

    typer.echo(_with_session(work))


def _read_password(password: str | None, password_stdin: bool) -> str:
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise _fail("give a password with --password-stdin (or --password)")
    return password


@users_app.command("list")
def users_list(
    account: Annotated[
        str | None, typer.Option(help="Only this account's users (id or unique name).")
    ] = None,
) -> None:
    """List users: id, account id, status (active/disabled), username (tab-separated)."""

    async def work(session: AsyncSession) -> list[str]:
        repo = AccountRepository(session)
        account_id = await _account_id(session, account) if account is not None else None
        return [
            f"{user.id}\t{user.account_id}\t{'disabled' if user.disabled else 'active'}"
            f"\t{user.username}"
            for user in await repo.list_users(account_id)
        ]

    for line in _with_session(work):
        typer.echo(line)


UserArgument = Annotated[str, typer.Argument(help="The user's id or username.")]


@users_app.command("disable")
def users_disable(user: UserArgument) -> None:
    """Disable a user: it cannot log in and its tokens stop working."""

    async def work(session: AsyncSession) -> str:
        return (await accounts_service.set_disabled(AccountRepository(session), user, True)).id

    typer.echo(_with_session(work))


@users_app.command("enable")
def users_enable(user: UserArgument) -> None:
    """Enable a disabled user again."""

    async def work(session: AsyncSession) -> str:
        return (await accounts_service.set_disabled(AccountRepository(session), user, False)).id

    typer.echo(_with_session(work))


@users_app.command("delete")
def users_delete(user: UserArgument) -> None:
    """Delete a user (its account and the account's data stay)."""

    async def work(session: AsyncSession) -> str:
        return (await accounts_service.delete_user(AccountRepository(session), user)).id

    typer.echo(_with_session(work))


@users_app.command("reset-password")
def users_reset_password(
    user: UserArgument,
    password: Annotated[
        str | None, typer.Option(help="Password (visible in the process list: prefer stdin).")
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Set a user's password; tokens already issued stay valid until they expire
    (disable the user to stop them at once)."""
    secret = _read_password(password, password_stdin)

    async def work(session: AsyncSession) -> str:
        repo = AccountRepository(session)
        return (await accounts_service.reset_password(repo, user, secret)).id

    typer.echo(_with_session(work))


async def _account_id(session: AsyncSession, account: str) -> str:
    found = await AccountRepository(session).find_account(account)
    if found is None:
        raise NotFound(f"No account has the id or unique name {account!r}.")
    return found.id


@credits_app.command("add")
def credits_add(account: str, amount: str) -> None:
    """Add credits to an account (negative to take some away); prints the new balance."""
    try:
        value = Decimal(amount)
    except InvalidOperation:
        raise _fail(f"{amount!r} is not a number") from None

    async def work(session: AsyncSession) -> Decimal:
        account_id = await _account_id(session, account)
        credits = CreditRepository(session)
        await credits.add(account_id, value, reason="top-up", at=SystemClock().now())
        return await credits.balance(account_id)

    typer.echo(str(_with_session(work)))


@credits_app.command("balance")
def credits_balance(account: str) -> None:
    """Print an account's credit balance."""

    async def work(session: AsyncSession) -> Decimal:
        return await CreditRepository(session).balance(await _account_id(session, account))

    typer.echo(str(_with_session(work)))


def _print_banner(
    host: str, port: int, tls: bool, demo: DemoCredentials | None, notes: list[str]
) -> None:
    urls = base_urls(host, port, tls=tls)
    base = urls.local
    lines = [
        "Tidings is starting.",
        f"  Production base URL: {base}",
        f"  Sandbox base URL:    {base}/sandbox",
        f"  API docs:            {base}/docs",
    ]
    if urls.remote is not None:
        lines.append(f"  From other machines: {urls.remote}")
        if not tls:
            lines.append(
                "    (plain HTTP: only /healthz, /readyz and /metrics answer there; serve "
                "HTTPS with --tls-cert/--tls-key or behind a proxy in TIDINGS_TRUSTED_PROXIES)"
            )
    if demo is not None:
        lines += [
            "",
            "Sandbox demo login (a convenience of `make run`; never use it in production):",
            f"  username: {demo.username}",
            f"  password: {demo.password}",
            "",
            "Get a token:",
            f"  curl -s {base}/sandbox/api/v4/auth/token \\",
            "    -H 'Content-Type: application/json' \\",
            f'    -d \'{{"username":"{demo.username}","password":"{demo.password}"}}\'',
        ]
    if notes:
        lines += ["", *notes]
    typer.echo("\n".join(lines), err=True)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    tls_cert: Annotated[Path | None, typer.Option(help="TLS certificate chain (PEM).")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="TLS private key (PEM).")] = None,
    demo: Annotated[
        bool, typer.Option(help="Create (once) and print a sandbox demo login.")
    ] = False,
    dispatch: Annotated[
        bool,
        typer.Option(
            "--dispatch/--no-dispatch",
            help="Deliver messages in this process too (the embedded mode), or serve only.",
        ),
    ] = True,
    delivery_process: Annotated[
        bool,
        typer.Option(
            "--delivery-process",
            help="Embedded mode: deliver in a process of its own beside the API (two cores).",
        ),
    ] = False,
) -> None:
    """Serve the HTTP API (and, in the embedded mode, run the dispatchers)."""
    if delivery_process and not dispatch:
        raise _fail("--delivery-process delivers beside the API; --no-dispatch does not deliver.")
    if delivery_process:
        os.environ["TIDINGS_DELIVERY_PROCESS"] = "true"
    os.environ["TIDINGS_SERVE_WORKERS"] = str(workers)
    if not dispatch:
        os.environ["TIDINGS_DISPATCH"] = "false"
    if tls_cert is not None:
        os.environ["TIDINGS_TLS_CERT_FILE"] = str(tls_cert)
    if tls_key is not None:
        os.environ["TIDINGS_TLS_KEY_FILE"] = str(tls_key)
    notes = demo_environment(os.environ) if demo else []
    settings = checked_settings(Settings(), demo=demo)
    configure_logging(settings.log_format, settings.log_level)
    try:
        tls_options = uvicorn_tls_options(settings.tls_cert_file, settings.tls_key_file)
    except ValueError as error:
        raise _fail(str(error)) from None
    if workers > 1 or (settings.delivery_process and settings.dispatch):
        # Before any of them starts (or this process imports prometheus_client): one
        # scrape then shows every process's counts.
        share_between_processes(settings.data_dir, os.environ)
    if settings.is_sqlite:
        # The embedded mode migrates on start; the scale-out mode runs `tidings migrate`
        # once per release, so that many processes never race on the schema.
        asyncio.run(_migrate(settings))
    problem = port_problem(host, port)
    if problem is not None:
        raise _fail(problem)
    credentials = asyncio.run(ensure_demo_credentials(settings)) if demo else None
    _print_banner(host, port, bool(tls_options), credentials, notes)
    delivery: DeliveryProcess | None = None
    if settings.delivery_process and settings.dispatch:
        if not settings.is_sqlite:
            raise _fail(
                "TIDINGS_DELIVERY_PROCESS is for the embedded mode (SQLite); on PostgreSQL "
                "run `tidings serve --no-dispatch` and `tidings worker` instead."
            )
        delivery = DeliveryProcess(dict(os.environ), settings.delivery.shutdown_grace_seconds)
        delivery.start()
        # This process (and uvicorn's workers) only serve.
        os.environ["TIDINGS_DISPATCH"] = "false"
        # uvicorn ends by raising the signal that stopped it again, with the handler
        # found at its start: SIGTERM's default would end this process before the
        # delivery process is stopped (it would stop by itself, a second later).
        signal.signal(signal.SIGTERM, _stop_serving)
    try:
        _serve(host, port, workers, tls_options)
    except _Stopped:
        pass
    finally:
        if delivery is not None:
            delivery.stop()


class _Stopped(Exception):
    """SIGTERM, once uvicorn has shut down."""


def _stop_serving(_signum: int, _frame: object) -> None:
    raise _Stopped


def _serve(host: str, port: int, workers: int, tls_options: dict[str, Any]) -> None:
    options: dict[str, Any] = dict(
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=False,
        server_header=False,
        log_config=None,
        # httptools with header size limits and read timeouts (TIDINGS_SERVER__*).
        http=SERVER_PROTOCOL,
        **tls_options,
    )
    if workers == 1 or not REUSE_PORT:
        uvicorn.run("tidings.app:app_from_environment", **options)
        return
    # uvicorn's supervisor, each worker on a listening socket of its own (see
    # http/reuse_port.py): the kernel spreads connections evenly over the workers.
    config = uvicorn.Config("tidings.app:app_from_environment", **options)
    with contextlib.suppress(KeyboardInterrupt):
        Multiprocess(config, sockets=[reuse_port_socket(host, port)]).run()


@app.command()
def worker() -> None:
    """Deliver messages without serving HTTP (the scale-out mode, on PostgreSQL)."""
    settings = checked_settings(Settings())
    configure_logging(settings.log_format, settings.log_level)
    from tidings.app import GC_THRESHOLDS
    from tidings.worker import run_worker

    # The serving process's collector thresholds (see app_from_environment): the
    # delivery side makes and drops as many small objects per message.
    gc.set_threshold(*GC_THRESHOLDS)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_worker(settings))


def main() -> None:
    try:
        app()
    except ValidationError as error:
        if not is_settings_error(error):
            raise
        # Settings are read inside each command; their mistakes are the operator's.
        typer.echo("error: the configuration is not valid:", err=True)
        for sentence in describe(error):
            typer.echo(f"  {sentence}", err=True)
        raise SystemExit(2) from None
