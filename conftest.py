"""Root conftest: eventlet must patch the world before anything imports
sockets (what `nameko test` would do), with its deprecation notice silenced."""
import warnings

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
warnings.filterwarnings("ignore", category=DeprecationWarning, module="eventlet")

import eventlet  # noqa: E402

eventlet.monkey_patch()
