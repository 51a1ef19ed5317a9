"""DALI parameters, parsed in one place for GET, urlencoded POST and multipart.

DALI 1.1 sect. 3.1: parameter names are case-insensitive, values are case-sensitive;
parameters may repeat; unknown parameters are ignored by the services.  Uploaded
files (multipart) are kept apart, by their form field name.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from vo_service.errors import UsageFault


@dataclass
class Params:
    """Multi-valued, case-insensitive parameters plus uploaded files."""

    values: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, str]],
                   files: dict[str, bytes] | None = None) -> Params:
        params = cls(files=dict(files or {}))
        for name, value in pairs:
            params.values.setdefault(name.upper(), []).append(value)
        return params

    def get(self, name: str) -> str | None:
        """The single value of a parameter; repeating a single-valued one is an error."""
        values = self.values.get(name.upper())
        if not values:
            return None
        if len(values) > 1 and len(set(values)) > 1:
            raise UsageFault(f"parameter {name.upper()} given {len(values)} times with "
                             "different values; give it once")
        return values[0]

    def get_all(self, name: str) -> list[str]:
        return list(self.values.get(name.upper(), []))

    def require(self, name: str) -> str:
        value = self.get(name)
        if value is None or value.strip() == "":
            raise UsageFault(f"missing required parameter {name.upper()}")
        return value

    def get_int(self, name: str, *, minimum: int = 0) -> int | None:
        value = self.get(name)
        if value is None or value.strip() == "":
            return None
        try:
            number = int(value.strip())
        except ValueError as exc:
            raise UsageFault(f"{name.upper()} must be an integer, not {value!r}") from exc
        if number < minimum:
            raise UsageFault(f"{name.upper()} must be at least {minimum}, not {number}")
        return number

    def __contains__(self, name: str) -> bool:
        return name.upper() in self.values
