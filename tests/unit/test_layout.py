"""The layout tells the architecture: imports point down (DESIGN §3.9).

front (``cli/``, ``demo/``) → ``services/*`` → ``contracts/`` → ``shared/``.

Plain Python over the source (``ast``), no extra tool. Checked:

- ``shared/`` (the platform) imports no service — not by an import
  statement, nor by a module name in a string (``importlib.import_module(
  f"services.{name}.models")`` is an upward arrow too);
- ``services/X`` imports no other service ``services/Y``;
- ``contracts/`` imports nothing of ours but ``shared`` (and itself);
- the front imports no service module by an import statement: it talks to
  services over RPC and loads plugins through their entry points (only its
  runner — ``dibao up``, ``dibao migrate``, the relay — names a service's
  module in a string, to run it);
- no source module outside tests, bench and migrations is over 600 lines.
"""
from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: our top-level packages, bottom layer first
OURS = ("shared", "contracts", "services", "cli", "demo")
FRONT = ("cli", "demo")
MAX_LINES = 600
#: folders whose modules may be long (test code, benchmarks, generated migrations)
LONG_ALLOWED = ("tests", "bench", "migrations")


def module_names(tree: ast.AST, module: str) -> list[tuple[int, str, bool]]:
    """(line, dotted module name, named in a string?) of everything ``tree`` imports
    or names as a module of ours in a string (``"services.x"``, ``f"services.{x}.models"``)."""
    found = []
    skipped = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    skipped |= {id(part) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for part in node.values}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, False) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:   # relative: resolve against this module's package
                base = module.split(".")[:-node.level]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found += [(node.lineno, f"{name}.{alias.name}" if name in OURS else name, False)
                      for alias in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skipped:
            text = node.value.strip()
            if text.split(".")[0] in OURS and "." in text and " " not in text:
                found.append((node.lineno, text, True))
        elif isinstance(node, ast.JoinedStr) and node.values:
            first = node.values[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str) \
                    and first.value.split(".")[0] in OURS and first.value.count(".") >= 1 and " " not in first.value:
                found.append((node.lineno, first.value + "…", True))
    return found


def layer_of(rel: Path) -> tuple[str, str | None]:
    """("shared" | "contracts" | "services" | "cli" | "demo" | other, the service's name)."""
    top = rel.parts[0]
    service = rel.parts[1] if top == "services" and len(rel.parts) > 2 else None
    return top, service


def violations(root: Path) -> list[str]:
    """Every break of the dependency rule and of the size limit under ``root``."""
    problems = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if rel.parts[0] not in OURS:
            continue
        text = path.read_text(encoding="utf-8")
        lines = text.count("\n") + (0 if text.endswith("\n") or not text else 1)
        if lines > MAX_LINES and not any(part in LONG_ALLOWED for part in rel.parts):
            problems.append(f"{rel}: {lines} lines (more than {MAX_LINES}: split it by what it is about)")
        module = ".".join(rel.with_suffix("").parts).removesuffix(".__init__")
        layer, service = layer_of(rel)
        for line, name, in_string in module_names(ast.parse(text, str(rel)), module):
            parts = name.split(".")
            target = parts[0]
            if target not in OURS:
                continue
            where = f"{rel}:{line}: {'names' if in_string else 'imports'} {name}"
            if layer == "shared" and target != "shared":
                problems.append(f"{where} — the platform imports nothing above it")
            elif layer == "contracts" and target not in ("shared", "contracts"):
                problems.append(f"{where} — the contracts import only the platform")
            elif layer == "services" and target in FRONT:
                problems.append(f"{where} — a service imports no part of the front")
            elif layer == "services" and target == "services" and len(parts) > 1 and parts[1] != service:
                problems.append(f"{where} — a service imports no other service (use contracts/)")
            elif layer in FRONT and target == "services" and not in_string:
                problems.append(f"{where} — the front talks to services over RPC (plugins: their entry points)")
    return problems


def test_the_project_follows_the_dependency_rule():
    assert violations(ROOT) == []


def test_every_layer_is_where_the_rule_expects_it():
    # the checker walks these folders: if one moved away, the rule above would pass vacuously
    for folder in OURS:
        assert (ROOT / folder / "__init__.py").is_file(), folder
    assert {p.name for p in (ROOT / "services").iterdir() if (p / "service.py").is_file()} >= {
        "intake", "review", "notify", "payments", "audit"}


def test_a_partner_can_import_the_contracts_without_any_service():
    """docs/events.md: a partner imports ``contracts`` alone; no service, CLI or demo code comes with it."""
    code = ("import sys, contracts; names = contracts.load_all(); "
            "from shared.events import CATALOGUE; "
            "print(len(names), len(CATALOGUE), sorted({m.split('.')[0] for m in sys.modules} & {'services', 'cli', 'demo'}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         env=dict(os.environ, PYTHONWARNINGS="ignore"))
    modules, types, above = out.stdout.split(maxsplit=2)
    assert int(modules) >= 5 and int(types) > 30
    assert above.strip() == "[]", out.stdout


# --- the checker itself can fail -----------------------------------------------------------


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    for folder in OURS:
        (root / folder).mkdir(exist_ok=True)
    return root


CLEAN = {
    "shared/__init__.py": "",
    "shared/db.py": '"""Not services.intake.models: a docstring may say it."""\nimport sqlalchemy\n',
    "contracts/__init__.py": "",
    "contracts/intake.py": "from marshmallow import Schema\nfrom shared.events import event_type\n",
    "services/__init__.py": "",
    "services/intake/service.py": ("from contracts import review\nfrom services.intake import handlers\n"
                                   "from shared.db import Database\n"),
    "services/intake/handlers.py": "from . import rules\nfrom .models import Base\n",
    "services/intake/migrations/env.py": "from services.intake.models import Base\n",
    "services/intake/migrations/versions/0001_big.py": "x = 1\n" * 700,
    "cli/common.py": ('import importlib\n\ndef load(name):\n'
                      '    return importlib.import_module(f"services.{name}.service")\n'),
    "cli/audit.py": "from contracts import audit_chain\nfrom shared.bank_formats import load_format\n",
    "demo/entry.py": "from cli.common import console\n",
    "tests/test_big.py": "from services.intake import handlers\n" + "x = 1\n" * 700,
}


def test_a_clean_tree_passes(tmp_path):
    assert violations(write(tmp_path, CLEAN)) == []


@pytest.mark.parametrize(("name", "text", "expected"), [
    ("shared/migrations.py", "from services.intake.models import Base\n", "the platform imports nothing above"),
    ("shared/outbox.py", "import services.intake.models\n", "the platform imports nothing above"),
    ("shared/outbox.py", 'import importlib\nm = importlib.import_module(f"services.{name}.models")\n',
     "names services."),
    ("shared/db.py", 'import importlib\nm = importlib.import_module("services.audit.models")\n',
     "names services.audit.models"),
    ("shared/clock.py", "from cli.common import console\n", "the platform imports nothing above"),
    ("services/review/service.py", "from services.intake import events\n", "imports no other service"),
    ("services/review/handlers.py", "import services.payments.rules\n", "imports no other service"),
    ("services/review/handlers.py", "from services import payments\n", "imports no other service"),
    ("services/notify/handlers.py", 'x = __import__("services.review.rules")\n', "imports no other service"),
    ("services/notify/handlers.py", "from cli.common import console\n", "no part of the front"),
    ("contracts/review.py", "from services.review.rules import RULE_MANUAL\n", "contracts import only"),
    ("contracts/review.py", "import cli.common\n", "contracts import only"),
    ("cli/audit.py", "from services.audit import chain\n", "the front talks to services over RPC"),
    ("demo/year.py", "from services.review.rules import RULE_MANUAL\n", "the front talks to services over RPC"),
    ("demo/entry.py", "x = 1\n" * 601, "601 lines"),
    ("shared/big.py", "x = 1\n" * 601, "601 lines"),
    ("services/payments/handlers.py", "x = 1\n" * 601, "601 lines"),
])
def test_the_checker_names_each_break(tmp_path, name, text, expected):
    root = write(tmp_path, dict(CLEAN, **{name: text}))
    found = violations(root)
    assert len(found) == 1 and name in found[0] and expected in found[0], found


def test_a_module_of_600_lines_is_allowed(tmp_path):
    assert violations(write(tmp_path, dict(CLEAN, **{"shared/long.py": "x = 1\n" * 600}))) == []
