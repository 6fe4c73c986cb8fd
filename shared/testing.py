"""One test harness for every service: a fresh RabbitMQ vhost per test, a
fresh database per service per test (SQLite file or PostgreSQL database),
actor tokens, and RPC proxies with timeouts.

The harness plays identity (TOKENS.md): it holds a per-test-session Ed25519
key (:data:`TEST_IDENTITY_KEY`, never written anywhere), puts its public key
in every test config as ``IDENTITY_PUBLIC_KEY``, signs person tokens
(:func:`person_token`, :func:`rpc_as`) and the services' own tokens (in
place of ``identity.service_token``), and publishes identity's events
(:func:`publish_identity_event`) as the identity service would.

Used by tests/conftest.py and bench/; both talk to the real RabbitMQ and
PostgreSQL of the machine (DIBAO_TEST_AMQP_URI, DIBAO_TEST_PG_URI).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from base64 import b64encode
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import sqlalchemy as sa

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.config import SERVICES, load_config
from shared.secrets import SECRETS, ensure_secrets
from shared.client import rpc_with
from shared.identity import (AUTH_TOKEN_KEY, DEFAULT_TTL_SECONDS, Role, private_key_from_seed, public_key_text,
                             sign_token, token_claims)

AMQP_BASE = os.environ.get("DIBAO_TEST_AMQP_URI", "pyamqp://guest:guest@127.0.0.1:5672/")
PG_ADMIN = os.environ.get("DIBAO_TEST_PG_URI", "postgresql://postgres@127.0.0.1:5432/postgres")
MGMT_API = os.environ.get("DIBAO_TEST_RABBIT_API", "http://guest:guest@127.0.0.1:15672")


class VhostManager:
    """Creates and deletes vhosts: the management API when it answers (fast),
    else rabbitmqctl (about a second a call)."""

    def __init__(self, api: str = MGMT_API):
        parts = urlsplit(api)
        self.base = f"{parts.scheme}://{parts.hostname}:{parts.port}/api"
        self.auth = "Basic " + b64encode(f"{parts.username}:{parts.password}".encode()).decode()
        self.use_api = self._api_up() or self._enable_api()

    def _request(self, method: str, path: str, body: dict | None = None):
        req = urllib.request.Request(self.base + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": self.auth, "content-type": "application/json"})
        return urllib.request.urlopen(req, timeout=10)

    def _api_up(self) -> bool:
        try:
            self._request("GET", "/overview")
            return True
        except (urllib.error.URLError, OSError):
            return False

    def _enable_api(self) -> bool:
        if not shutil.which("rabbitmq-plugins"):
            return False
        subprocess.run(["rabbitmq-plugins", "enable", "--online", "rabbitmq_management", "rabbitmq_shovel",
                        "rabbitmq_shovel_management"], capture_output=True, timeout=120)   # shovel: partners
        for _ in range(60):
            if self._api_up():
                return True
            time.sleep(0.5)
        return False

    def create(self) -> str:
        name = f"dibao-test-{uuid.uuid4().hex[:10]}"
        if self.use_api:
            self._request("PUT", f"/vhosts/{quote(name, safe='')}", {})
            self._request("PUT", f"/permissions/{quote(name, safe='')}/guest",
                          {"configure": ".*", "write": ".*", "read": ".*"})
        else:
            subprocess.run(["rabbitmqctl", "add_vhost", name], check=True, capture_output=True)
            subprocess.run(["rabbitmqctl", "set_permissions", "-p", name, "guest", ".*", ".*", ".*"],
                           check=True, capture_output=True)
        return name

    def queue(self, amqp_uri: str, name: str) -> dict:
        """What the management API says of queue ``name`` on ``amqp_uri``'s vhost (durable, messages, ...)."""
        vhost = unquote(urlsplit(amqp_uri).path[1:]) or "/"
        with self._request("GET", f"/queues/{quote(vhost, safe='')}/{quote(name, safe='')}") as response:
            return json.loads(response.read())

    def delete(self, name: str) -> None:
        try:
            if self.use_api:
                self._request("DELETE", f"/vhosts/{quote(name, safe='')}")
            else:
                subprocess.run(["rabbitmqctl", "delete_vhost", name], capture_output=True)
        except (urllib.error.URLError, OSError):
            pass

    def delete_all(self, names, at_once: int = 8) -> None:
        """Delete these vhosts, several requests in flight at a time."""
        import eventlet

        for _ in eventlet.GreenPool(at_once).imap(self.delete, list(names)):
            pass


