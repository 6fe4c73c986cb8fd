"""Benchmark fixtures: the test harness's own (a fresh RabbitMQ vhost per
benchmark, SQLite files or throwaway PostgreSQL databases — see
tests/conftest.py and shared/testing.py), plus nameko's ``container_factory``
(its pytest plugin is loaded by the entry point, as for the tests)."""
from tests.conftest import *  # noqa: F401,F403 - vhosts, amqp_uri, pg_databases, sqlite_config, ...
