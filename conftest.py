"""Root conftest: eventlet must patch the world before anything imports
sockets (what `nameko test` would do), with its deprecation notice silenced."""
import os
import warnings

# selenium (the console's browser tests) brings trio, which registers a hypothesis plugin; trio
# cannot be imported once eventlet has patched the socket module, and hypothesis would load it
# on its first import. The project registers no hypothesis plugin of its own.
os.environ.setdefault("HYPOTHESIS_NO_PLUGINS", "1")

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
warnings.filterwarnings("ignore", category=DeprecationWarning, module="eventlet")

import eventlet  # noqa: E402

eventlet.monkey_patch()

# `pytest --shard K/N` and `--shard-times FILE`: the suite as N processes (tests/shards.py, `make test`)
pytest_plugins = ["tests.shards"]
