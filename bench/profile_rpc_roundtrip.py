"""Where the time of ``intake.get_application`` goes, next to the echo RPC.

Not a benchmark (``make bench`` does not collect it: the name does not
match ``bench_*.py``); run it by path when the RPC ratio needs explaining:

    .venv/bin/python -m pytest bench/profile_rpc_roundtrip.py -q -s

Same set-up as ``bench_rpc_roundtrip.py`` (an intake container on SQLite
and a plain echo container in one vhost, one ClusterRpcProxy, 20 ABBA
rounds of 50 calls each). It prints the medians of:

* the client's round trip of each RPC (as the benchmark);
* inside the containers, per call: nameko's ``_run_worker`` as a whole and
  its parts — dependency injection (``get_dependency`` of ``db``, ``caller``,
  ``ref``), ``worker_setup``/``worker_result``/``worker_teardown``, the
  service method, and ``handle_result`` (serialising and publishing the
  reply);
* the same read done in-process, without nameko and RabbitMQ (token check,
  read unit of work, the joined SELECT, the authorisation, the dumps), step
  by step;
* the size of each reply;

and then cProfiles of the whole process (client and both containers share
it) over 1,000 calls of each RPC, and of 1,000 in-process reads. Timers
add a few µs per call; cProfile slows the profiled code several times.
"""
from __future__ import annotations

import cProfile
import functools
import io
import json
import pstats
import statistics
import time
from collections import defaultdict

from nameko.containers import ServiceContainer
from nameko.rpc import Rpc

from bench.bench_rpc_roundtrip import CALLS, ROUNDS, WARMUP, BenchEcho, timed_calls, unique_households
from services.intake import handlers
from services.intake.models import Base
from services.intake.service import APPLICATION_OUT, INVESTIGATION_OUTS, MIGRATIONS, IntakeService
from shared.db import ServiceDatabase
from shared.identity import AUTH_TOKEN_KEY, Role, TokenVerifier
from shared.testing import context, rpc_as
from tests.helpers import COMMUNITY, yesterday

PROFILE_CALLS = 1000
DIRECT_CALLS = 2000

TIMES: dict[tuple[str, str], list[float]] = defaultdict(list)


