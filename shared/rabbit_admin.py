"""``dibao broker setup`` and partner bureaus, through RabbitMQ's management API.

:func:`setup` (idempotent) creates the deployment's vhost (the one in
``AMQP_URI``), one broker user per service and tool with the permissions of
:mod:`shared.broker` (passwords: the secrets ``BROKER_PASSWORD_<NAME>``,
generated into ``<DATA_DIR>/secrets/`` when not given), and declares the core
topology (:func:`shared.bus.declare_core_topology`) as the administrator.

A partner bureau (:func:`add_partner`) gets a vhost and a user of its own
(``<prefix>partner-<name>``, all rights there and none anywhere else). For
each source service that has partner-safe events, a durable queue in the
core (``dibao.partner.<name>.<source>``, bound to ``<source>.partner-events``)
keeps them and a dynamic shovel (the ``rabbitmq_shovel`` plugin) moves them
into the partner's vhost, to the exchange ``<source>.events`` with the event
type as routing key — so a plain nameko ``@event_handler("review",
"case_approved")`` works there unchanged, and nothing the partner does in
its vhost reaches the core. ``add_partner`` declares those exchanges in the
partner's vhost exactly as nameko does, and the durable queues the partner's
nameko service will consume, named as nameko names them
(``evt-<source>-<type>--<service>.<method>``): for the handlers it is told
of, by default one ``on_<type>`` handler per event partners receive of a
service named after the partner (:func:`partner_handlers`) — so events
published before the partner's service first connects wait for it there.
While the partner's vhost cannot take them, events wait in the core queue;
in either place for at most ``BROKER_PARTNER_RETENTION_DAYS``.

The administrator: ``BROKER_ADMIN_API`` (``http://user:password@host:15672``),
by default the credentials and host of ``AMQP_URI`` on port 15672.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from base64 import b64encode
from urllib.parse import quote, unquote, urlsplit

from shared import broker
from shared.bus import declare_core_topology
from shared.secrets import ensure_secrets, load_secret, secrets_dir

PARTNER_TAG = "dibao-partner"
SHOVEL_USER = "shovel"
PARTNER_NAME = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
NAMEKO_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
RETENTION_POLICY = "dibao-partner-retention"


class BrokerAdminError(RuntimeError):
    """The management API refused or is not there."""


class ManagementApi:
    def __init__(self, api: str):
        parts = urlsplit(api)
        self.base = f"{parts.scheme}://{parts.hostname}:{parts.port or 15672}/api"
        self.user = unquote(parts.username or "guest")
        self.auth = "Basic " + b64encode(f"{self.user}:{unquote(parts.password or '')}".encode()).decode()

    @classmethod
    def from_config(cls, config: dict) -> "ManagementApi":
        api = config.get("BROKER_ADMIN_API")
        if not api:
            amqp = urlsplit(config["AMQP_URI"])
            api = f"http://{amqp.username or 'guest'}:{amqp.password or 'guest'}@{amqp.hostname or '127.0.0.1'}:15672"
        return cls(api)

    def request(self, method: str, path: str, body=None, missing_ok: bool = False):
        req = urllib.request.Request(self.base + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": self.auth, "content-type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=15) as resp:
                text = resp.read()
        except urllib.error.HTTPError as exc:
            if missing_ok and exc.code == 404:
                return None
            detail = exc.read().decode("utf-8", "replace")[:300]
            raise BrokerAdminError(f"{method} {path}: HTTP {exc.code} {detail}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise BrokerAdminError(f"the RabbitMQ management API at {self.base} does not answer ({exc}); "
                                   f"enable it: rabbitmq-plugins enable rabbitmq_management") from None
        return json.loads(text) if text else None

    # convenience ------------------------------------------------------------------
    def put_vhost(self, vhost: str):
        self.request("PUT", f"/vhosts/{q(vhost)}", {})

    def put_user(self, name: str, password: str, tags: str = ""):
        self.request("PUT", f"/users/{q(name)}", {"password": password, "tags": tags})

    def put_permissions(self, vhost: str, user: str, configure: str, write: str, read: str):
        self.request("PUT", f"/permissions/{q(vhost)}/{q(user)}",
                     {"configure": configure, "write": write, "read": read})

    def put_topic_permissions(self, vhost: str, user: str, exchange: str, write: str, read: str):
        self.request("PUT", f"/topic-permissions/{q(vhost)}/{q(user)}",
                     {"exchange": exchange, "write": write, "read": read})

    def close_connections_of(self, user: str):
        for conn in self.request("GET", "/connections?columns=name,user") or []:
            if conn.get("user") == user:
                self.request("DELETE", f"/connections/{q(conn['name'])}", missing_ok=True)


def q(value: str) -> str:
    return quote(value, safe="")


def enable_plugins(api: ManagementApi) -> None:
    """Enable the shovel plugin on a local node (idempotent) — and with it the
    management plugin it depends on, so `make run` works on a fresh broker
    whose management API is off; elsewhere the broker's own configuration
    must (compose: deploy/rabbitmq-enabled-plugins)."""
    if shovel_enabled(api) or not shutil.which("rabbitmq-plugins"):
        return
    subprocess.run(["rabbitmq-plugins", "enable", "--online", "rabbitmq_shovel", "rabbitmq_shovel_management"],
                   capture_output=True, timeout=120, check=False)
    for _ in range(40):
        if shovel_enabled(api):
            return
        time.sleep(0.5)


def shovel_enabled(api: ManagementApi) -> bool:
    try:
        api.request("GET", "/shovels")
        return True
    except BrokerAdminError:
        return False


def user_permissions(who: str) -> dict:
    perms = broker.permissions(who)
    topic = broker.rpc_topic_permissions(who, serves_rpc=who not in broker.TOOL_USERS)
    return {"permissions": perms, "topic": topic}


def setup(config: dict, services=broker.BROKER_USERS) -> dict:
    """The deployment's vhost, users, permissions and core topology (idempotent).
    Returns ``{"vhost": ..., "users": {who: user name}}``."""
    api = ManagementApi.from_config(config)
    enable_plugins(api)   # first: on a fresh local broker the management API itself may be off
    vhost = broker.vhost_of(config["AMQP_URI"])
    api.put_vhost(vhost)
    api.put_permissions(vhost, api.user, ".*", ".*", ".*")    # the administrator declares the topology
    ensure_secrets(config, [broker.password_setting(who) for who in services] +
                   [broker.password_setting(SHOVEL_USER)])
    users = {}
    for who in services:
        name = broker.user_name(config, who)
        api.put_user(name, load_secret(config, broker.password_setting(who)), "dibao-service")
        perms = user_permissions(who)
        api.put_permissions(vhost, name, **perms["permissions"])
        api.put_topic_permissions(vhost, name, **perms["topic"])
        users[who] = name
    shovel = broker.user_name(config, SHOVEL_USER)
    # impersonator: the shovel forwards each event with its publisher's user_id (it may publish
    # nowhere in the core, and in partners' vhosts only to their <source>.events)
    api.put_user(shovel, load_secret(config, broker.password_setting(SHOVEL_USER)), "dibao-service,impersonator")
    api.put_permissions(vhost, shovel, r"^dibao\.partner\..+$", "^$", r"^dibao\.partner\..+$")
    with broker.connection(config, connect_timeout=10) as conn:
        declare_core_topology(conn.default_channel)
    return {"vhost": vhost, "users": users}


def remove_users(config: dict, services=broker.BROKER_USERS) -> None:
    """Delete the deployment's service users (tests; a deployment keeps them)."""
    api = ManagementApi.from_config(config)
    for who in tuple(services) + (SHOVEL_USER,):
        api.request("DELETE", f"/users/{q(broker.user_name(config, who))}", missing_ok=True)


