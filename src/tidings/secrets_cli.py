"""``tidings secrets ...`` (new-key, rotate), and the key ring check every serving
process makes before it starts.

Key material goes to stdout only from ``new-key``, which exists to print one;
``rotate`` prints counts and row ids, never a value.
"""

from __future__ import annotations

import asyncio
import os
from typing import Annotated

import typer

from tidings.core.key_ring import KeyRing, new_key_entry
from tidings.core.secrets import demo_secrets_keys, jwt_signing_key, secrets_key_ring
from tidings.secrets_rotation import rotate
from tidings.settings import Settings

secrets_app = typer.Typer(no_args_is_help=True, help="Keys that seal secrets at rest.")


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=1)


def key_ring_of(settings: Settings) -> KeyRing:
    try:
        return secrets_key_ring(settings, jwt_signing_key(settings))
    except ValueError as error:
        raise _fail(str(error)) from None


def checked_settings(settings: Settings, *, demo: bool = False) -> Settings:
    """Settings whose key ring loads, or a clear refusal. The demo (``serve --demo``)
    makes its key ring once in the data directory and hands it to the processes
    uvicorn starts through the environment, as a deployment would."""
    if demo and settings.secrets_keys is None:
        os.environ["TIDINGS_SECRETS_KEYS"] = demo_secrets_keys(settings)
        settings = Settings()
    key_ring_of(settings)
    return settings


@secrets_app.command("new-key")
def new_key(
    key_id: Annotated[
        str | None, typer.Option("--id", help="The key id (default: k<date>-<random>).")
    ] = None,
) -> None:
    """Print a new '<key id>:<key>' entry for TIDINGS_SECRETS_KEYS."""
    try:
        typer.echo(new_key_entry(key_id))
    except ValueError as error:
        raise _fail(str(error)) from None


@secrets_app.command("rotate")
def rotate_command() -> None:
    """Reseal every sealed secret with the first key of TIDINGS_SECRETS_KEYS."""
    settings = Settings()
    ring = key_ring_of(settings)
    reports = asyncio.run(rotate(settings, ring))
    typer.echo(f"sealing key: {ring.current_id}")
    for report in reports:
        typer.echo(report.summary())
    unavailable = [item for report in reports for item in report.unavailable]
    for item in unavailable:
        typer.echo(f"cannot be opened (left as it is): {item}", err=True)
    if unavailable:
        raise typer.Exit(code=1)
