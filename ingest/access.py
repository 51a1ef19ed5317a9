"""Who owns a file and when it becomes public: the archive's access rules, as pure code.

MISSION §1, in order of precedence:

1. override rules in the night directory's ``override[.N].access`` file;
2. file types that are always public for an instrument;
3. calibration frames belong to every observer scheduled that night on the telescope;
4. other frames belong to the observers scheduled that night on the telescope
   (narrowed, when several runs share the night, to the runs whose program or
   observer names match the header);
5. nobody scheduled: public.

The release date is the earliest release date of the owners' runs, by default the
night plus the proprietary period.  When it cannot be determined (override names that
match nobody) the file is visible to staff only (``release_date=None``).  Nothing here
touches a database or the clock: the schedule and the rules are passed in.
"""

from __future__ import annotations

import calendar
import fnmatch
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from auth.identity import is_public
from ingest.schedule import Observer, Run

log = logging.getLogger(__name__)

CALIBRATION_TYPES = frozenset({"bias", "dark", "flat", "arc", "focus"})
FRAME_TYPES = CALIBRATION_TYPES | {"science", "unknown"}
PUBLIC = "public"
PROPRIETARY = "proprietary"

_OVERRIDE_NAME = re.compile(r"^override(?:\.(\d+))?\.access$")
_PERIOD = re.compile(r"^\s*(\d+)\s*(day|month|year)s?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class AccessDecision:
    """The outcome of the rules for one file; ``rule`` names the rule that decided."""

    owner_ids: tuple[int, ...]
    release_date: date | None
    data_rights: str
    obstype_override: str | None
    rule: str = ""


# ---------------------------------------------------------------- dates


@dataclass(frozen=True)
class Period:
    count: int
    unit: str  # "day", "month" or "year"


def parse_period(text: str) -> Period:
    """Parse ``"N days|months|years"`` (singular accepted); ValueError otherwise."""
    m = _PERIOD.match(text)
    if m is None:
        raise ValueError(f"release period {text!r} is not 'N days', 'N months' or 'N years'")
    return Period(int(m.group(1)), m.group(2).lower())


def add_period(start: date, period: Period | str) -> date:
    """``start`` plus ``period``; a day missing in the target month rolls to the 1st of
    the next month (2024-01-31 + 1 month = 2024-03-01, 2024-02-29 + 1 year = 2025-03-01),
    as the original archive did, so that no proprietary period is ever shortened."""
    p = parse_period(period) if isinstance(period, str) else period
    if p.unit == "day":
        return start + timedelta(days=p.count)
    months = p.count * (12 if p.unit == "year" else 1)
    index = start.year * 12 + (start.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    if start.day <= calendar.monthrange(year, month)[1]:
        return date(year, month, start.day)
    return date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)


# ---------------------------------------------------------------- override files


@dataclass(frozen=True)
class OverrideRule:
    """One line of an override file: ``<glob> obstype <type>`` or ``<glob> access ...``."""

    pattern: str
    kind: str  # "obstype" or "access"
    values: tuple[str, ...]
    line: int

    def matches(self, filename: str) -> bool:
        return fnmatch.fnmatchcase(filename, self.pattern)


def parse_overrides(text: str, source: str = "<override>") -> tuple[OverrideRule, ...]:
    """Parse override lines; comments (#) and blank lines are skipped, malformed lines
    are logged and skipped so that one typo does not disable a whole night's rules."""
    rules: list[OverrideRule] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        if len(words) < 3 or words[1].lower() not in ("obstype", "access"):
            log.warning("%s:%d: ignored, not '<glob> obstype|access ...': %r",
                        source, number, raw)
            continue
        kind = words[1].lower()
        values = tuple(words[2:])
        if kind == "obstype":
            frame_type = values[0].lower()
            if len(values) != 1 or frame_type not in FRAME_TYPES:
                log.warning("%s:%d: ignored, obstype must be one of %s: %r",
                            source, number, ", ".join(sorted(FRAME_TYPES)), raw)
                continue
            values = (frame_type,)
        rules.append(OverrideRule(words[0], kind, values, number))
    return tuple(rules)


def override_number(name: str) -> int | None:
    """N of ``override.N.access`` (0 for ``override.access``); None for other names."""
    m = _OVERRIDE_NAME.match(name)
    if m is None:
        return None
    return int(m.group(1)) if m.group(1) is not None else 0


def override_file(directory: Path) -> Path | None:
    """The override file in force in ``directory``: the one with the highest N."""
    best: tuple[int, Path] | None = None
    try:
        entries = list(directory.iterdir())
    except OSError:
        return None
    for entry in entries:
        n = override_number(entry.name)
        if n is not None and entry.is_file() and (best is None or n > best[0]):
            best = (n, entry)
    return None if best is None else best[1]


def read_overrides(directory: Path) -> tuple[OverrideRule, ...]:
    """The rules in force for the files of ``directory`` (empty without a file)."""
    path = override_file(directory)
    if path is None:
        return ()
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        log.warning("cannot read %s: %s", path, exc)
        return ()
    return parse_overrides(text, str(path))


@dataclass(frozen=True)
class OverrideMatch:
    obstype: str | None
    access: tuple[str, ...] | None


def match_overrides(rules: Sequence[OverrideRule], filename: str) -> OverrideMatch:
    """The first matching ``obstype`` line and the first matching ``access`` line.

    The first matching line wins for each kind of rule, so that one file can have its
    frame type corrected by one line and its owners set by another.
    """
    obstype: str | None = None
    access: tuple[str, ...] | None = None
    for rule in rules:
        if not rule.matches(filename):
            continue
        if rule.kind == "obstype" and obstype is None:
            obstype = rule.values[0]
        elif rule.kind == "access" and access is None:
            access = rule.values
    return OverrideMatch(obstype, access)


def resolve_names(
    names: Iterable[str], observers: Sequence[Observer], night_runs: Sequence[Run]
) -> tuple[tuple[int, ...], tuple[str, ...]]:
    """Map override names to observer ids; returns (ids, names matching nobody).

    A name is an obid, an email, an email's local part or a last name.  A last name
    shared by several observers is narrowed to those scheduled that night; if still
    ambiguous it is left unresolved rather than granting data to a namesake.
    """
    scheduled = {obid for run in night_runs for obid in run.observer_ids}
    ids: set[int] = set()
    unknown: list[str] = []
    for name in names:
        key = name.casefold()
        found: list[Observer]
        if name.isdigit():
            found = [o for o in observers if o.obid == int(name)]
        else:
            found = [o for o in observers if o.email.casefold() == key]
            if not found:
                found = [o for o in observers if o.email.casefold().split("@", 1)[0] == key]
            if not found:
                found = [o for o in observers if o.last_name.casefold() == key]
            if len(found) > 1:
                found = [o for o in found if o.obid in scheduled]
        if len(found) == 1 or (found and name.isdigit()):
            ids.update(o.obid for o in found)
        else:
            unknown.append(name)
    return tuple(sorted(ids)), tuple(unknown)


# ---------------------------------------------------------------- the rules


def _release(runs: Iterable[Run], night: date, period: Period | str) -> date:
    dates = [r.release_date if r.release_date is not None else add_period(night, period)
             for r in runs]
    return min(dates) if dates else add_period(night, period)


def _owned(ids: Iterable[int], release: date | None, obstype: str | None,
           rule: str, now: datetime | None) -> AccessDecision:
    """Owned until ``release``; ``data_rights`` says what ObsCore clients read today
    (a file ingested after its release date is public at once)."""
    owners = tuple(sorted(set(ids)))
    rights = PUBLIC if is_public(release, now) else PROPRIETARY
    return AccessDecision(owners, release, rights, obstype, rule)


def _public(night: date, obstype: str | None, rule: str) -> AccessDecision:
    return AccessDecision((), night, PUBLIC, obstype, rule)


def _narrow(runs: Sequence[Run], program: str | None, observer: str | None,
            observers: Sequence[Observer]) -> Sequence[Run]:
    """When several runs share a night, keep those the header points at."""
    if len(runs) < 2:
        return runs
    by_id = {o.obid: o for o in observers}
    prog = (program or "").strip().casefold()
    words = set(re.findall(r"[\w'-]+", (observer or "").casefold()))
    chosen = []
    for run in runs:
        if prog and run.program and run.program.strip().casefold() == prog:
            chosen.append(run)
            continue
        names = {by_id[i].last_name.casefold() for i in run.observer_ids if i in by_id}
        if words & (names - {""}):
            chosen.append(run)
    return chosen or runs


def is_always_public(filename: str, instrument_dir: str,
                     always_public: Mapping[str, Sequence[str]]) -> bool:
    """Whether ``filename`` matches a public glob of its instrument dir or of ``"*"``."""
    lowered = filename.lower()
    globs = (*always_public.get(instrument_dir, ()), *always_public.get("*", ()))
    return any(fnmatch.fnmatchcase(lowered, g.lower()) for g in globs)


def decide_access(
    *,
    night: date,
    filename: str,
    instrument_dir: str,
    telescope: str | None,
    frame_type: str | None,
    program: str | None = None,
    observer: str | None = None,
    overrides: Sequence[OverrideRule] = (),
    runs: Sequence[Run] = (),
    observers: Sequence[Observer] = (),
    always_public: Mapping[str, Sequence[str]] | None = None,
    release_period: Period | str,
    now: datetime | None = None,
) -> AccessDecision:
    """Apply the rules to one file.

    ``runs`` may hold every run of the night (any telescope); only those on
    ``telescope`` count.  ``frame_type`` is the type read from the header; an
    ``obstype`` override replaces it (and is returned in ``obstype_override``).
    ``release_period`` has no default here: it is a setting (``[ingest]``).  ``now``
    (default: the clock) decides only ``data_rights``, never who owns the file.
    """
    match = match_overrides(overrides, filename)
    kind = match.obstype or (frame_type or "unknown").lower()
    night_runs = [r for r in runs if telescope is not None and r.covers(night, telescope)]

    if match.access is not None:
        if any(v.casefold() == PUBLIC for v in match.access):
            return _public(night, match.obstype, "override")
        ids, unknown = resolve_names(match.access, observers, night_runs)
        if unknown:
            log.warning("%s/%s: override names match no observer: %s",
                        night, filename, " ".join(unknown))
        if not ids:
            return AccessDecision((), None, PROPRIETARY, match.obstype, "override_unresolved")
        own_runs = [r for r in night_runs if set(r.observer_ids) & set(ids)]
        return _owned(ids, _release(own_runs, night, release_period), match.obstype,
                      "override", now)

    if is_always_public(filename, instrument_dir, always_public or {}):
        return _public(night, match.obstype, "always_public")

    if kind in CALIBRATION_TYPES:
        chosen: Sequence[Run] = night_runs
        rule = "calibration"
    else:
        chosen = _narrow(night_runs, program, observer, observers)
        rule = "scheduled"
    scheduled = [i for r in chosen for i in r.observer_ids]
    if not scheduled:
        return _public(night, match.obstype, "nobody_scheduled")
    return _owned(scheduled, _release([r for r in chosen if r.observer_ids], night, release_period),
                  match.obstype, rule, now)
