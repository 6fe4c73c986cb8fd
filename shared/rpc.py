"""The one RPC entrypoint and the one error mapping of every service.

``@rpc`` is nameko's, plus: the typed errors of :mod:`shared.errors` are
*expected* (answered to the caller, logged as a warning, not as a crash),
marshmallow's ValidationError becomes ValidationFailed naming the fields,
and anything else is answered as ``InternalError`` with a reference id —
never a stack trace or an internal message. The traceback goes to the log.

``load(schema, data)`` is how every method reads its input.
"""
from __future__ import annotations

import logging

from marshmallow import Schema, ValidationError
from nameko.exceptions import deserialize_to_instance
from nameko.rpc import Rpc

from shared.commands import recorder_of
from shared.db import Database
from shared.errors import EXPECTED_ERRORS, DibaoError, ValidationFailed
from shared.problems import OperationalProblem, classify
from shared.rpc_queues import OwnRpcConsumer

log = logging.getLogger(__name__)


class _ExpectedErrorsBriefly(logging.Filter):
    """nameko logs an expected (typed) error as a warning *with* its
    traceback; a refused call is routine, so keep the one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg.startswith("(expected) error"):
            record.exc_info = None
            record.exc_text = None
        return True


logging.getLogger("nameko.containers").addFilter(_ExpectedErrorsBriefly())


@deserialize_to_instance
class InternalError(DibaoError):
    """Something broke on our side; ``details.reference`` finds it in the log."""

    code = "internal_error"


class DibaoRpc(Rpc):
    """nameko's ``@rpc`` plus the error mapping and the command record
    (:mod:`shared.commands`): ``@rpc(record_reads=True)`` records even a
    successful call that wrote nothing (the audit service's queries)."""

    records_commands = True
    #: ``rpc-<service>`` on ``nameko-rpc`` declared passively by a restricted user (shared.rpc_queues)
    rpc_consumer = OwnRpcConsumer()

    def __init__(self, record_reads: bool = False, **kwargs):
        kwargs.setdefault("expected_exceptions", EXPECTED_ERRORS + (InternalError, OperationalProblem))
        self.record_reads = record_reads
        super().__init__(**kwargs)

    def setup(self):
        # The caller's token is checked before the method runs (shared.permissions.gate,
        # from the Identity and Database dependencies' worker_setup): a service
        # answering RPC without either would take any token unchecked.
        from shared.identity import Identity

        if not any(isinstance(dep, (Identity, Database)) for dep in self.container.dependencies):
            raise RuntimeError(f"{self.container.service_name}: an @rpc service declares Identity() "
                               "(tokens are checked before each call)")
        super().setup()

    def handle_result(self, message, worker_ctx, result, exc_info):
        if exc_info is not None:
            exc_info = self._public_error(worker_ctx, exc_info)
        recorder = recorder_of(worker_ctx)
        if recorder is not None:
            exc = exc_info[1] if exc_info is not None else None
            if recorder.needs_own_record(exc):
                recorder.record_alone(exc)
        return super().handle_result(message, worker_ctx, result, exc_info)

    def _public_error(self, worker_ctx, exc_info):
        exc = exc_info[1]
        problem = None if isinstance(exc, DibaoError) else classify(exc)
        if isinstance(exc, ValidationError):
            exc = ValidationFailed.from_messages(exc.messages)
        elif problem is not None:
            log.warning("%s could not write what it needed (call %s): %s", worker_ctx.service_name,
                        worker_ctx.call_id, problem.detail)
            exc = OperationalProblem(problem.detail, {"problem": problem.code})
        elif not isinstance(exc, DibaoError):
            reference = worker_ctx.call_id
            log.error("unexpected error in %s (reference %s)", worker_ctx.call_id, reference,
                      exc_info=exc_info)
            exc = InternalError("internal error", {"reference": reference})
        else:
            return exc_info
        return (type(exc), exc, None)


rpc = DibaoRpc.decorator


_SCHEMAS: dict[type, Schema] = {}


def _instance(schema_cls: type[Schema]) -> Schema:
    """Schemas are stateless between loads: build each once (building costs
    about ten times a load)."""
    schema = _SCHEMAS.get(schema_cls)
    if schema is None:
        schema = _SCHEMAS[schema_cls] = schema_cls()
    return schema


def load(schema: Schema | type[Schema], data, **kwargs):
    """Load input with a schema, or raise ValidationFailed naming the fields."""
    if isinstance(schema, type):
        schema = _instance(schema)
    if data is None:
        data = {}
    if not isinstance(data, dict) and not kwargs.get("many"):
        raise ValidationFailed.field("_schema", "expected an object")
    unstorable = _unstorable_text(data)
    if unstorable:
        raise ValidationFailed.field(*unstorable)
    try:
        return schema.load(data, **kwargs)
    except ValidationError as exc:
        raise ValidationFailed.from_messages(exc.messages) from None


def _unstorable_text(data):
    """``(field, problem)`` for the first string no database can store — a NUL
    character (PostgreSQL refuses it) or a lone surrogate (not UTF-8: SQLite
    and PostgreSQL refuse it) — in values or keys, else None. Iterative: any
    nesting the JSON decoder accepted is walked without recursion."""
    stack = [("", data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                return path or "_schema", "contains a NUL character"
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return path or "_schema", "is not valid Unicode text (lone surrogate)"
        elif isinstance(value, (dict, list, tuple)):
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in reversed(list(items)):
                name = str(key).encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
                where = f"{path}.{name}" if path else name
                stack.append((where, item))
                if isinstance(key, str):
                    stack.append((where, key))
    return None
