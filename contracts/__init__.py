"""The event contracts: every event type's payload schema, version and description.

One module per producing service (``contracts/intake.py``, ``review.py``,
``notify.py``, ``payments.py``, ``audit.py``); importing a module registers its
types in :data:`shared.events.CATALOGUE`. A service imports the contracts it
produces and consumes, never another service's code; a partner bureau may
install and import them alone (see ``docs/events.md``). The contracts import
only the platform (``shared``) and marshmallow.
"""
from __future__ import annotations

import importlib
import pkgutil


def load_all() -> list[str]:
    """Register every contract module's event types; the module names, sorted."""
    names = sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))
    for name in names:
        importlib.import_module(f"{__name__}.{name}")
    return names
