"""Metrics summed over the processes of one ``tidings serve``.

``serve --workers N`` answers each scrape of ``/metrics`` from whichever worker the
connection reached, and ``serve --delivery-process`` submits to providers in a process
that serves no HTTP at all. So that a scrape shows the whole server, ``serve`` gives
those processes one folder of the data directory (``metrics/``, emptied at each start)
before it starts them, through prometheus_client's multiprocess mode
(``PROMETHEUS_MULTIPROC_DIR``): every counter and histogram is kept in a file of that
folder per process, and a scrape sums the files of every process that ran since the
start, those that exited included (a counter never goes back). What is computed at the
scrape rather than counted (each provider's circuit) stays the answering process's.

A process started on its own (one ``serve`` worker, the scale-out mode's processes)
keeps its metrics in memory and shows only its own.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"


def share_between_processes(data_dir: Path, environ: MutableMapping[str, str]) -> Path:
    """Set up the folder for the processes ``serve`` is about to start, and name it in
    ``environ`` (which they inherit). A folder the operator named already is used as it
    is; the data directory's own starts empty, as the processes that wrote it are gone."""
    given = environ.get(MULTIPROCESS_ENV)
    if given:
        folder = Path(given)
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    folder = (data_dir / "metrics").resolve()
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink(missing_ok=True)
    environ[MULTIPROCESS_ENV] = str(folder)
    return folder


def shared_folder() -> Path | None:
    """The folder this process's counters and histograms are kept in, or None when they
    are in its memory. prometheus_client chooses once, when it is first imported."""
    # Imported here, not with this module: ``serve`` imports this module before it
    # names the folder, and the process it serves in must choose after that.
    from prometheus_client import values

    folder = os.environ.get(MULTIPROCESS_ENV)
    if not folder or values.ValueClass is values.MutexValue:
        return None
    return Path(folder)


def exposition(counted: Sequence[CollectorRegistry], live: Sequence[CollectorRegistry]) -> bytes:
    """The text of a scrape: ``counted`` registries hold counters and histograms (summed
    over the processes when they are shared), ``live`` ones collectors that compute
    their values at the scrape, in this process."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    folder = shared_folder()
    if folder is None:
        return b"".join(generate_latest(registry) for registry in (*counted, *live))
    summed = CollectorRegistry()
    MultiProcessCollector(summed, path=str(folder))  # type: ignore[no-untyped-call]
    return generate_latest(summed) + b"".join(generate_latest(registry) for registry in live)