class SessionVhosts:
    """The vhosts of a test session. ``vhosts()`` makes one kept to the end
    of the session; :meth:`for_test` one for a single test, which
    :meth:`test_done` hands back: it is deleted in the background once the
    next test asks for its own (by then every fixture of the test that used
    it has finished), so a test run does not end with hundreds of deletions
    in a row (about 0.1–0.2 s each on the broker)."""

    def __init__(self, manager: VhostManager | None = None):
        import eventlet

        self.manager = manager or VhostManager()
        self.kept: list[str] = []
        self.done: list[str] = []
        self._deleting = eventlet.GreenPool(2)

    def __call__(self) -> str:
        self.kept.append(self.manager.create())
        return self.kept[-1]

    def for_test(self) -> str:
        done, self.done = self.done, []
        for name in done:
            self._deleting.spawn_n(self.manager.delete, name)
        return self.manager.create()

    def test_done(self, name: str) -> None:
        self.done.append(name)

    def close(self) -> None:
        self._deleting.waitall()
        self.manager.delete_all(self.kept + self.done)
        self.kept, self.done = [], []


def amqp_uri_for(vhost: str, base: str = AMQP_BASE) -> str:
    parts = urlsplit(base)
    return urlunsplit((parts.scheme, parts.netloc, "/" + quote(vhost, safe=""), "", ""))


