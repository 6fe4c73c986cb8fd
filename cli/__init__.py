"""``dibao``: the operator's and IT's command (typer + rich).

The commands live in one sub-module per concern (``up``, ``demo``,
``importer``, ``ops``, ``dlq``, ``docs``) and are assembled in
:mod:`cli.root`. This module only holds :func:`main`, the console
entry point (``dibao = "cli:main"``), which — like ``nameko run`` —
monkey-patches eventlet before anything else is imported.
"""
from __future__ import annotations

import warnings


def patch_eventlet() -> None:
    """Monkey-patch the world for eventlet, once (idempotent).

    Under pytest the root conftest has already patched; patching again would
    be harmless but re-greens modules pytest holds, so we skip it then.
    """
    warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
    warnings.filterwarnings("ignore", category=DeprecationWarning, module="eventlet")
    import eventlet
    import eventlet.patcher

    if not eventlet.patcher.is_monkey_patched("socket"):
        eventlet.monkey_patch()


def main() -> None:
    patch_eventlet()
    import logging

    # Library chatter (kombu, amqp, nameko) stays out of the commands' output;
    # `dibao up` replaces this with the config's LOGGING.
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    from cli.root import app

    app(prog_name="dibao")


def __getattr__(name: str):
    # ``from cli import app`` (tests, scripts) without importing the
    # commands when only ``main`` is needed.
    if name == "app":
        from cli.root import app

        return app
    raise AttributeError(name)
