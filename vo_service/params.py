"""DALI parameters: the one type for sync requests, UWS jobs and the job executor.

DALI 1.1 sect. 3.1: parameter names are case-insensitive, values are case-sensitive;
parameters may repeat (UPLOAD, SIA's POS...); unknown parameters are ignored by the
services.  :class:`Params` keeps every (NAME, value) pair in order with names upper
case, plus the uploaded files of a multipart request apart, by field name.

One repeat rule everywhere: a single-valued parameter (:meth:`Params.get`) given
several times with different values is a UsageFault; the same value repeated is
harmless.  A POST to a UWS job's ``/parameters`` *replaces* the values of the names it
sends (UWS 1.1 sect. 2.2.3.4), so a job never accumulates conflicting values.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType

from vo_service.errors import UsageFault

_CONTROL = re.compile("[\x00-\x1f\x7f]")
_MAX_NAME = 64


def check_pair(name: str, value: str) -> None:
    """Refuse what PostgreSQL and XML documents cannot hold, saying which parameter.

    A name is an identifier (no control characters, at most 64 characters); a value
    may hold anything but NUL, which no PostgreSQL text can store.
    """
    if not name or len(name) > _MAX_NAME or _CONTROL.search(name):
        shown = _CONTROL.sub("?", name[:_MAX_NAME])
        raise UsageFault(f"parameter name {shown!r} is not allowed: use at most {_MAX_NAME} "
                         "printable characters")
    if "\x00" in value:
        raise UsageFault(f"parameter {name.upper()} contains a NUL character; remove it")


class Params:
    """Ordered, multi-valued, case-insensitive parameters plus uploaded files."""

    __slots__ = ("_files", "_items")

    def __init__(self, items: Iterable[tuple[str, str]] = (),
                 files: Mapping[str, bytes] | None = None) -> None:
        self._items: tuple[tuple[str, str], ...] = tuple(
            (name.upper(), value) for name, value in items)
        self._files: Mapping[str, bytes] = MappingProxyType(dict(files or {}))

    @classmethod
    def checked(cls, items: Iterable[tuple[str, str]],
                files: Mapping[str, bytes] | None = None) -> Params:
        """Parameters from a client: every pair passes :func:`check_pair`."""
        pairs = list(items)
        for name, value in pairs:
            check_pair(name, value)
        return cls(pairs, files)

    @property
    def files(self) -> Mapping[str, bytes]:
        return self._files

    def items(self) -> tuple[tuple[str, str], ...]:
        """All (NAME, value) pairs in the order they were given."""
        return self._items

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name`` (case-insensitive), in order."""
        key = name.upper()
        return [value for item_name, value in self._items if item_name == key]

    def get(self, name: str) -> str | None:
        """The value of a single-valued parameter; None when absent."""
        values = self.get_all(name)
        if not values:
            return None
        if len(set(values)) > 1:
            raise UsageFault(f"parameter {name.upper()} given {len(values)} times with "
                             "different values; give it once")
        return values[0]

    def require(self, name: str) -> str:
        value = self.get(name)
        if value is None or value.strip() == "":
            raise UsageFault(f"missing required parameter {name.upper()}")
        return value

    def get_int(self, name: str, *, minimum: int = 0, maximum: int = 2**63 - 1) -> int | None:
        """An integer parameter within [minimum, maximum]; None when absent or empty."""
        value = self.get(name)
        if value is None or value.strip() == "":
            return None
        try:
            number = int(value.strip())
        except ValueError as exc:
            raise UsageFault(f"{name.upper()} must be an integer, not {value[:40]!r}") from exc
        if not minimum <= number <= maximum:
            raise UsageFault(f"{name.upper()} must be between {minimum} and {maximum}")
        return number

    def get_float(self, name: str) -> float | None:
        """A finite number; None when absent or empty."""
        value = self.get(name)
        if value is None or value.strip() == "":
            return None
        try:
            number = float(value.strip())
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise UsageFault(f"{name.upper()} must be a finite number, not {value[:40]!r}")
        return number

    def names(self) -> list[str]:
        """Distinct names in first-seen order."""
        return list(dict.fromkeys(name for name, _ in self._items))

    def without(self, names: Iterable[str]) -> Params:
        """A copy without the given names (e.g. UWS control parameters)."""
        dropped = {n.upper() for n in names}
        return Params(((n, v) for n, v in self._items if n not in dropped), self._files)

    def replaced_by(self, newer: Params) -> Params:
        """UWS ``/parameters`` POST: ``newer``'s names replace this one's values."""
        return Params((*self.without(newer.names())._items, *newer._items), self._files)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and any(n == name.upper() for n, _ in self._items)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Params) and other._items == self._items

    def __hash__(self) -> int:
        return hash(self._items)

    def __repr__(self) -> str:
        return f"Params({list(self._items)!r})"
