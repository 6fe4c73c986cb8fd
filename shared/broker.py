"""Who connects to RabbitMQ as whom, and what each broker user may do (DESIGN §3.4a).

Every service connects as its own broker user ``<BROKER_USER_PREFIX><service>``
(``dibao-intake``, …), the operators' tools as ``<prefix>cli``; the password
of each is the secret ``BROKER_PASSWORD_<NAME>`` (:mod:`shared.secrets`:
given by the environment, or generated into ``<DATA_DIR>/secrets/``).
``AMQP_URI`` in the config says where the broker is (host, port, vhost) and
holds the administrator's credentials that ``dibao broker setup`` uses;
:func:`service_config` gives a service the same config with its own user.

With ``BROKER_SERVICE_USERS`` off every component connects with
``AMQP_URI`` as it is (the test suite's default, a per-test vhost as
guest): nothing is authenticated then, and consumers do not check who
published an event.

Permissions (``configure`` / ``write`` / ``read`` regexes on the
deployment's vhost, plus topic permissions on ``nameko-rpc``) are made
from what the code really declares, publishes and consumes:

- a service publishes events to its own ``<service>.events`` and
  ``<service>.partner-events`` only; it has the configure right on no
  exchange at all — every exchange, ``nameko-rpc`` included, is declared
  at deploy time (``dibao broker setup``) and passively by the services
  (:mod:`shared.rpc_queues`), so no broker user can delete one or
  re-declare it with an alternate exchange of its own;
- it declares, binds and reads only its own queues: ``rpc-<service>``,
  its reply queues ``rpc.reply-<service>-<uuid>``, its event queues
  ``evt-<source>-<type>--<service>.<method>`` and their ``.delay`` queues
  (bound to other services' exchanges, which it may read, declared
  passively); the audit service also reads ``dibao.audit``;
- retries and parked events go through ``dibao.retry`` and ``dibao.park``
  — nobody may publish to the default exchange (``amq.default``), so no
  one can put a message straight into another service's queue;
- on ``nameko-rpc`` a user may bind only its own routing keys
  (``<service>.*`` for its RPC queue; its reply queues' own names, which
  are their keys), so no broker user can bind a queue with ``#`` and listen
  to RPC, nor bind the reply key of a caller whose request it received.

The tools — ``cli`` (the ``dibao`` command) and the gateway, each a broker
user of its own — may publish RPC requests and read their own replies.

TLS (``amqps://``, ``AMQP_SSL``, :func:`shared.config.complete_amqp_ssl`):
:func:`connection` is how Dibao's own code opens a kombu connection, with
the same TLS options nameko takes from ``AMQP_SSL``.
"""
from __future__ import annotations

import copy
import re
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from shared.bus import RPC_EXCHANGE
from shared.secrets import BROKER_TOOLS, SERVICE_NAMES, load_secret

#: Broker users besides the services: the operators' tools (dibao CLI).
TOOL_USERS = BROKER_TOOLS
BROKER_USERS = SERVICE_NAMES + TOOL_USERS

UUID_KEY = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def users_enabled(config: dict) -> bool:
    value = config.get("BROKER_SERVICE_USERS", False)
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def prefix(config: dict) -> str:
    return str(config.get("BROKER_USER_PREFIX") or "dibao-")


def user_name(config: dict, who: str) -> str:
    """The broker user of a service or tool (``who``: intake, …, cli)."""
    return f"{prefix(config)}{who}"


def password_setting(who: str) -> str:
    return f"BROKER_PASSWORD_{who.upper()}"


def with_credentials(uri: str, user: str, password: str, vhost: str | None = None) -> str:
    parts = urlsplit(uri)
    host = parts.hostname or "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}" + (f":{parts.port}" if parts.port else "")
    path = parts.path if vhost is None else "/" + quote(vhost, safe="")
    return urlunsplit((parts.scheme, netloc, path, "", ""))


def connection_user(uri: str) -> str:
    """The user a URI connects as (what RabbitMQ validates ``user_id`` against)."""
    return unquote(urlsplit(uri).username or "guest")


