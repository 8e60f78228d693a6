"""Fixtures shared across test folders: a real local Ray cluster (head + worker node)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RAY = os.path.join(os.path.dirname(sys.executable), "ray")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory):
    """A head node and a second worker node, separate processes on loopback, torn down after."""
    if not os.path.exists(RAY):
        pytest.skip("ray is not installed (pip install 'codecorpus[ray]')")
    port = free_port()
    tmp = str(tmp_path_factory.mktemp("ray"))
    # Loopback-only test cluster: no token auth (Ray 2.5x turns it on once ~/.ray/auth_token
    # exists, and the driver, the head and the worker node must agree).
    env = os.environ | {"PYTHONPATH": ROOT, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    saved = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    common = ["--num-cpus", "1", "--disable-usage-stats", "--node-ip-address", "127.0.0.1"]
    try:
        subprocess.run([RAY, "start", "--head", "--port", str(port), "--include-dashboard=false",
                        "--ray-client-server-port", str(free_port()), "--temp-dir", tmp,
                        "--min-worker-port", "30100", "--max-worker-port", "30300", *common],
                       env=env, check=True, capture_output=True, timeout=180)
        subprocess.run([RAY, "start", "--address", f"127.0.0.1:{port}",
                        "--min-worker-port", "30301", "--max-worker-port", "30500", *common],
                       env=env, check=True, capture_output=True, timeout=180)
        yield f"127.0.0.1:{port}"
    except subprocess.CalledProcessError as exc:
        pytest.fail(f"could not start the local Ray cluster: {exc.stderr.decode()[-2000:]}")
    finally:
        import ray

        if ray.is_initialized():
            ray.shutdown()
        subprocess.run([RAY, "stop", "--force"], env=env, capture_output=True, timeout=120)
        if saved is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = saved