def _timed(key_fn, fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            TIMES[key_fn(*args)].append(time.perf_counter() - start)
    return wrapper


def _svc(container, *_):
    return container.service_name


def instrument(monkeypatch):
    """Timers on nameko's worker life cycle, per service."""
    monkeypatch.setattr(ServiceContainer, "_run_worker", _timed(lambda c, *a: (_svc(c), "run_worker"),
                                                                ServiceContainer._run_worker))
    monkeypatch.setattr(ServiceContainer, "_inject_dependencies",
                        _timed(lambda c, *a: (_svc(c), "inject_dependencies"), ServiceContainer._inject_dependencies))
    for hook in ("_worker_setup", "_worker_result", "_worker_teardown"):
        monkeypatch.setattr(ServiceContainer, hook, _timed(lambda c, *a, h=hook: (_svc(c), h.strip("_")),
                                                           getattr(ServiceContainer, hook)))
    monkeypatch.setattr(Rpc, "handle_result", _timed(lambda e, *a: (e.container.service_name, "handle_result"),
                                                     Rpc.handle_result))
    for name, provider in (("db", IntakeService.db), ("caller", IntakeService.caller), ("ref", IntakeService.ref)):
        cls = type(provider)
        if not getattr(cls.get_dependency, "_bench_timed", False):
            wrapped = _timed(lambda p, *a: ("intake", f"get_dependency {p.attr_name}"), cls.get_dependency)
            wrapped._bench_timed = True
            monkeypatch.setattr(cls, "get_dependency", wrapped)
    monkeypatch.setattr(IntakeService, "get_application",
                        _timed(lambda *a: ("intake", "method"), IntakeService.get_application))
    monkeypatch.setattr(BenchEcho, "echo", _timed(lambda *a: ("bench_echo", "method"), BenchEcho.echo))


def ms(values) -> str:
    return f"{statistics.median(values) * 1000:7.3f}" if values else "      -"


def direct_read(config: dict, token: str, app_id: str, calls: int = DIRECT_CALLS,
                profile: cProfile.Profile | None = None) -> dict[str, list[float]]:
    """get_application's body in-process, on the same SQLite file: per step."""
    db = ServiceDatabase("intake", config["DB_URIS"]["intake"], Base.metadata, MIGRATIONS)
    verifier = TokenVerifier.from_config(config)   # EdDSA, identity's public key
    steps: dict[str, list[float]] = defaultdict(list)
    for i in range(calls + 200):
        if profile and i == 200:
            profile.enable()
        t0 = time.perf_counter()
        actor = verifier.verify(token)          # cached signature check; expiry + revocation
        caller_actor = verifier.verify(token)   # the gate and Identity share one verified actor per call
        t1 = time.perf_counter()
        uow = db.reader(actor.to_dict())
        uow.__enter__()
        t2 = time.perf_counter()
        application = handlers.load_application(uow, caller_actor, handlers.READERS, app_id,
                                                with_investigations=True)   # with role + jurisdiction
        t3 = time.perf_counter()
        out = APPLICATION_OUT.dump(application)
        out["investigations"] = INVESTIGATION_OUTS.dump(application.investigations)
        t4 = time.perf_counter()
        uow.__exit__(None, None, None)
        t5 = time.perf_counter()
        if i >= 200:   # warm-up
            for name, dt in (("tokens (2 x verify, cached)", t1 - t0), ("reader() + session", t2 - t1),
                             ("load_application (joined SELECT + require)", t3 - t2), ("dumps", t4 - t3),
                             ("session close", t5 - t4), ("total", t5 - t0)):
                steps[name].append(dt)
    if profile:
        profile.disable()
    db.dispose()
    return steps


def test_profile_get_application(container_factory, sqlite_config, monkeypatch):
    config = sqlite_config
    instrument(monkeypatch)
    container_factory(IntakeService, config).start()
    container_factory(BenchEcho, config).start()
    households = unique_households(seed=20241, count=1)

    with rpc_as(config, Role.COMMUNITY_OFFICER, COMMUNITY, user="wang.officer", timeout=60) as proxy:
        first = proxy.intake.register_household(households.pop())
        app = proxy.intake.submit_application({"household_id": first["household_id"],
                                               "accepted_on": yesterday(), "reason": "因病致贫"})
        app_id = app["id"]
        echo, read = proxy.bench_echo.echo, proxy.intake.get_application
        reply_sizes = {"echo": len(json.dumps(echo(app_id))), "get_application": len(json.dumps(read(app_id)))}
        timed_calls(echo, [(app_id,)] * WARMUP)
        timed_calls(read, [(app_id,)] * WARMUP)
        TIMES.clear()

        rtt = {"echo": [], "get_application": []}
        for r in range(ROUNDS):
            pair = [("echo", echo), ("get_application", read)]
            for name, fn in (pair if r % 2 == 0 else pair[::-1]):
                rtt[name] += timed_calls(fn, [(app_id,)] * CALLS)
        inside = dict(TIMES)
        TIMES.clear()

        profiles = {}
        for name, fn in (("echo", echo), ("get_application", read)):
            prof = cProfile.Profile()
            prof.enable()
            timed_calls(fn, [(app_id,)] * PROFILE_CALLS)
            prof.disable()
            profiles[name] = prof

    token = context(config, Role.COMMUNITY_OFFICER, COMMUNITY, user="wang.officer")[AUTH_TOKEN_KEY]
    direct = direct_read(config, token, app_id)
    profiles["in-process get_application body"] = cProfile.Profile()
    direct_read(config, token, app_id, PROFILE_CALLS, profiles["in-process get_application body"])

    print(f"\nround trip, client side (median ms, {ROUNDS} x {CALLS} calls each, ABBA):")
    for name, values in rtt.items():
        print(f"  {name:<18}{ms(values)}")
    diff = statistics.median(rtt["get_application"]) - statistics.median(rtt["echo"])
    print(f"  ratio {statistics.median(rtt['get_application']) / statistics.median(rtt['echo']):.3f}, "
          f"difference {diff * 1000:.3f} ms")
    per_round = [statistics.median(rtt["get_application"][i * CALLS:(i + 1) * CALLS])
                 / statistics.median(rtt["echo"][i * CALLS:(i + 1) * CALLS]) for i in range(ROUNDS)]
    print("  per-round ratios:", " ".join(f"{x:.2f}" for x in per_round))
    print("\ninside the containers (median ms per call):")
    parts = ["run_worker", "inject_dependencies", "get_dependency db", "get_dependency caller", "get_dependency ref",
             "worker_setup", "method", "handle_result", "worker_result", "worker_teardown"]
    print(f"  {'':<24}{'echo':>8}{'intake':>9}")
    for part in parts:
        print(f"  {part:<24}{ms(inside.get(('bench_echo', part), []))}  {ms(inside.get(('intake', part), []))}")
    print(f"\nreply size (JSON characters): {reply_sizes}")
    print(f"\nin-process, no nameko, no RabbitMQ (median ms, {DIRECT_CALLS} calls):")
    for name, values in direct.items():
        print(f"  {name:<36}{ms(values)}")
    for name, prof in profiles.items():
        out = io.StringIO()
        stats = pstats.Stats(prof, stream=out)
        print(f"\n--- cProfile, {PROFILE_CALLS} x {name}, total "
              f"{stats.total_tt:.3f} s, by tottime")
        stats.sort_stats("tottime").print_stats(25)
        stats.sort_stats("cumulative").print_stats(r"dibao|services|shared|sqlalchemy/orm/session|marshmallow/schema|"
                                                   r"nameko/containers|nameko/rpc|kombu/messaging", 30)
        print(out.getvalue())
