"""Policy plugins: the rules that differ between localities and over time.

A policy is a class registered in the entry-point group ``dibao.policies``;
config ``POLICY`` names the active one. Dibao ships ``jiangxia`` (the seed's
practice in Jiangxia District, 2000s) and ``national2021`` (the 2021
national measure and the 2022 notice). A province ships its own package with
its own entry point; nothing in the services says ``if policy == ...``.
"""
from __future__ import annotations

from functools import lru_cache
from importlib.metadata import entry_points

from shared.policy.base import Policy

GROUP = "dibao.policies"


def available() -> list[str]:
    return sorted(ep.name for ep in entry_points(group=GROUP))


@lru_cache(maxsize=None)
def load_policy(name: str) -> Policy:
    matches = [ep for ep in entry_points(group=GROUP) if ep.name == name]
    if not matches:
        raise LookupError(f"unknown policy {name!r}; installed: {', '.join(available()) or 'none'}")
    policy = matches[0].load()()
    if not isinstance(policy, Policy):
        raise TypeError(f"policy {name!r} is not a shared.policy.base.Policy")
    return policy


def policy_from_config(config: dict) -> Policy:
    return load_policy(config.get("POLICY") or "jiangxia")
