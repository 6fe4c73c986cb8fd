"""Databases: one per service, a unit of work, migrations at start-up.

``Database`` is the nameko DependencyProvider every service declares. It
builds the engine once in ``setup()`` (SQLite file in WAL mode by default,
PostgreSQL by URI with psycogreen so psycopg2 cooperates with eventlet),
applies the service's Alembic migrations, starts the outbox relay, and
gives each worker a factory of :class:`UnitOfWork`.

A unit of work commits the state change *and* the events it recorded in one
transaction (the transactional outbox); the relay publishes them after.
"""
from __future__ import annotations

import csv
import io
import logging
import threading
import weakref
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa
from nameko.extensions import DependencyProvider
from sqlalchemy import event as sa_event
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, object_session, sessionmaker

from shared.commands import CommandRecorder
from shared import profiles
from shared.crypto import FieldCipher, Keyring, configure, key_from_config
from shared.sealing import EncryptedDecimal, EncryptedString
from shared.errors import NotFound
from shared.events import Event, encode, encode_many, envelope, parse
from shared.identity import TokenVerification, actor_of
from shared.permissions import gate
from shared.secrets import SecretError, load_secret, require_secrets, required_secrets, source_of

log = logging.getLogger(__name__)

_green_patched = False


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def normalize_url(uri: str) -> sa.URL:
    """``postgresql://`` means psycopg2 here (SQLAlchemy 2.1 would pick
    psycopg 3, which eventlet does not support)."""
    url = sa.make_url(uri)
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg2")
    return url


def make_engine(uri: str, **kwargs) -> sa.Engine:
    """An engine for a service database, tuned for its backend."""
    url = normalize_url(uri)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)

        @sa_event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            dbapi_conn.isolation_level = None  # let SQLAlchemy emit BEGIN
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @sa_event.listens_for(engine, "begin")
        def _sqlite_begin(conn):
            # A unit of work takes the write lock up front (BEGIN IMMEDIATE) so
            # two writers queue instead of failing "database is locked" mid-way;
            # reads (WAL) begin deferred and never wait for a writer.
            if conn.get_execution_options().get("dibao_read_only"):
                conn.exec_driver_sql("BEGIN")
            else:
                conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    if url.get_backend_name() == "postgresql":
        _patch_psycopg_for_eventlet()
        kwargs.setdefault("pool_pre_ping", True)
        kwargs.setdefault("pool_size", 10)
        kwargs.setdefault("max_overflow", 10)
    return sa.create_engine(url, **kwargs)


def _patch_psycopg_for_eventlet():
    global _green_patched
    if _green_patched:
        return
    try:
        import eventlet.patcher
        if eventlet.patcher.is_monkey_patched("socket"):
            import psycogreen.eventlet
            psycogreen.eventlet.patch_psycopg()
    except ImportError:  # pragma: no cover - eventlet is a hard dependency
        pass
    _green_patched = True


