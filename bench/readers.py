"""A bounded local load: ``concurrency`` threads reading one URL for
``seconds``, each request timed. Run as its own process (no eventlet, not
the services' process): ``python -m bench.readers URL CONCURRENCY SECONDS``;
prints one JSON line: requests, errors, statuses, p50/p95/p99/max in ms,
requests per second. Standard library only (urllib, keep-alive-less GETs,
as a browser's first visit)."""
from __future__ import annotations

import json
import math
import sys
import threading
import time
import urllib.error
import urllib.request


def percentile(values, p: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(len(ordered) * p / 100)) - 1] if ordered else 0.0


def read(url: str, concurrency: int, seconds: float) -> dict:
    times: list[float] = []
    statuses: dict[int, int] = {}
    errors = [0]
    lock = threading.Lock()
    start_gate = threading.Barrier(concurrency + 1)
    stop_at = [0.0]

    def reader():
        start_gate.wait()
        while time.perf_counter() < stop_at[0]:
            began = time.perf_counter()
            try:
                with urllib.request.urlopen(url, timeout=30) as answer:
                    answer.read()
                    status = answer.status
            except urllib.error.HTTPError as exc:
                status = exc.code
            except OSError:
                with lock:
                    errors[0] += 1
                continue
            took = time.perf_counter() - began
            with lock:
                times.append(took)
                statuses[status] = statuses.get(status, 0) + 1

    threads = [threading.Thread(target=reader, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    stop_at[0] = time.perf_counter() + seconds
    began = time.perf_counter()
    start_gate.wait()
    for t in threads:
        t.join()
    wall = time.perf_counter() - began
    return {"concurrency": concurrency, "seconds": round(wall, 2), "requests": len(times), "errors": errors[0],
            "statuses": {str(k): v for k, v in sorted(statuses.items())},
            "p50_ms": round(percentile(times, 50) * 1000, 1), "p95_ms": round(percentile(times, 95) * 1000, 1),
            "p99_ms": round(percentile(times, 99) * 1000, 1), "max_ms": round(max(times, default=0) * 1000, 1),
            "requests_per_s": round(len(times) / wall, 1)}


if __name__ == "__main__":
    url, concurrency, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    print(json.dumps(read(url, concurrency, seconds)))
