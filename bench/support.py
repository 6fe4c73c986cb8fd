"""What every benchmark shares: timing statistics, the machine description,
and the recorder that prints a benchmark's figures and appends them as one
JSON line to ``bench/results/<name>.jsonl`` (git-ignored).

Benchmarks compare against a baseline measured in the same run (a ratio),
because the machine is small and noisy: absolute figures move by tens of
per cent from one run to the next, ratios much less.
"""
from __future__ import annotations

import json
import math
import os
import platform
import statistics
import subprocess
import time
import urllib.request
from base64 import b64encode
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

RESULTS = Path(__file__).parent / "results"
REPO = Path(__file__).resolve().parent.parent


def percentile(values, p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def summary_ms(seconds: list[float]) -> dict:
    """median / p95 / mean of per-call times, in milliseconds."""
    return {"n": len(seconds),
            "median_ms": round(statistics.median(seconds) * 1000, 3),
            "p95_ms": round(percentile(seconds, 95) * 1000, 3),
            "mean_ms": round(statistics.fmean(seconds) * 1000, 3)}


class Stopwatch:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_gib() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024)
    except OSError:
        pass
    return None


def _rabbitmq_version() -> str | None:
    from shared.testing import MGMT_API
    parts = urlsplit(MGMT_API)
    req = urllib.request.Request(f"{parts.scheme}://{parts.hostname}:{parts.port}/api/overview", headers={
        "Authorization": "Basic " + b64encode(f"{parts.username}:{parts.password}".encode()).decode()})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return json.load(resp).get("rabbitmq_version")
    except Exception:  # noqa: BLE001 - informative only
        return None


def _postgres_version() -> str | None:
    try:
        import psycopg2

        from shared.testing import PG_ADMIN
        with psycopg2.connect(PG_ADMIN, connect_timeout=3) as conn, conn.cursor() as cur:
            cur.execute("SHOW server_version")
            return cur.fetchone()[0]
    except Exception:  # noqa: BLE001 - informative only
        return None


def _git_commit() -> str | None:
    """HEAD's short hash, with ``+dirty`` when tracked files are modified."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                              text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return (head + ("+dirty" if dirty else "")) or None
    except (OSError, subprocess.SubprocessError):
        return None


@lru_cache(maxsize=1)
def machine() -> dict:
    return {"nproc": os.cpu_count(), "mem_gib": _mem_gib(), "cpu": _cpu_model(),
            "python": platform.python_version(), "rabbitmq": _rabbitmq_version(),
            "postgresql": _postgres_version(), "git": _git_commit()}


def record(name: str, figures: dict, target: str, met: bool) -> dict:
    """Print the figures and append them to bench/results/<name>.jsonl."""
    now = datetime.now(timezone.utc)
    line = {"bench": name, "date": now.strftime("%Y-%m-%d"), "utc": now.isoformat(timespec="seconds"),
            "machine": machine(), "loadavg": [round(x, 2) for x in os.getloadavg()],
            "target": target, "met": met, "figures": figures}
    RESULTS.mkdir(parents=True, exist_ok=True)
    with open(RESULTS / f"{name}.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps(line, ensure_ascii=False) + "\n")
    print(f"\n=== {name}: {'MET' if met else 'MISSED'} ({target}); load average {line['loadavg']}")
    for key, value in figures.items():
        print(f"    {key}: {value}")
    return line
