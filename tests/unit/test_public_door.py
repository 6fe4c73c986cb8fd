"""The public pages' rate limits (services/gateway/door.py): a sliding window per address."""
from __future__ import annotations

import pytest

from services.gateway.door import Limit, SlidingWindow


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_an_address_gets_its_count_per_window_and_the_others_theirs():
    clock = Clock()
    window = SlidingWindow(Limit(2, 60), clock)
    assert window.take("10.0.0.1") == 0 and window.take("10.0.0.1") == 0
    wait = window.take("10.0.0.1")
    assert 59 <= wait <= 60                          # refused, and told how long
    assert window.take("10.0.0.2") == 0              # another address is not held back
    clock.now += 30
    assert window.take("10.0.0.1") > 0               # refusals do not count, the window slides
    clock.now += 31
    assert window.take("10.0.0.1") == 0


@pytest.mark.parametrize("text", ["5", "five/60", "0/60", "5/0", "-1/60", ""])
def test_a_limit_is_count_slash_seconds(text):
    with pytest.raises(ValueError, match="PUBLIC_STATUS_LIMIT"):
        Limit.parse(text, "PUBLIC_STATUS_LIMIT")
    assert Limit.parse("10/600", "PUBLIC_STATUS_LIMIT") == Limit(10, 600.0)
