"""Subcommands that reach into ``ingest`` and ``auth``: demo-data, ingest, watch, access,
registry."""

from __future__ import annotations

from typing import Any


def register(commands: Any) -> None:
    """Add the subcommands of each area to the top-level parser."""
    from vo_service.commands import (
        config_reference,
        ingest_commands,
        registry_commands,
        user_commands,
    )

    ingest_commands.register(commands)
    user_commands.register(commands)
    registry_commands.register(commands)
    config_reference.register(commands)
