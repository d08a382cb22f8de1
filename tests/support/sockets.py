"""Sockets as ``serve --workers N`` hands them to its worker processes."""

from __future__ import annotations

import pickle
import socket


def handed_to_a_worker(sock: socket.socket) -> socket.socket:
    """What multiprocessing does to hand a socket to a worker it spawns."""
    return pickle.loads(pickle.dumps(sock))  # noqa: S301 - our own bytes, just made