# --- partner bureaus ---------------------------------------------------------------

def partner_user(config: dict, name: str) -> str:
    return broker.user_name(config, f"partner-{name}")


def _partner_secret(config: dict, name: str):
    return secrets_dir(config) / f"broker_partner_{name}"


def _partner_password(config: dict, name: str) -> str:
    import os
    import secrets as random

    path = _partner_secret(config, name)
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    value = random.token_urlsafe(32)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(value + "\n")
    return value


def _queue(name: str, source: str) -> str:
    return f"dibao.partner.{name}.{source}"


def _shovel(name: str, source: str) -> str:
    return f"dibao-partner-{name}-{source}"


def partner_uri(config: dict, name: str, host: str | None = None) -> str:
    user = partner_user(config, name)
    base = config["AMQP_URI"]
    if host:
        parts = urlsplit(base)
        base = f"amqp://x@{host}:{parts.port or 5672}/"
    uri = broker.with_credentials(base, user, _partner_password(config, name), vhost=user)
    scheme = "amqps" if urlsplit(base).scheme == "amqps" else "amqp"     # plain nameko's spelling
    return scheme + uri[uri.index("://"):]


def parse_handler(spec: str, receives: dict[str, list[str]], service: str) -> tuple[str, str, str]:
    """One handler of the partner's nameko service ``service`` -> (source,
    event type, the queue nameko's handler consumes), or ValueError naming
    what is wrong. ``spec``: ``SOURCE.EVENT`` (method ``on_EVENT``),
    ``SOURCE.EVENT=METHOD`` or ``SOURCE.EVENT=SERVICE.METHOD``."""
    event, _, handler = spec.partition("=")
    source, _, kind = event.partition(".")
    owner, _, method = handler.rpartition(".")
    method = method or f"on_{kind}"
    owner = owner or service
    if not (source and kind and NAMEKO_NAME.match(owner) and NAMEKO_NAME.match(method)):
        raise ValueError(f"handler {spec!r}: write SOURCE.EVENT, SOURCE.EVENT=METHOD or SOURCE.EVENT=SERVICE.METHOD, "
                         f"e.g. review.case_approved=finance_bureau.on_case_approved")
    if kind not in receives.get(source, []):
        raise ValueError(f"{source}.{kind} is not an event partners receive (docs/events.md)")
    return source, kind, f"evt-{source}-{kind}--{owner}.{method}"