class PostgresDatabases:
    """Creates throwaway PostgreSQL databases and drops them afterwards."""

    def __init__(self, admin_uri: str = PG_ADMIN):
        self.admin_uri = admin_uri
        from shared.db import normalize_url
        self.engine = sa.create_engine(normalize_url(admin_uri), isolation_level="AUTOCOMMIT",
                                       poolclass=sa.pool.NullPool)
        self.created: list[str] = []

    def available(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            return True
        except sa.exc.OperationalError:
            return False

    def create(self, prefix: str) -> str:
        uri = self.reserve(prefix)
        with self.engine.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{sa.make_url(uri).database}" TEMPLATE template0'))
        return uri

    def reserve(self, prefix: str) -> str:
        """The URI of a database nobody has created yet (``dibao db create``
        makes it), dropped with the others by :meth:`drop_all`."""
        name = f"dibao_t_{prefix}_{uuid.uuid4().hex[:10]}"
        self.created.append(name)
        return sa.make_url(self.admin_uri).set(database=name).render_as_string(hide_password=False)

    def drop_all(self, at_once: int = 32) -> None:
        """Drop every database made, ``at_once`` at a time: PostgreSQL (15)
        makes each DROP DATABASE wait for a checkpoint, and drops waiting
        together share one — 20 drops in turn took 35 s on a loaded CI
        machine, 20 at once 0.75 s."""
        import eventlet

        from shared.db import make_engine

        make_engine(self.admin_uri).dispose()   # psycopg2 made green (psycogreen), so the drops overlap

        def drop(name: str) -> None:
            with self.engine.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

        for _ in eventlet.GreenPool(at_once).imap(drop, self.created):
            pass
        self.created.clear()


# --- the harness plays identity ------------------------------------------------------

#: this test session's identity signing key (in memory, and in the test
#: configs as identity's own ``IDENTITY_SIGNING_KEY``: an identity service a
#: test runs — the demo's, for one — signs its logins with it)
TEST_IDENTITY_SEED = b64encode(os.urandom(32)).decode("ascii")
TEST_IDENTITY_KEY = private_key_from_seed(TEST_IDENTITY_SEED)
TEST_IDENTITY_PUBLIC_KEY = public_key_text(TEST_IDENTITY_KEY.public_key())


def repository_token_key() -> str:
    """The HS256 key config.yml shipped as its default until 2026-12, read from
    the git history (the tree keeps only its digest: shared.secrets.KNOWN_VALUES),
    for the tests that try it as an insider would. Without the history: a
    stand-in (the token is refused for its algorithm either way)."""
    import re

    from shared.config import REPO_ROOT

    try:
        text = subprocess.run(["git", "log", "-p", "-S", "DIBAO_TOKEN_KEY:", "--", "config.yml"], cwd=REPO_ROOT,
                              capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        text = ""
    found = re.search(r"\$\{DIBAO_TOKEN_KEY:([^}]+)\}", text)
    return found.group(1) if found else "the repository's old HS256 key (no git history here)"


def person_token(user: str, name: str | None = None, unit: str = "", roles=(), ttl_seconds: int = 3600,
                 session_id: str | None = None, key: Ed25519PrivateKey | None = None, **claims) -> str:
    """A person's token as identity signs it at login (``claims`` override)."""
    roles = [roles] if isinstance(roles, (str, Role)) else list(roles)
    body = token_claims(user, name or user, unit, roles, "person", session_id, ttl_seconds)
    body.update(claims)
    return sign_token(key or TEST_IDENTITY_KEY, body)


def service_token_for(service: str, ttl_seconds: int = DEFAULT_TTL_SECONDS) -> str:
    """A service's own token (``service:<name>``) as identity.service_token gives it."""
    return sign_token(TEST_IDENTITY_KEY, token_claims(f"service:{service}", f"{service} service", "",
                                                      [Role.SERVICE], "service", None, ttl_seconds))


def _issue_service_token(config: dict, service: str) -> tuple[str, float]:
    return service_token_for(service), time.time() + DEFAULT_TTL_SECONDS


def play_identity() -> None:
    """Services started by tests get their own tokens from the harness."""
    from shared.remote import install_test_issuer

    install_test_issuer(_issue_service_token)


def context(config: dict, role, unit: str, user: str | None = None, name: str | None = None,
            session_id: str | None = None) -> dict:
    """Context data of a person holding ``role`` (one role or several) in ``unit``."""
    roles = [role] if isinstance(role, (str, Role)) else list(role)
    user = user or f"{Role(roles[0]).value}-{unit}"
    return {AUTH_TOKEN_KEY: person_token(user, name or user, unit, roles, session_id=session_id)}


def rpc_as(config: dict, role, unit: str, user: str | None = None, name: str | None = None,
           timeout: float | None = None, session_id: str | None = None):
    """A cluster RPC proxy acting as the given person (the harness signs the token)."""
    return rpc_with(config, context(config, role, unit, user, name, session_id), timeout)


def rpc_with_token(config: dict, token: str | None, timeout: float | None = None):
    return rpc_with(config, {AUTH_TOKEN_KEY: token} if token else {}, timeout)


def write_session(path, token: str) -> str:
    """A session file as ``dibao login`` stores it (for CLI tests): set
    ``DIBAO_SESSION_FILE`` to the path returned."""
    from pathlib import Path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"token": token}), encoding="utf-8")
    os.chmod(path, 0o600)
    return str(path)


def session_env(directory, role, unit: str, user: str, name: str | None = None) -> dict:
    """The environment of a CLI run logged in as this person (``DIBAO_SESSION_FILE``)."""
    from pathlib import Path

    roles = [role] if isinstance(role, (str, Role)) else list(role)
    path = write_session(Path(directory) / f"session-{user}.json", person_token(user, name or user, unit, roles))
    return {"DIBAO_SESSION_FILE": path}


def publish_identity_event(config: dict, event_type: str, payload: dict, occurred_at=None) -> dict:
    """One of identity's events (contracts/identity.py), on the real bus, as
    the identity service's relay publishes it (the envelope built by hand:
    the platform does not import the contracts)."""
    from datetime import datetime, timezone

    from kombu import Producer

    from shared.broker import connection
    from shared.bus import event_exchange
    from shared.events import encode

    env = {"event_id": str(uuid.uuid4()), "type": event_type, "source": "identity", "version": 1,
           "occurred_at": (occurred_at or datetime.now(timezone.utc)).isoformat(), "actor": None,
           "subject": {"user": str(payload["user"])}, "correlation_id": "test", "payload": payload}
    with connection(config) as conn:
        Producer(conn.default_channel).publish(
            encode(env), exchange=event_exchange("identity"), routing_key=event_type,
            content_type="application/json", content_encoding="utf-8", delivery_mode=2,
            declare=[event_exchange("identity")])
    return env


