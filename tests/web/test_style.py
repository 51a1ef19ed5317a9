"""The style sheet's colours meet WCAG 2.1 AA contrast (4.5:1 for text) in both themes.

The pairs are those the pages use (text colour on the background it is drawn on);
the colours are read from the style sheet itself, light (``:root``) and dark (the
``prefers-color-scheme: dark`` block), so a change that breaks contrast fails here.
"""

from __future__ import annotations

import re

import pytest

from vo_service.web.rendering import stylesheet

PAIRS = [("ink", "bg"), ("ink", "card"), ("ink", "code"), ("ink", "notice"), ("ink", "field"),
         ("muted", "bg"), ("muted", "card"), ("link", "bg"), ("link", "card"),
         ("bad", "errbg"), ("bad", "card"), ("bad", "bg"),
         ("bg", "bad"),  # marked error position, delete buttons
         ("#ffffff", "accent")]  # buttons
HEADER = ("#ffffff", "#18243a")


def _themes() -> dict[str, dict[str, str]]:
    css = stylesheet().decode()
    blocks = re.findall(r":root\s*\{([^}]*)\}", css)
    assert len(blocks) == 2, "expected a light and a dark :root block"
    themes = {}
    for name, block in zip(("light", "dark"), blocks, strict=True):
        themes[name] = dict(re.findall(r"--([a-z]+):\s*(#[0-9a-fA-F]{6})", block))
    assert "prefers-color-scheme: dark" in css
    return themes


def _luminance(colour: str) -> float:
    channels = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize(("fg", "bg"), PAIRS)
def test_text_contrast(theme, fg, bg):
    colours = _themes()[theme]

    def resolve(name: str) -> str:
        return name if name.startswith("#") else colours[name]

    assert contrast(resolve(fg), resolve(bg)) >= 4.5, (theme, fg, bg)


def test_header_contrast():
    assert contrast(*HEADER) >= 4.5
    assert "background: #18243a" in stylesheet().decode()