def partner_handlers(receives: dict[str, list[str]], service: str, specs=()) -> list[tuple[str, str, str]]:
    """The queues a partner's nameko service ``service`` will consume: those
    of ``specs`` (:func:`parse_handler`), or by default one per event partners
    receive, for a handler named ``on_<event type>`` — as
    ``@event_handler("review", "case_approved") def on_case_approved`` names it."""
    if not NAMEKO_NAME.match(service):
        raise ValueError(f"partner service name {service!r}: letters, digits and _")
    specs = list(specs) or [f"{source}.{kind}" for source in sorted(receives) for kind in receives[source]]
    return list(dict.fromkeys(parse_handler(spec, receives, service) for spec in specs))


def add_partner(config: dict, name: str, receives: dict[str, list[str]], handlers=(),
                service: str | None = None) -> str:
    """Create (or complete) a partner's space; return its AMQP URI.
    ``receives``: source service -> the partner-safe event types it publishes;
    ``service`` (default ``name``) and ``handlers``: the partner's nameko
    service and its handlers (:func:`partner_handlers`), whose durable queues
    are made now, so that events published before its first connection wait
    for it there (queues no handler ever consumes keep events only for
    ``BROKER_PARTNER_RETENTION_DAYS``: a policy of the partner's vhost)."""
    from kombu import Queue

    from shared.bus import event_exchange, partner_exchange

    if not PARTNER_NAME.match(name):
        raise ValueError(f"partner name {name!r}: lower-case letters, digits and _, 2–40 characters")
    queues = partner_handlers(receives, service or name, handlers)
    api = ManagementApi.from_config(config)
    enable_plugins(api)
    if not shovel_enabled(api):
        raise BrokerAdminError("the rabbitmq_shovel plugin is not enabled on the broker "
                               "(rabbitmq-plugins enable rabbitmq_shovel rabbitmq_shovel_management)")
    core = broker.vhost_of(config["AMQP_URI"])
    user = partner_user(config, name)
    api.put_vhost(user)
    api.put_user(user, _partner_password(config, name), PARTNER_TAG)
    api.put_permissions(user, user, ".*", ".*", ".*")
    shovel_user = broker.user_name(config, SHOVEL_USER)
    api.put_permissions(user, shovel_user, "^$", r"^[a-z_]+\.events$", "^$")
    api.put_permissions(user, api.user, ".*", ".*", ".*")
    retention_ms = int(float(config.get("BROKER_PARTNER_RETENTION_DAYS", 30)) * 86400 * 1000)
    # a policy, not queue arguments: nameko re-declares its queues without any, which must agree
    api.request("PUT", f"/policies/{q(user)}/{RETENTION_POLICY}", {
        "pattern": r"^evt-", "apply-to": "queues", "priority": 0, "definition": {"message-ttl": retention_ms}})
    with broker.connection(config, connect_timeout=10) as conn:
        channel = conn.default_channel
        for source in sorted(receives):
            queue = Queue(_queue(name, source), exchange=partner_exchange(source), routing_key="#", durable=True,
                          queue_arguments={"x-message-ttl": retention_ms})
            queue(channel).declare()
    space = broker.with_credentials(config["AMQP_URI"], api.user, _admin_password(config, api), vhost=user)
    with broker.connection(config, uri=space, connect_timeout=10) as conn:
        channel = conn.default_channel
        for source in sorted(receives):
            event_exchange(source)(channel).declare()       # as nameko declares it: its redeclare agrees
        for source, kind, queue_name in queues:
            Queue(queue_name, exchange=event_exchange(source), routing_key=kind, durable=True,
                  auto_delete=False, exclusive=False)(channel).declare()
    parts = urlsplit(config["AMQP_URI"])
    local = f"localhost:{parts.port or 5672}"
    password = load_secret(config, broker.password_setting(SHOVEL_USER))
    src = f"amqp://{q(shovel_user)}:{q(password)}@{local}/{q(core)}"
    dest = f"amqp://{q(shovel_user)}:{q(password)}@{local}/{q(user)}"
    for source in sorted(receives):
        api.request("PUT", f"/parameters/shovel/{q(core)}/{q(_shovel(name, source))}", {"value": {
            "src-protocol": "amqp091", "src-uri": src, "src-queue": _queue(name, source),
            "dest-protocol": "amqp091", "dest-uri": dest, "dest-exchange": f"{source}.events",
            "ack-mode": "on-confirm", "reconnect-delay": 1, "src-delete-after": "never",
        }})
    return partner_uri(config, name, config.get("BROKER_PARTNER_HOST") or None)