def vhost_of(uri: str) -> str:
    path = urlsplit(uri).path
    return unquote(path[1:]) if len(path) > 1 else "/"


def uri_for(config: dict, who: str) -> str:
    """The AMQP URI of a service or tool: its own user when users are on."""
    if not users_enabled(config):
        return config["AMQP_URI"]
    password = load_secret(config, password_setting(who))
    return with_credentials(config["AMQP_URI"], user_name(config, who), password)


def service_config(config: dict, service: str) -> dict:
    """The config a service's container runs with: ``AMQP_URI`` as its own user."""
    out = copy.copy(config)
    out["AMQP_URI"] = uri_for(config, service)
    out["BROKER_SERVICE"] = service
    if isinstance(config.get("AMQP_SSL"), dict):      # its own copy: kombu writes the host name into it
        out["AMQP_SSL"] = dict(config["AMQP_SSL"])
    return out


def ssl_options(config: dict):
    """kombu's ``ssl`` argument for this config: ``AMQP_SSL`` completed by
    :func:`shared.config.complete_amqp_ssl` (whoever loaded the config), or
    False; a fresh dict each time, since kombu writes the host it connects
    to into it."""
    from shared.config import complete_amqp_ssl

    value = config.get("AMQP_SSL")
    completed = complete_amqp_ssl({"AMQP_URI": config.get("AMQP_URI"),
                                   "AMQP_SSL": dict(value) if isinstance(value, dict) else value})
    return completed or False


def connection(config: dict, who: str | None = None, uri: str | None = None, **kwargs):
    """A kombu Connection to the deployment's broker — as ``who``'s own user
    (:func:`uri_for`), or ``uri`` (default ``AMQP_URI``) as it is — with TLS
    as ``AMQP_SSL`` says."""
    from kombu import Connection

    target = uri or (uri_for(config, who) if who else config["AMQP_URI"])
    return Connection(target, ssl=ssl_options(config), **kwargs)


def expected_publisher(config: dict, source: str) -> str | None:
    """The broker user an event of ``source`` must carry in ``user_id``
    (None: users are off, nobody is authenticated, nothing to check)."""
    return user_name(config, source) if users_enabled(config) else None


def partner_user(config: dict, bureau: str) -> str:
    """The broker user of a partner bureau (``dibao broker partner-add``)."""
    return user_name(config, f"partner-{bureau}")


def expected_bureau_publisher(config: dict, bureau: str) -> str | None:
    """The user_id an answer from ``bureau`` must carry (None: users are off)."""
    return partner_user(config, bureau) if users_enabled(config) else None


def bureau_of_user(config: dict, user_id: str | None) -> str | None:
    """The bureau whose partner user published (validated ``user_id``), or None."""
    head = user_name(config, "partner-")
    if user_id and user_id.startswith(head) and len(user_id) > len(head):
        return user_id[len(head):]
    return None


def verification_bureaus(config: dict) -> tuple[str, ...]:
    """The partner bureaus asked about every household (config VERIFICATION_BUREAUS)."""
    value = config.get("VERIFICATION_BUREAUS") or ()
    if isinstance(value, str):
        value = value.split(",")
    return tuple(dict.fromkeys(v.strip() for v in value if v and v.strip()))


def restricted(config: dict) -> bool:
    """Whether this connection may declare only what is its own (the core
    topology was declared at deploy time by ``dibao broker setup``)."""
    return users_enabled(config)


# --- permissions ------------------------------------------------------------------

def reply_queues(who: str) -> str:
    """``who``'s RPC reply queues, whose names are also their routing keys."""
    return rf"rpc\.reply-{re.escape(who)}-{UUID_KEY}"


def own_queues(service: str) -> str:
    s = re.escape(service)
    return (rf"rpc-{s}|{reply_queues(service)}"
            rf"|evt-[a-z_]+-([a-z0-9_]+|\*)--{s}\.[A-Za-z0-9_]+(\.delay)?")


