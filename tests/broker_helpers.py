"""A RabbitMQ node of a test's own, for the one test that needs the broker
process itself: messages in durable queues outliving a restart of the
broker (its disk, not only its connections — a broker outage as clients see
it is :class:`shared.testing.TcpProxy`).

The node has its own name, ports and data directory under /tmp and no
plugins; it starts in a few seconds and restarts in about one, whatever the
shared broker at 5672 holds, which it never touches. It needs root and the
Debian ``rabbitmq-server`` package (the node runs as the ``rabbitmq`` user).
"""
from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid

RABBITMQ_SERVER = "/usr/sbin/rabbitmq-server"
RABBITMQCTL = "/usr/sbin/rabbitmqctl"


def can_run_private_broker() -> bool:
    try:
        pwd.getpwnam("rabbitmq")
    except KeyError:
        return False
    return os.geteuid() == 0 and os.path.exists(RABBITMQ_SERVER) and os.path.exists(RABBITMQCTL)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrivateBroker:
    """``with PrivateBroker() as broker:`` a node booting (a process of its
    own: the test goes on meanwhile); ``broker.ready()`` waits until it
    takes connections at ``broker.amqp_uri`` (guest on its default vhost);
    ``broker.restart()`` stops and starts the broker application as
    ``rabbitmqctl stop_app`` / ``start_app`` do."""

    def __init__(self):
        self.node = f"dibao-test-{uuid.uuid4().hex[:8]}@localhost"
        self.port = _free_port()
        self.dist_port = _free_port()
        self.base = tempfile.mkdtemp(prefix="dibao-test-broker-")
        self.amqp_uri = f"pyamqp://guest:guest@127.0.0.1:{self.port}//"
        self.proc: subprocess.Popen | None = None

    def _path(self, name: str) -> str:
        return os.path.join(self.base, name)

    def _env(self) -> dict:
        return dict(os.environ, RABBITMQ_NODENAME=self.node, RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
                    RABBITMQ_NODE_PORT=str(self.port), RABBITMQ_DIST_PORT=str(self.dist_port),
                    RABBITMQ_MNESIA_BASE=self._path("mnesia"), RABBITMQ_LOG_BASE=self._path("log"),
                    RABBITMQ_PID_FILE=self._path("pid"), RABBITMQ_CONF_ENV_FILE=self._path("rabbitmq-env.conf"),
                    RABBITMQ_CONFIG_FILE=self._path("rabbitmq.conf"),
                    RABBITMQ_ADVANCED_CONFIG_FILE=self._path("advanced.config"),
                    RABBITMQ_ENABLED_PLUGINS_FILE=self._path("enabled_plugins"), ERL_EPMD_ADDRESS="127.0.0.1")

    def ctl(self, *args: str, timeout: float = 120) -> None:
        subprocess.run([RABBITMQCTL, "-q", "-n", self.node, *args], check=True, capture_output=True,
                       timeout=timeout)

    def launch(self) -> "PrivateBroker":
        for directory in ("mnesia", "log"):
            os.makedirs(self._path(directory))
        with open(self._path("rabbitmq-env.conf"), "w") as f:
            f.write(f"NODENAME={self.node}\n")
        with open(self._path("rabbitmq.conf"), "w") as f:
            f.write(f"listeners.tcp.default = 127.0.0.1:{self.port}\n")
        with open(self._path("enabled_plugins"), "w") as f:
            f.write("[].\n")
        user = pwd.getpwnam("rabbitmq")
        for root, dirs, files in os.walk(self.base):
            for name in [root] + [os.path.join(root, n) for n in dirs + files]:
                os.chown(name, user.pw_uid, user.pw_gid)
        with open(os.devnull, "wb") as devnull:
            self.proc = subprocess.Popen([RABBITMQ_SERVER], env=self._env(), stdout=devnull, stderr=devnull,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        return self

    def ready(self) -> "PrivateBroker":
        """Wait until the node has booted."""
        self._await_startup()
        return self

    def _await_startup(self, timeout: float = 120) -> None:
        """Until the node answers (``await_startup`` itself fails while the
        Erlang node is not there yet), or the server has exited."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.ctl("await_startup", "--timeout", "10", timeout=30)
                return
            except subprocess.CalledProcessError as error:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the test's RabbitMQ node did not start (log in {self._path('log')}): "
                                       f"{error.stderr.decode(errors='replace')[-500:]}") from error
            time.sleep(0.5)

    def restart(self) -> None:
        """The broker application stops (every connection closed, only what
        is on its disk kept) and starts again."""
        self.ctl("stop_app")
        self.ctl("start_app")
        self._await_startup()

    def stop(self) -> None:
        try:
            self.ctl("stop", timeout=60)
        except (subprocess.SubprocessError, OSError):
            pass
        if self.proc is not None:
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait()
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> "PrivateBroker":
        try:
            return self.launch()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()
