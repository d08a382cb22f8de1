"""What ``tidings serve`` says before it starts: addresses a user can open, and
whether the port is free.

A wildcard listen address (``0.0.0.0``, ``::``) is not an address anyone can open;
the banner shows loopback for this machine and the address other machines reach
this one at (the source address of the default route). The port is checked before
the banner, so a second server on a taken port says so instead of printing a login
and then failing inside uvicorn.
"""

from __future__ import annotations

import errno
import socket
from typing import NamedTuple

_WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


class BaseUrls(NamedTuple):
    """Where to open the server: ``local`` on this machine, ``remote`` from others."""

    local: str
    remote: str | None


def _url(scheme: str, host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}:{port}"


def outward_address(family: socket.AddressFamily = socket.AF_INET) -> str | None:
    """This machine's address on its default route, or None without one.

    Connecting a UDP socket sends nothing; it only makes the kernel pick a route
    and so the source address other machines see.
    """
    probe = "192.0.2.1" if family == socket.AF_INET else "2001:db8::1"
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.connect((probe, 9))
            address = str(sock.getsockname()[0])
    except OSError:
        return None
    return None if address in ("0.0.0.0", "::") else address


def base_urls(host: str, port: int, *, tls: bool) -> BaseUrls:
    scheme = "https" if tls else "http"
    local = _WILDCARDS.get(host)
    if local is None:
        return BaseUrls(_url(scheme, host, port), None)
    family = socket.AF_INET6 if host == "::" else socket.AF_INET
    remote = outward_address(family) or (outward_address() if host == "::" else None)
    return BaseUrls(_url(scheme, local, port), _url(scheme, remote, port) if remote else None)


def port_problem(host: str, port: int) -> str | None:
    """A sentence saying why ``host:port`` cannot be listened on, or None if it can.

    SO_REUSEADDR as uvicorn sets it: a port left in TIME_WAIT by a stopped server
    is free, one another process listens on is not.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            return (
                f"port {port} on {host} is already in use (another Tidings, or another "
                f"program); stop it or choose another port with --port"
            )
        if error.errno == errno.EACCES:
            return f"not allowed to listen on port {port} (ports below 1024 need privileges)"
        if error.errno == errno.EADDRNOTAVAIL:
            return f"{host} is not an address of this machine; use one of its addresses"
        return f"cannot listen on {host}:{port}: {error.strerror or error}"
    except (socket.gaierror, UnicodeError):
        return f"{host!r} is not an address or host name this machine can listen on"
    return None
