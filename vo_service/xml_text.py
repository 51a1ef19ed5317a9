"""The one cleaner of text bound for XML documents.

XML 1.0 cannot carry most C0 control characters, lone UTF-16 surrogates, U+FFFE or
U+FFFF, and lxml refuses them; user text (queries, parameter values, names) may hold
any of them.  Every writer of XML text passes it through :func:`xml_text`, which
replaces each such character by U+FFFD, so a document is always well-formed and the
reader still sees where something was.
"""

from __future__ import annotations

import re

XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_text(value: str) -> str:
    """``value`` with every character XML 1.0 cannot carry replaced by U+FFFD."""
    return XML_ILLEGAL.sub("\ufffd", value)
