"""MkDocs hook (mkdocs.yml ``hooks:``): pages generated from the code at build time.

``reference/configuration.md`` gets the table of every configuration key from the
settings declarations (``vo_service.commands.config_reference``), so the documentation
cannot drift from what the code reads.
"""

from __future__ import annotations

from typing import Any

MARKER = "<!-- configuration keys: generated -->"


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if page.file.src_uri != "reference/configuration.md":
        return markdown
    from vo_service.commands.config_reference import DOCUMENTED
    from vo_service.commands.config_reference import markdown as reference

    if MARKER not in markdown:
        raise ValueError(f"reference/configuration.md lost its marker {MARKER!r}")
    return markdown.replace(MARKER, reference(DOCUMENTED.read_text()))
