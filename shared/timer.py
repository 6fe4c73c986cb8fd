"""nameko's ``@timer`` with its interval read from the configuration.

``@config_timer("NOTICE_CHECK_SECONDS", default=60)`` fires every
``config["NOTICE_CHECK_SECONDS"]`` seconds, and once at start-up (eager):
work that is due is computed from stored state, so what fell due while the
service was down is done as soon as it is back.
"""
from __future__ import annotations

from nameko.timer import Timer


class ConfigTimer(Timer):
    def __init__(self, key: str, default: float, eager: bool = True, **kwargs):
        self.key = key
        self.default = default
        super().__init__(interval=default, eager=eager, **kwargs)

    def setup(self):
        interval = float(self.container.config.get(self.key, self.default))
        if interval <= 0:
            raise ValueError(f"{self.key} must be a positive number of seconds, not {interval}")
        self.interval = interval


config_timer = ConfigTimer.decorator
