"""The README's pictures (issue 17): the landing page and the chat box, taken by the
suite's browser (tests/firstcontact/screenshots.py), shown in the README, and newer
than the last change to what they picture."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.firstcontact.screenshots import CHAT_BOX, LANDING, ROOT, photograph_landing
from tests.support.databases import require_or_skip
from tests.widget.browser import CHROMIUM, tidings_server

PICTURED = {
    LANDING: ["src/tidings/docs_site/templates", "src/tidings/docs_site/landing.py"],
    CHAT_BOX: ["src/tidings/widget/static"],
}
PNG = b"\x89PNG\r\n\x1a\n"


def test_the_readme_shows_both_pictures() -> None:
    readme = (ROOT / "README.md").read_text()
    for picture in PICTURED:
        assert f"]({picture.relative_to(ROOT)})" in readme, picture.name
        assert picture.read_bytes().startswith(PNG)


def _committed_at(*paths: str) -> int:
    result = subprocess.run(
        ["git", "log", "-1", "--format=%ct", "--", *paths],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    return int(result.stdout.strip() or 0)


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="no git")
def test_the_pictures_are_current() -> None:
    for picture, sources in PICTURED.items():
        taken = _committed_at(str(picture.relative_to(ROOT)))
        changed = _committed_at(*sources)
        assert taken >= changed, (
            f"{picture.name} is older than {sources}: run "
            "`.venv/bin/python -m tests.firstcontact.screenshots` and commit the pictures"
        )


@pytest.mark.browser
def test_the_landing_picture_can_be_taken(tmp_path: Path) -> None:
    require_or_skip(Path(CHROMIUM).exists(), "Chromium")
    out = tmp_path / "landing.png"
    with tidings_server(tmp_path) as server:
        asyncio.run(photograph_landing(server, out))
    assert out.read_bytes().startswith(PNG) and out.stat().st_size > 10_000