def test_config(amqp_uri: str, db_uris: dict, data_dir: str, **overrides) -> dict:
    """A test deployment's configuration, with secrets of its own: generated
    into ``<data_dir>/secrets`` as ``dibao up`` does on a first start (the
    settings themselves stay empty, so everything reads them the way a
    deployment does: ``shared.secrets.load_secret``)."""
    play_identity()
    config = load_config()
    config.update({"AMQP_URI": amqp_uri, "DB_URIS": db_uris, "DATA_DIR": str(data_dir),
                   "OUTBOX_POLL_SECONDS": 0.2, "INBOX_BACKOFF_SECONDS": 0.05, "INBOX_MAX_ATTEMPTS": 3,
                   "RPC_TIMEOUT": 20, "BROKER_SERVICE_USERS": False,
                   # a test deployment's gateway binds any free port unless the test names one
                   "WEB_SERVER_ADDRESS": "127.0.0.1:0",
                   # no partner bureau unless the test names them (VERIFICATION_BUREAUS=...): a
                   # deployment that asks none has no 核对 report for the review to wait for
                   "VERIFICATION_BUREAUS": ""})
    config.update({setting: "" for setting in SECRETS})   # not the developer's environment
    config.pop("SECRETS_DIR", None)
    # the harness plays identity: its key signs the tests' tokens; services verify with its public half
    config.update({"IDENTITY_PUBLIC_KEY": TEST_IDENTITY_PUBLIC_KEY, "IDENTITY_SIGNING_KEY": TEST_IDENTITY_SEED})
    config.pop("LOGGING", None)
    config.update(overrides)
    ensure_secrets(config)
    return config


def with_broker_users(config: dict) -> dict:
    """The config with broker users of its own on its vhost (``dibao broker
    setup`` under a unique ``dibao-test-<hex>-`` prefix, passwords in its
    DATA_DIR): containers then run on ``shared.broker.service_config(config,
    service)``. :func:`remove_broker_users` deletes them (and its partners)."""
    from shared import rabbit_admin

    users = dict(config, BROKER_SERVICE_USERS=True, BROKER_USER_PREFIX=f"dibao-test-{uuid.uuid4().hex[:8]}-",
                 BROKER_ADMIN_API=MGMT_API)
    rabbit_admin.setup(users)
    return users


def publish_event(config: dict, env: dict, routing_key: str | None = None, body: str | bytes | None = None) -> dict:
    """Publish an envelope as its source's relay would: to ``<source>.events``
    — as the source's own broker user, with ``user_id``, when broker users are
    on (consumers refuse anything else). ``body``: other bytes instead."""
    from amqp import Message

    from shared.broker import connection, connection_user, uri_for, users_enabled
    from shared.events import encode

    source = env["source"]
    uri = uri_for(config, source)
    props = {"user_id": connection_user(uri)} if users_enabled(config) else {}
    with connection(config, uri=uri) as conn:
        channel = conn.channel()
        channel.confirm_select()
        channel.basic_publish_confirm(Message(encode(env) if body is None else body, content_type="application/json",
                                              content_encoding="utf-8", delivery_mode=2, **props),
                                      exchange=f"{source}.events", routing_key=routing_key or env["type"])
    return env


def remove_broker_users(config: dict) -> None:
    from shared import rabbit_admin

    for partner in rabbit_admin.list_partners(config):
        rabbit_admin.remove_partner(config, partner["name"])
    rabbit_admin.remove_users(config)


class SqliteUris(dict):
    """A SQLite file per service, made up for any service name asked for."""

    def __init__(self, directory):
        super().__init__({svc: f"sqlite:///{directory}/{svc}.db" for svc in SERVICES})
        self.directory = directory

    def __missing__(self, service):
        self[service] = f"sqlite:///{self.directory}/{service}.db"
        return self[service]


