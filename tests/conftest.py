"""Fixtures for every service's tests (see shared/testing.py)."""
from __future__ import annotations

import pytest

import os

from shared.testing import (PostgresDatabases, SessionVhosts, amqp_uri_for, remove_broker_users, sqlite_uris,
                            test_config, with_broker_users)

def _consumers_stop_promptly():
    """nameko's queue consumer looks at its stop flag between kombu
    ``drain_events(timeout=1)`` calls, so every container kill at a test's
    end waited up to a second for it; in tests it looks every 0.1 s (only the
    idle wake-up changes: messages are handled as they arrive either way)."""
    from functools import partialmethod

    from kombu.mixins import ConsumerMixin
    from nameko.messaging import QueueConsumer

    QueueConsumer.consume = partialmethod(ConsumerMixin.consume, safety_interval=0.1)


_consumers_stop_promptly()

#: DIBAO_TEST_BROKER_USERS=1: every test's config gets broker users of its own
#: (dibao broker setup on its vhost) and each container connects as its service.
BROKER_USERS = os.environ.get("DIBAO_TEST_BROKER_USERS", "").lower() in ("1", "true", "yes")


def _deployment(config: dict):
    if not BROKER_USERS:
        yield config
        return
    config = with_broker_users(config)
    yield config
    remove_broker_users(config)


@pytest.fixture(autouse=True)
def _default_crypto_profile():
    """Every test starts on the default profile (a gm test chose its own)."""
    from shared import profiles

    profiles.use(profiles.INTL)
    yield
    profiles.use(profiles.INTL)


@pytest.fixture(params=["intl", "gm"], ids=lambda name: f"profile={name}")
def crypto_profile(request):
    """Both crypto profiles (shared/profiles.py): the test's config gets
    ``CRYPTO_PROFILE`` when it uses ``config``/``sqlite_config`` too."""
    from shared import profiles

    for name in ("config", "sqlite_config"):
        if name in request.fixturenames:
            request.getfixturevalue(name)["CRYPTO_PROFILE"] = request.param
    return profiles.use(profiles.profile_named(request.param))


@pytest.fixture
def container_factory(container_factory):
    """nameko's, with each Dibao container on its service's own config (its
    broker user) when the test's config has broker users on; a test's own
    observer services keep the test's (administrator's) connection."""
    from shared.broker import BROKER_USERS, service_config, users_enabled

    made = []

    def make(service_cls, config, *args, **kwargs):
        if users_enabled(config) and "BROKER_SERVICE" not in config and service_cls.name in BROKER_USERS:
            config = service_config(config, service_cls.name)
        made.append(container_factory(service_cls, config, *args, **kwargs))
        return made[-1]

    yield make
    # killed together, not one after another as nameko's fixture does (which then finds them dead):
    # each waits up to a second for its consumer to see it (kombu's drain_events timeout)
    import eventlet

    def kill(container):
        try:
            container.kill()
        except Exception:  # noqa: BLE001 - as nameko's fixture: teardown goes on
            pass

    for _ in eventlet.GreenPool().imap(kill, made):
        pass


@pytest.fixture(scope="session")
def vhosts():
    """``vhosts()`` makes a vhost kept to the end of the session."""
    made = SessionVhosts()
    yield made
    made.close()


@pytest.fixture
def amqp_uri(vhosts):
    """A fresh, empty RabbitMQ vhost for this test (deleted after it, in the background)."""
    name = vhosts.for_test()
    yield amqp_uri_for(name)
    vhosts.test_done(name)


@pytest.fixture(scope="session")
def pg_databases():
    pg = PostgresDatabases()
    if not pg.available():
        pytest.fail("PostgreSQL is not reachable at DIBAO_TEST_PG_URI; .ci/run starts it")
    yield pg
    pg.drop_all()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request):
    return request.param


@pytest.fixture
def db_uris(backend, tmp_path, request):
    if backend == "sqlite":
        return sqlite_uris(tmp_path)
    pg = request.getfixturevalue("pg_databases")

    class OnDemand(dict):
        """Creates a service's PostgreSQL database the first time it is asked for."""

        def __missing__(self, service):
            self[service] = pg.create(service)
            return self[service]

    return OnDemand()


@pytest.fixture
def config(amqp_uri, db_uris, tmp_path):
    yield from _deployment(test_config(amqp_uri, db_uris, tmp_path / "data"))


@pytest.fixture
def sqlite_config(amqp_uri, tmp_path):
    """Config on SQLite only, for tests whose point is not the database."""
    yield from _deployment(test_config(amqp_uri, sqlite_uris(tmp_path), tmp_path / "data"))


@pytest.fixture
def broker_users_config(sqlite_config):
    """The test's (SQLite) config with broker users of its own on its vhost,
    as `dibao broker setup` makes them, whatever DIBAO_TEST_BROKER_USERS says."""
    if sqlite_config.get("BROKER_SERVICE_USERS"):             # DIBAO_TEST_BROKER_USERS: set up already
        yield sqlite_config
        return
    config = with_broker_users(sqlite_config)
    yield config
    remove_broker_users(config)


# --- the console in a real browser (tests/browser_helpers.py) -----------------------------


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the whole test session (a fresh profile; skipped,
    with the install line, when Debian's chromium / chromium-driver are missing)."""
    from tests.browser_helpers import chromium, quit_browser

    driver = chromium()
    yield driver
    quit_browser(driver)


@pytest.fixture
def console_deployment(container_factory, sqlite_config):
    """identity, intake, review and the gateway on this test's vhost: (config, base URL)."""
    from tests.browser_helpers import start_console

    return start_console(container_factory, sqlite_config)
