"""The suite as N pytest processes side by side (``make test``).

A test process mostly waits (for RabbitMQ, PostgreSQL, the browser, the
services it started): one pytest used about 40 % of one core here. pytest-xdist
does not start under eventlet (its workers hang at "bringing up nodes"), so the
suite is cut by hand instead:

- ``pytest --shard K/N`` keeps only the K-th of N shares of the test files.
  Files, not tests, are shared out, so a module's fixtures are set up once.
  The shares are balanced on each file's seconds in ``tests/durations.json``
  (longest first, each to the lightest share); a file not in it counts as
  ``NEW_FILE_SECONDS``.
- ``python -m tests.shards [pytest arguments]`` runs the N shares at once
  (``TEST_SHARDS``, default 2; 1 runs plain pytest), each line of output marked
  with its share, and exits non-zero when any share fails (exit code 5, "no
  tests collected", counts as a failure too). Each share's whole output is also
  kept in ``var/test-shard-K.log``.
- ``--shard-times FILE`` writes the seconds each file took (setup + call +
  teardown); ``python -m tests.shards --update-durations`` runs the suite and
  writes ``tests/durations.json`` from the shares' figures.

Every resource a test uses is its own (a vhost, a database, broker users, a
port the system chose, a temporary directory), so two processes can share the
machine's RabbitMQ and PostgreSQL.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DURATIONS = ROOT / "tests" / "durations.json"
NEW_FILE_SECONDS = 10.0


def parse_shard(value: str) -> tuple[int, int]:
    try:
        k, n = (int(part) for part in value.split("/"))
    except ValueError:
        raise ValueError(f"--shard {value!r}: expected K/N, e.g. 1/2") from None
    if not 1 <= k <= n:
        raise ValueError(f"--shard {value!r}: K must be between 1 and N")
    return k, n


def share_files(files: list[str], seconds: dict[str, float], n: int) -> list[list[str]]:
    """The files cut into ``n`` shares of about equal seconds (longest
    processing time first): the same files always give the same shares."""
    shares: list[list[str]] = [[] for _ in range(n)]
    loads = [0.0] * n
    for name in sorted(files, key=lambda f: (-seconds.get(f, NEW_FILE_SECONDS), f)):
        lightest = min(range(n), key=lambda i: (loads[i], i))
        shares[lightest].append(name)
        loads[lightest] += seconds.get(name, NEW_FILE_SECONDS)
    return shares


def load_durations() -> dict[str, float]:
    try:
        return {name: float(s) for name, s in json.loads(DURATIONS.read_text()).items()}
    except FileNotFoundError:
        return {}


# --- the pytest plugin (registered by the root conftest) ---------------------

def pytest_addoption(parser):
    group = parser.getgroup("dibao shards")
    group.addoption("--shard", default=None, metavar="K/N",
                    help="run only the K-th of N shares of the test files (tests/shards.py)")
    group.addoption("--shard-times", default=None, metavar="FILE",
                    help="write the seconds each test file took to FILE (JSON)")


def _file_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def pytest_collection_modifyitems(config, items):
    value = config.getoption("--shard")
    if not value:
        return
    k, n = parse_shard(value)
    files = sorted({_file_of(item.nodeid) for item in items})
    mine = set(share_files(files, load_durations(), n)[k - 1])
    keep = [item for item in items if _file_of(item.nodeid) in mine]
    dropped = [item for item in items if _file_of(item.nodeid) not in mine]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


class _FileTimes:
    def __init__(self, path: str):
        self.path = path
        self.seconds: dict[str, float] = defaultdict(float)

    def pytest_runtest_logreport(self, report):
        self.seconds[_file_of(report.nodeid)] += report.duration

    def pytest_sessionfinish(self):
        Path(self.path).write_text(json.dumps(dict(sorted(self.seconds.items())), indent=1))


def pytest_configure(config):
    path = config.getoption("--shard-times", default=None)
    if path:
        config.pluginmanager.register(_FileTimes(path), "dibao-shard-times")


# --- the runner --------------------------------------------------------------

def _pump(stream, tag: str, log, lock: threading.Lock) -> None:
    for line in iter(stream.readline, b""):
        log.write(line)
        with lock:
            sys.stdout.buffer.write(tag.encode() + line)
            sys.stdout.flush()


def run(args: list[str], n: int, times_dir: Path | None = None) -> int:
    if n <= 1:
        return subprocess.call([sys.executable, "-m", "pytest", *args], cwd=ROOT)
    logs = ROOT / "var"
    logs.mkdir(exist_ok=True)
    lock = threading.Lock()
    running = []
    for k in range(1, n + 1):
        extra = ["--shard", f"{k}/{n}"]
        if times_dir:
            extra += ["--shard-times", str(times_dir / f"shard-{k}.json")]
        proc = subprocess.Popen([sys.executable, "-m", "pytest", *extra, *args], cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        log = open(logs / f"test-shard-{k}.log", "wb")
        pump = threading.Thread(target=_pump, args=(proc.stdout, f"[{k}/{n}] ", log, lock), daemon=True)
        pump.start()
        running.append((k, proc, pump, log))
    codes = {}
    for k, proc, pump, log in running:
        codes[k] = proc.wait()
        pump.join()
        log.close()
    for k, code in codes.items():
        print(f"shard {k}/{n}: pytest exit code {code} (var/test-shard-{k}.log)")
    return 0 if all(code == 0 for code in codes.values()) else 1


def main(argv: list[str]) -> int:
    n = int(os.environ.get("TEST_SHARDS", "2"))
    if argv[:1] == ["--update-durations"]:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            code = run(argv[1:], n, Path(tmp))
            merged: dict[str, float] = {}
            for part in Path(tmp).glob("shard-*.json"):
                merged.update(json.loads(part.read_text()))
        DURATIONS.write_text(json.dumps({f: round(s, 1) for f, s in sorted(merged.items())}, indent=1) + "\n")
        print(f"wrote {DURATIONS.relative_to(ROOT)} ({len(merged)} files, {sum(merged.values()):.0f} s in all)")
        return code
    return run(argv, n)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
