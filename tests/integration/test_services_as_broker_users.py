"""Every service starts as its own broker user, as `make run` runs them
(`dibao broker setup` then `dibao up`): nothing it declares at start-up —
its event queues (a wildcard handler's too), their delay queues, the
revocation listener's queue on ``identity.events`` — needs a permission its
user does not have. A fresh machine's `make run` stopped here once
(intake's ``evt-identity-*`` queue and the listeners' active declare of
``identity.events`` were refused)."""
from __future__ import annotations

import pytest
import requests
from nameko.web.server import WebServer

from cli.common import discover_services
from shared.identity import Identity, Role
from shared.testing import rpc_as, wait_for
from tests.helpers import DISTRICT

pytestmark = pytest.mark.integration


def test_every_service_starts_and_listens_as_its_broker_user(broker_users_config, container_factory):
    config = broker_users_config
    containers = {}
    for name, cls in discover_services().items():
        containers[name] = container_factory(cls, config)
        containers[name].start()           # raises if a declare is refused (the container dies)

    for name, container in containers.items():
        listeners = [dep.listener for dep in container.dependencies if isinstance(dep, Identity)]
        assert listeners or name == "identity", f"{name} does not follow identity's revocations"
        wait_for(lambda: all(listener.ready.ready() for listener in listeners), timeout=20,
                 message=f"{name}'s revocation listener consuming identity.events as {config['BROKER_USER_PREFIX']}{name}")

    with rpc_as(config, Role.SYSTEM_ADMIN, DISTRICT, user="sys.admin") as rpc:
        for name, container in containers.items():
            web = [ext for ext in container.subextensions if isinstance(ext, WebServer)]
            if web:        # the gateway serves HTTP, no RPC: its /healthz on the port it bound
                answer = requests.get(f"http://127.0.0.1:{web[0].port}/healthz", timeout=10).json()
                assert answer["service"] == name
            else:
                assert getattr(rpc, name).ping()["service"] == name