#: What a service's user reaches beyond its own queues and exchange (regex
#: alternatives): "own" it declares and reads, "write" it publishes to, "read" it consumes.
EXTRA_RESOURCES: dict[str, dict[str, str]] = {
    "audit": {"read": r"|dibao\.audit"},                                  # every producer's audit copy
    "verification": {"own": r"|dibao\.verification\.answers",             # the bureaus' answers
                     "write": r"|verification\.to\.[a-z][a-z0-9_]*"},     # each bureau's request exchange
}


def service_permissions(service: str) -> dict:
    """configure/write/read regexes of a service's broker user on the core vhost.
    The verification service also writes each bureau's request exchange
    (``verification.to.<bureau>``) and reads the answers' queue."""
    s = re.escape(service)
    own = own_queues(service)
    extra = EXTRA_RESOURCES.get(service, {})
    extra_own, extra_write = extra.get("own", ""), extra.get("write", "")
    extra_read = extra.get("read", "") + extra_own
    return {
        "configure": rf"^({own}{extra_own})$",
        "write": rf"^({s}\.events|{s}\.partner-events|nameko-rpc|dibao\.retry|dibao\.park|{own}{extra_write})$",
        # dibao.dead-letter: its replay_dead_letters command reads it (and leaves others' events parked)
        "read": rf"^(nameko-rpc|[a-z_]+\.events|dibao\.retry|dibao\.dead-letter{extra_read}|{own})$",
    }


def tool_permissions(tool: str) -> dict:
    """The operators' tools: RPC requests and their own reply queues, the
    dead-letter queue to list (a replay is the command of the service that
    parked the event, :mod:`shared.deadletter`)."""
    replies = reply_queues(tool)
    return {
        "configure": rf"^({replies})$",
        "write": rf"^(nameko-rpc|{replies})$",
        "read": rf"^(nameko-rpc|dibao\.dead-letter|{replies})$",
    }


def rpc_topic_permissions(who: str, serves_rpc: bool) -> dict:
    """Routing keys on ``nameko-rpc``: publish requests (``<service>.<method>``)
    and replies (to any caller's reply queue, as ``reply_to`` says, or a bare
    uuid, which only the administrator's plain nameko proxies bind); bind only
    ``<who>.*`` (its RPC queue) and its own reply queues' names — never
    ``#``, ``*.*``, another service's key or another caller's reply key."""
    own = rf"{re.escape(who)}\.\*|" if serves_rpc else ""
    return {"exchange": RPC_EXCHANGE,
            # a bare uuid: the reply key of a plain nameko caller, which only the administrator may bind
            "write": rf"^([a-z_]+\.[A-Za-z0-9_]+|(rpc\.reply-[a-z_]+-)?{UUID_KEY})$",
            "read": rf"^({own}{reply_queues(who)})$"}


def permissions(who: str) -> dict:
    return tool_permissions(who) if who in TOOL_USERS else service_permissions(who)


# --- RPC proxies whose reply queues name their user -------------------------------

def rpc_proxy(config: dict, who: str, **kwargs):
    """A nameko ClusterRpcProxy connecting as ``who`` whose reply queue is
    ``rpc.reply-<who>-<uuid>`` (nameko names it ``standalone_rpc_proxy``),
    bound by that name (:class:`shared.rpc_queues.OwnReplyListener`), which
    the broker lets only ``who`` declare, bind and read."""
    from nameko.standalone.rpc import ClusterRpcProxy

    from shared.rpc_queues import OwnReplyListener

    class Container(ClusterRpcProxy.ServiceContainer):
        service_name = who

    class Proxy(ClusterRpcProxy):
        ServiceContainer = Container

    proxy_config = dict(config)
    if users_enabled(config) and connection_user(config["AMQP_URI"]) != user_name(config, who):
        proxy_config["AMQP_URI"] = uri_for(config, who)
    proxy_config["AMQP_SSL"] = ssl_options(config) or None      # nameko takes it from the config
    kwargs.setdefault("reply_listener_cls", OwnReplyListener)
    return Proxy(proxy_config, **kwargs)
