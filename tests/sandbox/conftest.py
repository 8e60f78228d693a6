"""Fixtures for the sandbox tests: each backend, started for real or skipped with the reason.

The docker fixture starts dockerd itself when it is installed but not running (as
scripts/services.sh does), builds the sandbox image if it is missing (cached by content
hash, so once per machine) and skips only when one of those is impossible here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest


def _docker_up() -> bool:
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _start_dockerd() -> str | None:
    """None when the engine is (now) up, else why not."""
    if shutil.which("docker") is None and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-qq", "docker.io"], capture_output=True, timeout=300)
    if shutil.which("docker") is None:
        return "docker CLI/engine not installed (apt-get install docker.io)"
    if _docker_up():
        return None
    if shutil.which("dockerd") is None or os.geteuid() != 0:
        return "Docker engine not running and cannot be started here (needs root and dockerd)"
    with open("/tmp/codecorpus-dockerd.log", "ab") as log:
        subprocess.Popen(["dockerd"], stdout=log, stderr=log, start_new_session=True)
    for _ in range(60):
        if _docker_up():
            return None
        time.sleep(1)
    return "dockerd did not come up within 60 s (see /tmp/codecorpus-dockerd.log)"


@pytest.fixture(scope="session")
def bwrap_backend() -> str:
    from sandbox.backends import bwrap

    ok, why = bwrap.available()
    if not ok:
        pytest.skip(f"bwrap backend unusable here: {why}")
    return "bwrap"


@pytest.fixture(scope="session")
def docker_backend() -> str:
    why = _start_dockerd()
    if why:
        pytest.skip(f"docker backend: {why}")
    from sandbox.backends import docker

    ok, why = docker.available()
    if not ok:
        pytest.skip(f"docker backend: {why}")
    try:
        docker.ensure_image()
    except Exception as e:  # building needs Debian packages or debootstrap + a mirror
        pytest.skip(f"docker backend: cannot build the sandbox image: {e}")
    return "docker"


@pytest.fixture(params=["bwrap", pytest.param("docker", marks=pytest.mark.docker)])
def backend(request) -> str:
    return request.getfixturevalue(f"{request.param}_backend")


@pytest.fixture
def need():
    """need(language, backend): skip unless that toolchain is present in that backend."""
    import sandbox

    def check(language: str, backend: str) -> None:
        if not sandbox.available_languages(backend).get(language):
            pytest.skip(f"{language} toolchain not available in the {backend} backend")

    return check
