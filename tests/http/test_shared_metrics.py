"""The folder ``serve`` gives its processes' metrics (http/shared_metrics.py); the
sums themselves are tested on a real ``serve --workers 2`` (tests/ops)."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry, Counter

from tidings.http.shared_metrics import (
    MULTIPROCESS_ENV,
    exposition,
    share_between_processes,
    shared_folder,
)


def test_the_data_directorys_folder_starts_empty(tmp_path: Path) -> None:
    folder = tmp_path / "data" / "metrics"
    folder.mkdir(parents=True)
    (folder / "counter_123.db").write_bytes(b"from the last run")
    (folder / "README").write_text("not ours")
    environ: dict[str, str] = {}
    assert share_between_processes(tmp_path / "data", environ) == folder.resolve()
    assert environ == {MULTIPROCESS_ENV: str(folder.resolve())}
    assert sorted(path.name for path in folder.iterdir()) == ["README"]


def test_a_folder_the_operator_named_is_left_as_it_is(tmp_path: Path) -> None:
    named = tmp_path / "theirs"
    named.mkdir()
    (named / "counter_123.db").write_bytes(b"theirs")
    environ = {MULTIPROCESS_ENV: str(named)}
    assert share_between_processes(tmp_path / "data", environ) == named
    assert environ == {MULTIPROCESS_ENV: str(named)}
    assert (named / "counter_123.db").read_bytes() == b"theirs"
    assert not (tmp_path / "data" / "metrics").exists()


def test_a_process_that_counts_in_memory_shows_its_own_registries() -> None:
    # The test process imported prometheus_client without the variable: in memory.
    assert shared_folder() is None
    counted, live = CollectorRegistry(), CollectorRegistry()
    Counter("tidings_test_counted", "A test counter.", registry=counted).inc(3)
    Counter("tidings_test_live", "A test counter.", registry=live).inc()
    text = exposition([counted], [live]).decode()
    assert "tidings_test_counted_total 3.0" in text
    assert "tidings_test_live_total 1.0" in text
