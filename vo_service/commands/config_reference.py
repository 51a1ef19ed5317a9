"""The configuration key reference, generated: ``lick-archive config reference`` and the
documentation site's "Configuration keys" page (``scripts/mkdocs_hooks.py``).

Keys, types and defaults come from the declarations — the dataclasses of
``vo_service.settings`` and, for ``[ingest]``, ``ingest.config.IngestSettings`` — so the
reference lists exactly what the code reads, with the defaults it uses.  The text of
each key is the comment above it in ``conf/lick-archive.toml`` (a key that shares the
comment of the key before it, like ``host`` and ``port``, shares its text); a key the
file does not describe stops the build.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.config import IngestSettings
from vo_service.settings import IngestSection, Settings, env_name

#: The documented configuration file of the checkout (the comments are the key texts).
DOCUMENTED = Path(__file__).resolve().parents[2] / "conf" / "lick-archive.toml"


@dataclass(frozen=True)
class Key:
    section: str
    name: str
    type: str
    default: str
    env: str
    text: str


def _type_name(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if hint is Path:
        return "path"
    if origin is tuple:
        return f"list of {_type_name(typing.get_args(hint)[0])}"
    if origin in (Mapping, dict):
        return f"table of {_type_name(typing.get_args(hint)[1])}"
    return getattr(hint, "__name__", str(hint))


def _toml(value: Any) -> str:
    """A default as it is written in the TOML file."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Path):
        return json.dumps(str(value))
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, str):
        return json.dumps(value)
    return str(value)


def _default(item: dataclasses.Field[Any]) -> Any:
    if item.default is not dataclasses.MISSING:
        return item.default
    if item.default_factory is not dataclasses.MISSING:
        return item.default_factory()
    return None


def comments(toml_text: str) -> dict[str, str]:
    """``section.key`` -> the comment lines above the key in the TOML file."""
    found: dict[str, str] = {}
    section = ""
    block: list[str] = []
    previous = ""
    for raw in toml_text.splitlines():
        line = raw.strip()
        if line.startswith("[") and line.endswith("]"):
            section, block, previous = line[1:-1], [], ""
        elif line.startswith("#"):
            block.append(line.lstrip("#").strip())
        elif "=" in line and section:
            key = line.split("=", 1)[0].strip()
            text = " ".join(part for part in block if part) or previous
            found[f"{section}.{key}"] = text
            previous, block = text, []
        elif not line:
            block = []
    return found


def sections() -> list[tuple[str, type[Any]]]:
    """Each ``[section]`` with the dataclass that declares its keys."""
    hints = typing.get_type_hints(Settings)
    return [(f.name, IngestSettings if hints[f.name] is IngestSection else hints[f.name])
            for f in dataclasses.fields(Settings)]


def reference(toml_text: str) -> list[Key]:
    described = comments(toml_text)
    keys = []
    for section, cls in sections():
        hints = typing.get_type_hints(cls)
        for item in dataclasses.fields(cls):
            name = f"{section}.{item.name}"
            if not described.get(name):
                raise ValueError(f"configuration key {name} is not described in the TOML "
                                 "file: add a comment above it")
            keys.append(Key(section, item.name, _type_name(hints[item.name]),
                            _toml(_default(item)), env_name(section, item.name),
                            described[name]))
    return keys


def markdown(toml_text: str) -> str:
    """The reference as Markdown: one table per section."""
    out: list[str] = []
    current = ""
    for key in reference(toml_text):
        if key.section != current:
            current = key.section
            out += ["", f"## [{current}]", "", "| key | type | default | what |",
                    "|---|---|---|---|"]
        text = key.text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
        default = key.default.replace("|", "\\|")
        out.append(f"| `{key.name}` | {key.type} | `{default}` | {text} "
                   f"(environment: `{key.env}`) |")
    return "\n".join(out).lstrip("\n") + "\n"


def _print_reference(settings: Settings, args: Any) -> int:
    print(markdown(DOCUMENTED.read_text()), end="")
    return 0


def register(commands: Any) -> None:
    config = commands.add_parser("config", help="the configuration: `config reference` "
                                 "prints every key with its type, default and meaning")
    config_commands = config.add_subparsers(dest="config_command", required=True)
    config_commands.add_parser("reference", help="every configuration key (Markdown)"
                               ).set_defaults(handler=_print_reference)
