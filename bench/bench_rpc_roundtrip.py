"""Intake RPC round trip vs a bare nameko echo RPC, measured in the same run.

Target (issue): the median of ``intake.get_application`` — token
verification, a database read on SQLite, a schema dump — is at most 1.5×
the median of a trivial nameko ``echo`` RPC served by a container in the
same vhost, called through the same ClusterRpcProxy. The write RPC
``register_household`` (a sample household: validation, encryption, the
blind index, an outbox event) is measured the same way afterwards, for
information only.

Baseline and subject are interleaved — 20 rounds of 50 calls each, in ABBA
order — so that the machine's drift (other processes come and go on a
shared 2-core box) lands on both. Client and containers share one process,
as in the tests: the client's own cost is in both figures.
"""
from __future__ import annotations

import statistics
import time

import pytest
from nameko.rpc import rpc

from bench.support import record, summary_ms
from services.intake.service import IntakeService
from shared.identity import Role
from shared.sample import SampleDistrict
from shared.testing import rpc_as
from tests.helpers import COMMUNITY, yesterday

pytestmark = pytest.mark.integration

ROUNDS = 20
CALLS = 50           # per round and per RPC: 1,000 calls of each in all
WARMUP = 50
WRITE_CALLS = 10     # register_household per round (information only): 200 in all
TARGET_RATIO = 1.5


class BenchEcho:
    """The baseline: plain nameko, nothing of Dibao's."""

    name = "bench_echo"

    @rpc
    def echo(self, x):
        return x


def unique_households(seed: int, count: int, community: str = COMMUNITY) -> list[dict]:
    """``count`` sample households, no resident ID number used twice (a
    register_household of a known person is a Conflict, not a write)."""
    sample, seen, out = SampleDistrict(seed=seed), set(), []
    while len(out) < count:
        h = sample.household(community)
        ids = {m["resident_id"] for m in h["members"]}
        if ids & seen or len(ids) < len(h["members"]):
            continue
        seen |= ids
        out.append(h)
    return out


def timed_calls(fn, args_list) -> list[float]:
    out = []
    for args in args_list:
        start = time.perf_counter()
        fn(*args)
        out.append(time.perf_counter() - start)
    return out


def test_intake_rpc_round_trip_vs_echo(container_factory, sqlite_config):
    config = sqlite_config
    container_factory(IntakeService, config).start()
    container_factory(BenchEcho, config).start()
    households = unique_households(seed=20240, count=1 + WARMUP // 5 + ROUNDS * WRITE_CALLS)

    with rpc_as(config, Role.COMMUNITY_OFFICER, COMMUNITY, user="wang.officer", timeout=60) as proxy:
        first = proxy.intake.register_household(households.pop())
        app = proxy.intake.submit_application({"household_id": first["household_id"],
                                               "accepted_on": yesterday(), "reason": "因病致贫"})
        app_id = app["id"]
        echo, read = proxy.bench_echo.echo, proxy.intake.get_application
        write = proxy.intake.register_household
        assert echo(app_id) == app_id and read(app_id)["id"] == app_id

        # warm-up: connections, the reply queue, SQLAlchemy's statement cache, specialised bytecode
        timed_calls(echo, [(app_id,)] * WARMUP)
        timed_calls(read, [(app_id,)] * WARMUP)
        timed_calls(write, [(households.pop(),) for _ in range(WARMUP // 5)])

        echo_t, read_t = [], []
        for r in range(ROUNDS):
            pair = [(echo_t, echo), (read_t, read)]
            for sink, fn in (pair if r % 2 == 0 else pair[::-1]):
                sink += timed_calls(fn, [(app_id,)] * CALLS)

        # then, apart (each write wakes the outbox relay, whose publishing
        # would otherwise spill into the read figures): writes vs echo
        write_t, write_echo_t = [], []
        for r in range(ROUNDS):
            batch = [(households.pop(),) for _ in range(WRITE_CALLS)]
            if r % 2 == 0:
                write_t += timed_calls(write, batch)
                write_echo_t += timed_calls(echo, [(app_id,)] * WRITE_CALLS)
            else:
                write_echo_t += timed_calls(echo, [(app_id,)] * WRITE_CALLS)
                write_t += timed_calls(write, batch)

    echo_s, read_s, write_s = summary_ms(echo_t), summary_ms(read_t), summary_ms(write_t)
    per_round = [statistics.median(read_t[i * CALLS:(i + 1) * CALLS])
                 / statistics.median(echo_t[i * CALLS:(i + 1) * CALLS]) for i in range(ROUNDS)]
    ratio = read_s["median_ms"] / echo_s["median_ms"]
    figures = {
        "rounds": ROUNDS, "calls_per_round": CALLS, "db": "sqlite",
        "echo": echo_s, "get_application": read_s,
        "ratio_median_read_vs_echo": round(ratio, 3),
        "ratio_p95_read_vs_echo": round(read_s["p95_ms"] / echo_s["p95_ms"], 3),
        "register_household": write_s,
        "echo_beside_writes": summary_ms(write_echo_t),
        "ratio_median_write_vs_echo": round(write_s["median_ms"] / summary_ms(write_echo_t)["median_ms"], 3),
        "per_round_ratio_read_vs_echo": {
            "min": round(min(per_round), 3), "median": round(statistics.median(per_round), 3),
            "max": round(max(per_round), 3)},
    }
    met = ratio <= TARGET_RATIO
    record("rpc_roundtrip", figures, f"median get_application / median echo <= {TARGET_RATIO}", met)
    assert met, f"intake read round trip is {ratio:.2f}x the echo round trip (target <= {TARGET_RATIO})"
