"""Shared fixtures. The embedded default index is built once (into $CLIN_LINKER_HOME, or the user cache
when unset) and reused: it is the same artifact README command 1 builds."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def default_index() -> Path:
    from clin_linker.ontologies.default_index import ensure_default_index

    return ensure_default_index()


@pytest.fixture(scope="session")
def nlp(default_index):
    from clin_linker.pipeline.build import build_pipeline

    return build_pipeline(str(default_index))


@pytest.fixture(scope="session")
def small_index(tmp_path_factory) -> Path:
    """A store + index over the hand-written custom vocabulary fixture, built with the real encoder."""
    from small_indexes import build_small_index

    site = FIXTURES / "custom" / "site_problems.csv"
    return build_small_index(tmp_path_factory.mktemp("small"), [f"custom:SITE={site}"])


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's Chromium, for the tests that open the review report in a real (headless) browser.

    Installed here when missing and we are root with apt-get (a fresh CI machine: `.ci/run` needs no step of its
    own); skipped, saying why, only when no browser can be had."""
    found = shutil.which("chromium")
    why = "the Debian package chromium is not installed, and installing it needs root and apt-get"
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for step in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]):
            done = subprocess.run(step, capture_output=True, text=True, timeout=1200, env=env)
            if done.returncode != 0:
                why = f"`{' '.join(step)}` failed: {done.stderr.strip()[-300:]}"
                break
        found = shutil.which("chromium")
    if found is None:
        pytest.skip(f"no browser for the report test: {why} (run `apt-get install -y chromium` as root)")
    return found


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL server for the session (tests/postgres_server.py: Unix socket only, deleted at the end).
    Fails, never skips, when PostgreSQL is not installed: the PostgreSQL sink would go untested."""
    from postgres_server import INSTALL_HINT, postgres_server, server_binaries

    if server_binaries() is None:
        pytest.fail(INSTALL_HINT, pytrace=False)
    with postgres_server() as server:
        yield server
