"""Running the real ``tidings`` command in a subprocess, bounded in time."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from cryptography.fernet import Fernet

TIDINGS = [sys.executable, "-m", "tidings"]
# The key ring sealing secrets at rest in every test app and process (one per run).
TEST_SECRETS_KEYS = f"test:{Fernet.generate_key().decode()}"
# argon2id at its cheapest, for the passwords tests make (see tests/conftest.py).
CHEAP_PASSWORD_HASHING = {
    "TIDINGS_PASSWORD_HASH__TIME_COST": "1",
    "TIDINGS_PASSWORD_HASH__MEMORY_COST_KIB": "8",
    "TIDINGS_PASSWORD_HASH__PARALLELISM": "1",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cli_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIDINGS_")}
    env.update(CHEAP_PASSWORD_HASHING)
    env["TIDINGS_DATA_DIR"] = str(data_dir)
    env["TIDINGS_SECRETS_KEYS"] = TEST_SECRETS_KEYS
    env.update(extra)
    return env


def start_serve(
    data_dir: Path, port: int, log: Path, *options: str, **env: str
) -> subprocess.Popen[str]:
    """``tidings serve`` on ``data_dir`` and ``port`` with ``options``, its output
    appended to ``log``."""
    with log.open("a") as output:
        return subprocess.Popen(
            [*TIDINGS, "serve", "--port", str(port), *options],
            env=cli_env(data_dir, **env),
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )


def run_cli(
    args: list[str], env: dict[str, str], *, stdin: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TIDINGS, *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def wait_ready(base_url: str, process: subprocess.Popen[str], timeout: float = 90) -> None:
    # Generous: on a loaded two-core machine an interpreter start and the app's
    # imports alone have taken over 10 s. A bound against hangs, not a speed check.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        try:
            if httpx.get(f"{base_url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{base_url} did not become ready in {timeout} s")


def stop(process: subprocess.Popen[str], timeout: float = 15) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)