def _admin_password(config: dict, api: ManagementApi) -> str:
    from base64 import b64decode

    return b64decode(api.auth.split(" ", 1)[1]).decode().split(":", 1)[1]


def remove_partner(config: dict, name: str) -> bool:
    """Revoke a partner at once: its user, its connections, its vhost, the shovels
    and the core queues that fed it. False when there was no such partner."""
    api = ManagementApi.from_config(config)
    core = broker.vhost_of(config["AMQP_URI"])
    user = partner_user(config, name)
    existed = api.request("GET", f"/users/{q(user)}", missing_ok=True) is not None
    api.request("DELETE", f"/users/{q(user)}", missing_ok=True)
    api.close_connections_of(user)
    for shovel in api.request("GET", f"/parameters/shovel/{q(core)}", missing_ok=True) or []:
        if shovel["name"].startswith(f"dibao-partner-{name}-"):
            api.request("DELETE", f"/parameters/shovel/{q(core)}/{q(shovel['name'])}", missing_ok=True)
    for queue in api.request("GET", f"/queues/{q(core)}?columns=name", missing_ok=True) or []:
        if queue["name"].startswith(f"dibao.partner.{name}."):
            api.request("DELETE", f"/queues/{q(core)}/{q(queue['name'])}", missing_ok=True)
    api.request("DELETE", f"/vhosts/{q(user)}", missing_ok=True)
    _partner_secret(config, name).unlink(missing_ok=True)
    return existed


def list_partners(config: dict) -> list[dict]:
    """Each partner: name, user, vhost, and per source its shovel's state and
    the events waiting for it."""
    api = ManagementApi.from_config(config)
    core = broker.vhost_of(config["AMQP_URI"])
    head = broker.user_name(config, "partner-")
    shovels = {s["name"]: s.get("state", "?") for s in (api.request("GET", f"/shovels/{q(core)}", missing_ok=True)
                                                          or [])}
    queues = {qu["name"]: qu.get("messages", 0)
              for qu in api.request("GET", f"/queues/{q(core)}?columns=name,messages", missing_ok=True) or []}
    out = []
    for user in api.request("GET", "/users") or []:
        tags = user.get("tags") or []
        tags = tags if isinstance(tags, list) else str(tags).split(",")
        if PARTNER_TAG not in tags or not user["name"].startswith(head):
            continue
        name = user["name"][len(head):]
        sources = {}
        for queue, waiting in queues.items():
            if queue.startswith(f"dibao.partner.{name}."):
                source = queue[len(f"dibao.partner.{name}."):]
                sources[source] = {"waiting": waiting, "shovel": shovels.get(_shovel(name, source), "absent")}
        out.append({"name": name, "user": user["name"], "vhost": user["name"], "sources": sources})
    return sorted(out, key=lambda p: p["name"])
