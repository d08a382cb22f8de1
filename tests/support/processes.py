"""Running the real ``tidings`` command in a subprocess, bounded in time."""

from __future__ import annotations

import os
import random
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


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def free_port() -> int:
    """A port free now, for a server process that binds it a few seconds later.

    Taken below the kernel's ephemeral range, where ``bind(("127.0.0.1", 0))`` never
    lands: meanwhile no test's own fake server (they bind port 0) can be handed the
    same port, which once let a starting ``tidings serve`` lose it to a webhook
    receiver that then answered its readiness check. Each pytest-xdist worker draws
    from its own share of the range, so two workers never pick the same one.
    """
    low, high = 20_000, _ephemeral_low()
    if high - low < 2_000:  # an unusual range: let the kernel choose
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return int(sock.getsockname()[1])
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    workers = max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    share = (high - low) // workers
    start = low + (int(worker) % workers if worker.isdigit() else 0) * share
    for _ in range(500):
        port = random.randrange(start, start + share)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port between {start} and {start + share}")


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
