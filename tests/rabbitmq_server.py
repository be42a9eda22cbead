"""A throwaway RabbitMQ node with the management plugin, on loopback only, for tests marked `rabbitmq`.

Everything (mnesia, logs, config, plugins file, Erlang cookie via HOME, its own epmd port) lives in a temp dir;
the node is stopped with `rabbitmqctl stop <pidfile>` and the dir removed even when the test fails.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

USER = PASSWORD = "guest"
BOOT_TIMEOUT = 60.0
LOOPBACK = "-kernel inet_dist_use_interface {127,0,0,1}"


def scripts_dir() -> Path | None:
    """Debian's real scripts (the /usr/sbin wrappers su to the rabbitmq user), else whatever is on PATH."""
    debian = Path("/usr/lib/rabbitmq/bin")
    if (debian / "rabbitmq-server").exists():
        return debian
    found = shutil.which("rabbitmq-server") or ("/usr/sbin/rabbitmq-server"
                                                 if Path("/usr/sbin/rabbitmq-server").exists() else None)
    return Path(found).parent if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RabbitNode:
    amqp_port: int
    management_url: str
    nodename: str
    root: Path


def _environment(root: Path, nodename: str, amqp: int, management: int) -> dict[str, str]:
    config = root / "rabbitmq.conf"
    config.write_text(
        f"listeners.tcp.default = 127.0.0.1:{amqp}\n"
        f"management.tcp.ip = 127.0.0.1\nmanagement.tcp.port = {management}\n"
        "collect_statistics_interval = 1000\nlog.console = false\nlog.file.level = info\n"
        + "".join(f"management.sample_retention_policies.{policy}.minute = 1\n"
                  f"management.sample_retention_policies.{policy}.hour = 60\n" for policy in ("global", "basic"))
        + "management.sample_retention_policies.detailed.10 = 1\n")
    (root / "rabbitmq-env.conf").write_text("")
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))},
        "HOME": str(root),
        "RABBITMQ_NODENAME": nodename,
        "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
        "RABBITMQ_NODE_PORT": str(amqp),
        "RABBITMQ_DIST_PORT": str(_free_port()),
        "RABBITMQ_MNESIA_BASE": str(root / "mnesia"),
        "RABBITMQ_LOG_BASE": str(root / "log"),
        "RABBITMQ_CONFIG_FILE": str(config),
        "RABBITMQ_ADVANCED_CONFIG_FILE": str(root / "advanced.config"),
        "RABBITMQ_CONF_ENV_FILE": str(root / "rabbitmq-env.conf"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(root / "enabled_plugins"),
        "RABBITMQ_PID_FILE": str(root / "rabbit.pid"),
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": LOOPBACK,
        "RABBITMQ_CTL_ERL_ARGS": LOOPBACK,
        "ERL_EPMD_ADDRESS": "127.0.0.1",
        "ERL_EPMD_PORT": str(_free_port()),
    }


def _wait_for_management(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + BOOT_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"rabbitmq-server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/api/overview", auth=(USER, PASSWORD), timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"RabbitMQ management API did not answer within {BOOT_TIMEOUT} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def rabbit_node() -> Iterator[RabbitNode]:
    scripts = scripts_dir()
    if scripts is None:
        pytest.skip("rabbitmq-server is not installed (apt-get install rabbitmq-server)")
    root = Path(tempfile.mkdtemp(prefix="rabbit-test-"))
    amqp, management = _free_port(), _free_port()
    nodename = f"sre-test-{uuid.uuid4().hex[:8]}@localhost"
    env = _environment(root, nodename, amqp, management)
    process: subprocess.Popen[bytes] | None = None
    log = root / "server.out"
    try:
        subprocess.run([scripts / "rabbitmq-plugins", "enable", "--offline", "rabbitmq_management"],
                       env=env, check=True, capture_output=True, timeout=60)
        with log.open("wb") as out:
            process = subprocess.Popen([scripts / "rabbitmq-server"], env=env, stdout=out, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, start_new_session=True)
        url = f"http://127.0.0.1:{management}"
        _wait_for_management(url, process, log)
        yield RabbitNode(amqp_port=amqp, management_url=url, nodename=nodename, root=root)
    finally:
        if process is not None:
            _stop(scripts, env, process)
        subprocess.run(["epmd", "-kill"], env=env, capture_output=True, timeout=10, check=False)
        shutil.rmtree(root, ignore_errors=True)


def _stop(scripts: Path, env: dict[str, str], process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        subprocess.run([scripts / "rabbitmqctl", "stop", env["RABBITMQ_PID_FILE"]], env=env, capture_output=True,
                       timeout=60, check=False)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
