"""``auth`` stays a library: no web framework, no project package (import-linter checks
the latter for the project; this checks the third-party side, which it does not)."""

from __future__ import annotations

import ast
from pathlib import Path

import auth

WEB = {"starlette", "fastapi", "uvicorn", "jinja2", "httpx", "anyio", "h11", "multipart"}
PROJECT = {"vo_service", "ingest", "tap_schema", "tests"}


def test_auth_imports_no_web_framework_and_nothing_of_the_project() -> None:
    found: dict[str, set[str]] = {}
    for path in Path(auth.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(path.name)
    assert not {name: found[name] for name in found.keys() & (WEB | PROJECT)}
    assert "psycopg2" in found and "passlib" in found, "the walk sees the imports"