def sqlite_uris(directory) -> dict:
    return SqliteUris(directory)


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05, message: str = "condition"):
    """Poll ``predicate`` (green-friendly sleep) until truthy or fail."""
    import eventlet

    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        eventlet.sleep(interval)


class TcpProxy:
    """A TCP forwarder to the broker that the test controls: its clients
    (services in the test, a relay or service in a subprocess) connect to
    ``127.0.0.1:<port>``. :meth:`cut` is the broker going away as they see
    it — every connection dropped, every new one reset at once — and
    :meth:`restore` its return, without touching the broker everyone else
    on the machine uses.

    It runs in OS threads of its own (eventlet's original ``threading`` and
    ``socket``), so it forwards while the test's own thread is busy or
    blocked, whatever the test's green threads do."""

    def __init__(self, target_host: str = "127.0.0.1", target_port: int | None = None):
        import eventlet.patcher

        self._socket = eventlet.patcher.original("socket")
        self._threading = eventlet.patcher.original("threading")
        self.target = (target_host, target_port or urlsplit(AMQP_BASE).port or 5672)
        self.server = self._socket.socket(self._socket.AF_INET, self._socket.SOCK_STREAM)
        self.server.setsockopt(self._socket.SOL_SOCKET, self._socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(64)
        self.server.settimeout(0.1)
        self.port = self.server.getsockname()[1]
        self.up = True
        self.refused = 0          #: connections reset while cut (clients trying to reconnect)
        self._closed = False
        self._lock = self._threading.Lock()
        self._conns: list = []
        self._threads: list = []
        self._acceptor = self._start(self._accept)

    def uri(self, amqp_uri: str) -> str:
        """``amqp_uri`` (its user, password and vhost) through the proxy."""
        parts = urlsplit(amqp_uri)
        netloc = f"{parts.username}:{parts.password}@127.0.0.1:{self.port}"
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))

    def _start(self, target, *args):
        thread = self._threading.Thread(target=target, args=args, daemon=True, name=f"tcp-proxy-{self.port}")
        thread.start()
        return thread

    def _accept(self):
        sock = self._socket
        while not self._closed:
            try:
                client, _ = self.server.accept()
            except sock.timeout:
                continue
            except OSError:
                break
            client.settimeout(None)
            if not self.up:
                self._reset(client)
                continue
            try:
                upstream = sock.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                self._reset(client)
                continue
            with self._lock:
                if not self.up:                       # cut while we connected
                    self._reset(client)
                    upstream.close()
                    continue
                self._conns += [client, upstream]
                self._threads = [t for t in self._threads if t.is_alive()]
                self._threads += [self._start(self._pipe, client, upstream),
                                  self._start(self._pipe, upstream, client)]

    def _reset(self, client):
        import struct

        self.refused += 1
        try:
            client.setsockopt(self._socket.SOL_SOCKET, self._socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST
            client.close()
        except OSError:
            pass

    def _pipe(self, src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(self._socket.SHUT_RDWR)  # wakes the other pipe of the pair
                except OSError:
                    pass
            with self._lock:
                for sock in (src, dst):
                    if sock in self._conns:
                        self._conns.remove(sock)
                        sock.close()

    def connections(self) -> int:
        """Client connections forwarded now."""
        with self._lock:
            return len(self._conns) // 2

    def cut(self):
        """The broker goes away: drop every connection and reset new ones."""
        with self._lock:
            self.up = False
            conns = list(self._conns)
        for sock in conns:
            try:
                sock.shutdown(self._socket.SHUT_RDWR)  # wakes the pipes, which close both ends
            except OSError:
                pass

    def restore(self):
        """The broker is back: accept connections again."""
        self.up = True

    def close(self):
        """Stop everything: no thread left behind."""
        self.cut()
        self._closed = True
        self._acceptor.join(timeout=5)
        for thread in list(self._threads):
            thread.join(timeout=5)
        self.server.close()