def platform_tables(metadata: sa.MetaData) -> tuple[sa.Table, sa.Table]:
    """The outbox and inbox tables every service database has."""
    outbox = sa.Table(
        "outbox", metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(36), nullable=False, unique=True),
        sa.Column("exchange", sa.String(100), nullable=False),
        sa.Column("routing_key", sa.String(100), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("correlation_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Index("ix_outbox_unsent", "sent_at", "id"),
    )
    inbox = sa.Table(
        "inbox", metadata,
        sa.Column("event_id", sa.String(36), primary_key=True),
        sa.Column("consumer", sa.String(200), primary_key=True),
        sa.Column("event_type", sa.String(100), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
    )
    return outbox, inbox


def configure_cipher(config: dict, service: str) -> FieldCipher:
    """:func:`service_cipher`, installed for the service's tables (shared.crypto.configure)."""
    cipher = service_cipher(config, service)
    configure(cipher, service)
    return cipher


def service_cipher(config: dict, service: str) -> FieldCipher:
    """``service``'s field cipher (shared.crypto): the deployment's profile,
    the service's keyring ``DATA_KEY_<SERVICE>`` (re-read from its file
    while the service runs: key rotation) and, for intake, its blind-index
    key."""
    profile = profiles.use(config)
    setting = f"DATA_KEY_{service.upper()}"

    def read() -> Keyring:
        try:
            return Keyring.parse(load_secret(config, setting), setting)
        except ValueError as exc:
            raise SecretError(str(exc)) from None

    keyring = read()
    source = read if source_of(config, setting) == "file" else None
    index_setting = f"BLIND_INDEX_KEY_{service.upper()}"
    index_key = (key_from_config(load_secret(config, index_setting), index_setting)
                 if index_setting in required_secrets(service) else None)
    return FieldCipher(keyring, profile, index_key, source)


def encrypts(metadata: sa.MetaData) -> bool:
    """Whether a service's tables have encrypted columns (it then holds DATA_KEY)."""
    return any(isinstance(column.type, (EncryptedString, EncryptedDecimal))
               for table in metadata.tables.values() for column in table.columns)


_PENDING_EVENTS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def outbox_row(event: Event, actor: dict | None, correlation_id: str, now: datetime) -> tuple[dict, dict]:
    """The outbox row of one event (and its envelope): what a unit of work
    commits, and what a component writing its own transaction inserts there."""
    env = envelope(event, actor, correlation_id, now)
    return ({"event_id": env["event_id"], "exchange": f"{event.source}.events", "routing_key": event.type,
             "body": encode(env), "correlation_id": correlation_id, "created_at": now}, env)


class RecordsEvents:
    """Mixin for aggregates that record domain events (cosmicpython style).

    The session holds a strong reference to every aggregate with events
    waiting: SQLAlchemy's identity map is weak, so an aggregate a handler no
    longer references would otherwise vanish, with its events, at the flush."""

    def record(self, event: Event) -> None:
        _PENDING_EVENTS.setdefault(self, []).append(event)
        session = object_session(self)
        if session is not None:
            session.info.setdefault("dibao_recorders", []).append(self)

    def pop_events(self) -> list[Event]:
        return _PENDING_EVENTS.pop(self, [])


def is_id(value) -> bool:
    """Whether ``value`` can be one of our ids (uuid strings, 36 characters):
    a number, a huge string or one no database can bind is nobody's id."""
    return isinstance(value, str) and 0 < len(value) <= 36 and value.isprintable()


class AlreadyConsumed(Exception):
    """This consumer already processed this event: a redelivery, a no-op."""


class UnitOfWork:
    """One transaction: state plus the events it produced (the outbox)."""

    def __init__(self, session_factory, source: str, outbox: sa.Table, inbox: sa.Table,
                 actor: dict | None, correlation_id: str, on_commit=None, read_only: bool = False,
                 command=None):
        self._session_factory = session_factory
        self._command = command  # shared.commands.CommandRecorder of the RPC call, if any
        self.read_only = read_only
        self._deferred = 0
        self.source = source
        self._outbox = outbox
        self._inbox = inbox
        self.actor = actor
        self.correlation_id = correlation_id
        self._on_commit = on_commit
        self._events: list[Event] = []
        self.session: Session | None = None
        self.committed_events: list[dict] = []
        self._bulk_written = 0   # outbox rows emit_many wrote in this transaction
        self._direct: list[dict] = []   # messages to a partner's own exchange (send_direct)

    def __enter__(self) -> "UnitOfWork":
        self.session = self._session_factory()
        return self

    def __exit__(self, exc_type, exc, tb):
        self.session.close()  # rolls back whatever was not committed

    def get(self, model, ident, what: str, key: str, **options):
        """The row with this id, or NotFound naming ``key`` (one rule for every service)."""
        obj = self.session.get(model, ident, **options) if is_id(ident) else None
        if obj is None:
            raise NotFound.of(what, ident, key)
        return obj

    def emit(self, event: Event) -> None:
        self._events.append(event)

    def send_direct(self, exchange: str, routing_key: str, body: str, message_id: str) -> None:
        """A message that is not an event of ours on ``<source>.events`` — a
        verification request to one partner bureau's own exchange — relayed
        like the events (outbox, confirms, user_id) when this commits. It
        reaches no audit queue: record a partner-safe event beside it."""
        self._direct.append({"event_id": message_id, "exchange": exchange, "routing_key": routing_key,
                             "body": body, "correlation_id": self.correlation_id})

    def consumed(self, env: dict, consumer: str) -> bool:
        """Whether ``consumer`` already processed this event (the inbox)."""
        return self.session.execute(
            sa.select(self._inbox.c.event_id).where(
                self._inbox.c.event_id == str(env["event_id"]), self._inbox.c.consumer == consumer)
        ).first() is not None

    def consume(self, env: dict, consumer: str) -> None:
        """Record that ``consumer`` processed this event, in this transaction.

        Raises AlreadyConsumed when it did before (the inbox)."""
        if self.consumed(env, consumer):
            raise AlreadyConsumed(env["event_id"])
        try:
            self.session.execute(self._inbox.insert().values(
                event_id=str(env["event_id"]), consumer=consumer, event_type=env["type"],
                processed_at=utcnow()))
        except IntegrityError:
            # a concurrent delivery of the same event committed first
            self.session.rollback()
            raise AlreadyConsumed(env["event_id"]) from None

    def emit_many(self, source: str, name: str, items, chunk: int = 5000) -> int:
        """Many events of one type (``items``: ``(subject, payload)``, payloads
        plain JSON), written to the outbox now, in this transaction — bulk work
        (a standard change's per-case events, a reconciliation's lines) without
        an object and a schema dump per row. COPY on PostgreSQL (a multi-row
        INSERT through psycopg2 costs ~50 µs a row), executemany on SQLite.
        The commit wakes the relay as for any event. Returns how many."""
        connection = self.session.connection()
        copy = connection.dialect.name == "postgresql"
        now, rows, written = utcnow(), [], 0
        exchange = f"{source}.events"

        def flush():
            if copy:
                _copy_outbox_rows(connection, rows)
            else:
                self.session.execute(self._outbox.insert(), rows)

        for event_id, body in encode_many(source, name, items, self.actor, self.correlation_id, now):
            rows.append({"event_id": event_id, "exchange": exchange, "routing_key": name, "body": body,
                         "correlation_id": self.correlation_id, "created_at": now})
            if len(rows) >= chunk:
                flush()
                written, rows = written + len(rows), []
        if rows:
            flush()
            written += len(rows)
        self._bulk_written += written
        return written

    def _collect(self) -> list[Event]:
        events = list(self._events)
        self._events.clear()
        seen = set()
        recorders = self.session.info.pop("dibao_recorders", [])
        for obj in recorders + list(self.session.new) + list(self.session.identity_map.values()):
            if id(obj) in seen or not isinstance(obj, RecordsEvents):
                continue
            seen.add(id(obj))
            events.extend(obj.pop_events())
        return events

    @contextmanager
    def savepoint(self):
        """One command inside a larger transaction (bulk work): its
        ``commit()`` only flushes; if it raises, just its own writes and
        events are undone. The enclosing ``commit()`` commits them all."""
        marker = len(self._events)
        recorded = len(self.session.info.get("dibao_recorders", []))
        nested = self.session.begin_nested()
        self._deferred += 1
        try:
            yield self
            nested.commit()
        except BaseException:
            nested.rollback()
            del self._events[marker:]
            undone = self.session.info.get("dibao_recorders", [])[recorded:]
            del self.session.info.get("dibao_recorders", [])[recorded:]
            for obj in undone:
                _PENDING_EVENTS.pop(obj, None)
            raise
        finally:
            self._deferred -= 1

    def commit(self) -> None:
        if self.read_only:
            raise RuntimeError("a read-only unit of work cannot commit")
        self.session.flush()
        if self._deferred:
            return
        events = self._collect()
        if self._command is not None and not self._command.recorded:
            events.append(self._command.pending_event(events))   # atomic with the state change
        now = utcnow()
        rows = []
        for ev in events:
            row, env = outbox_row(ev, self.actor, self.correlation_id, now)
            rows.append(row)
            self.committed_events.append(env)
        rows += [dict(row, created_at=now) for row in self._direct]
        self._direct.clear()
        if rows:
            self.session.execute(self._outbox.insert(), rows)
        try:
            self.session.commit()
        except IntegrityError:
            self.session.rollback()
            raise
        if self._command is not None:
            self._command.recorded = True
        if (rows or self._bulk_written) and self._on_commit:
            self._on_commit()
        self._bulk_written = 0

    def commit_refused(self, exc: BaseException) -> None:
        """Commit although the call is refused with ``exc`` — what a refusal
        must keep (a failed login's count and its event) — with the call's
        command record saying it was refused. The caller raises ``exc`` next."""
        if self._command is not None:
            self._command.refused = exc
        self.commit()

    def rollback(self) -> None:
        self._events.clear()
        self._direct.clear()
        self._bulk_written = 0
        self.session.rollback()


OUTBOX_COLUMNS = ("event_id", "exchange", "routing_key", "body", "correlation_id", "created_at")


def _copy_outbox_rows(connection, rows: list[dict]) -> None:
    """Outbox rows by COPY (PostgreSQL). psycopg2 refuses COPY while
    psycogreen's wait callback is installed (a nameko worker): it is lifted for
    the COPY, which then blocks this process's green threads for its duration
    (about half a second per 100,000 events)."""
    import psycopg2.extensions

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for row in rows:
        writer.writerow([row[c].isoformat() if c == "created_at" else row[c] for c in OUTBOX_COLUMNS])
    buffer.seek(0)
    callback = psycopg2.extensions.get_wait_callback()
    cursor = connection.connection.dbapi_connection.cursor()
    try:
        psycopg2.extensions.set_wait_callback(None)
        # FORCE_NOT_NULL: an empty correlation id is "", not NULL
        cursor.copy_expert(f"COPY outbox ({', '.join(OUTBOX_COLUMNS)}) FROM STDIN "
                           f"WITH (FORMAT csv, FORCE_NOT_NULL (correlation_id))", buffer)
    finally:
        psycopg2.extensions.set_wait_callback(callback)
        cursor.close()


class ServiceDatabase:
    """Engine, sessions, migrations and outbox of one service, outside nameko.

    The nameko ``Database`` provider wraps one; the CLI, tests and
    benchmarks build one directly.
    """

    def __init__(self, service: str, uri: str, metadata: sa.MetaData, migrations: str | Path | None,
                 profile: profiles.CryptoProfile | None = None):
        self.service = service
        self.uri = uri
        self.metadata = metadata
        metadata.info["dibao_service"] = service   # whose cipher opens its encrypted columns (shared.sealing)
        #: the crypto profile this process runs (shared.profiles); the database must have been made with it
        self.profile = profile or profiles.current()
        self.migrations = Path(migrations) if migrations else None
        self.engine = make_engine(uri)
        self.session_factory = sessionmaker(self.engine, expire_on_commit=False)
        self.read_session_factory = sessionmaker(self.engine.execution_options(dibao_read_only=True),
                                                 expire_on_commit=False)
        self.outbox = metadata.tables["outbox"]
        self.inbox = metadata.tables["inbox"]

    def migrate(self) -> None:
        """Alembic to head; without migrations (tools, tests) create the tables.
        First the database's crypto profile: recorded when new, else it must be
        this process's (:class:`shared.profiles.ProfileMismatch`)."""
        profiles.check_database_profile(self.engine, self.service, self.profile)
        if self.migrations is None:
            self.metadata.create_all(self.engine)
            return
        from shared.migrations import upgrade
        try:
            upgrade(self.engine, self.migrations, self.service)
        except sa.exc.ProgrammingError as exc:
            if getattr(exc.orig, "pgcode", None) != "42501":   # insufficient_privilege
                raise
            raise RuntimeError(
                f"{self.service}: the schema is not at its latest migration and this database role may not "
                f"migrate it (it is the service's, not the owner's): run `dibao migrate {self.service}` "
                f"with DB_MIGRATE_URIS.{self.service} (or `dibao db roles`) first") from None

    def unit_of_work(self, actor: dict | None = None, correlation_id: str = "", on_commit=None,
                     command=None) -> UnitOfWork:
        return UnitOfWork(self.session_factory, self.service, self.outbox, self.inbox,
                          actor, correlation_id or "", on_commit, command=command)

    def commit_event(self, event: Event, actor: dict | None = None, correlation_id: str = "",
                     on_commit=None) -> None:
        """One event in a small transaction of its own (a refused call's record)."""
        with self.unit_of_work(actor, correlation_id, on_commit) as uow:
            uow.emit(event)
            uow.commit()

    def reader(self, actor: dict | None = None) -> UnitOfWork:
        """A read-only unit of work: queries only, no lock, no commit."""
        return UnitOfWork(self.read_session_factory, self.service, self.outbox, self.inbox,
                          actor, "", None, read_only=True)

    @contextmanager
    def session(self):
        with self.read_session_factory() as session:
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


class UnitOfWorkFactory:
    """What a worker gets: ``with self.db() as uow: ...; uow.commit()``."""

    def __init__(self, database: ServiceDatabase, actor: dict | None, correlation_id: str, on_commit,
                 command=None):
        self._db = database
        self._actor = actor
        self._correlation_id = correlation_id
        self._on_commit = on_commit
        self._command = command

    def __call__(self) -> UnitOfWork:
        if self._command is not None:
            self._command.wrote = True
        return self._db.unit_of_work(self._actor, self._correlation_id, self._on_commit, self._command)

    def consume(self, body, consumer: str, handler, *args) -> None:
        """An event from another service, taken in once (the inbox): parse it,
        note it as processed by ``<service>.<consumer>``, run ``handler(uow,
        event, *args)`` and commit, in one transaction. A redelivery raises
        AlreadyConsumed, which :func:`shared.inbox.consume_event` acks."""
        event = parse(body)
        with self() as uow:
            uow.consume(event, f"{self._db.service}.{consumer}")
            handler(uow, event, *args)
            uow.commit()

    def read(self) -> UnitOfWork:
        """A read-only unit of work (``with self.db.read() as uow``) for queries."""
        return self._db.reader(self._actor)

    def answers(self) -> None:
        """The health check's half that is the database: it answers a query (``ping``)."""
        with self.read() as uow:
            uow.session.execute(sa.text("SELECT 1"))


class Database(DependencyProvider):
    """A service's database, its migrations and its outbox relay.

    Declared on the service class: ``db = Database("intake", Base.metadata,
    MIGRATIONS)``. ``setup()`` builds the engine and migrates; ``start()``
    starts the relay that publishes committed events. The events a call
    commits carry its verified actor (the token checked once per container:
    shared.identity.TokenVerification).
    """

    verification = TokenVerification()

    def __init__(self, service: str, metadata: sa.MetaData, migrations: str | Path | None, relay: bool = True):
        self.service = service
        self.metadata = metadata
        self.migrations = migrations
        self.relay_enabled = relay
        self.database: ServiceDatabase | None = None
        self.relay = None
        self._lock = threading.Lock()

    def setup(self):
        config = self.container.config
        uses_cipher = encrypts(self.metadata)
        try:   # missing, published or malformed: refuse to start, naming the setting
            profile = profiles.use(config)
            require_secrets(config, self.service, uses_cipher)
        except (SecretError, ValueError) as exc:
            log.critical("%s", exc)
            raise
        if uses_cipher:
            configure_cipher(config, self.service)
        self.database = ServiceDatabase(self.service, config["DB_URIS"][self.service],
                                        self.metadata, self.migrations, profile)
        try:
            self.database.migrate()
        except profiles.ProfileMismatch as exc:
            log.critical("%s", exc)
            raise
        if self.relay_enabled:
            from shared.outbox import OutboxRelay
            self.relay = OutboxRelay.from_config(self.database, config)

    def start(self):
        if self.relay:
            self.relay.declare_topology()
            self.container.spawn_managed_thread(self.relay.run, identifier=f"{self.service}.outbox_relay")

    def stop(self):
        if self.relay:
            self.relay.stop()
        if self.database:
            self.database.dispose()

    def kill(self):
        self.stop()

    def get_dependency(self, worker_ctx):
        data = worker_ctx.context_data
        actor = actor_of(worker_ctx, self.verification)
        correlation_id = data.get("correlation_id") or (worker_ctx.call_id_stack or [worker_ctx.call_id])[0]
        on_commit = self.relay.wake if self.relay else None
        actor = actor.to_dict() if actor else None
        command = None
        if getattr(worker_ctx.entrypoint, "records_commands", False):   # an @rpc call: shared.commands
            command = CommandRecorder(worker_ctx, worker_ctx.entrypoint.record_reads,
                                      lambda event: self.database.commit_event(event, actor, correlation_id,
                                                                               on_commit))
            worker_ctx.dibao_command = command
        return UnitOfWorkFactory(self.database, actor, correlation_id, on_commit, command)

    def worker_setup(self, worker_ctx):
        gate(worker_ctx, self.verification)
