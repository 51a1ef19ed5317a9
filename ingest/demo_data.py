"""A deterministic sample of the Lick archive: FITS files, override rules, a schedule.

``write_demo_data`` builds a few hundred files in the archive layout from the real
header templates (Kast blue and red, ShARCS, Nickel direct): science and calibration
frames on many nights between 2007 and 2026 (the recent ones still proprietary),
several observers and programs, small synthetic pixel arrays of the template's
BITPIX, celestial WCS where the instrument writes one, a handful of files broken the
way real ones are, an override rule file, and ``schedule.json`` describing the
scheduling database (observers with demo passwords, runs with release dates; some
nights have no run, so their data are public).  The same seed gives the same bytes.

``write_bulk_data`` writes many small files quickly, for benchmarks.
"""

from __future__ import annotations

import json
import math
import os
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np

from ingest.fits_header import CARD
from ingest.fits_writer import (
    format_card,
    get_card,
    header_bytes,
    load_template,
    remove_card,
    set_card,
    write_fits,
)

SCHEDULE_FILE = "schedule.json"

# (template, binning applied to the pixel grid so that arrays stay small)
_TEMPLATES = {
    "kast_blue": ("2019-05_02_shane_b607-hdu0.txt", 8),
    "kast_red": ("2019-05_02_shane_r650-hdu0.txt", 8),
    "kast_blue_old": ("2006-08_17_shane_b100-hdu0.txt", 8),
    "kast_red_old": ("2006-08_17_shane_r96-hdu0.txt", 8),
    "sharcs": ("2019-11_09_AO_s1303-hdu0.txt", 16),
    "nickel": ("2019-05_24_nickel_d116-hdu0.txt", 8),
    "nickel_old": ("2007-03_17_nickel_g953-hdu0.txt", 8),
}

_TARGETS = (
    ("M67", 132.825, 11.800), ("NGC 4472", 187.4450, 8.0004), ("M31", 10.6847, 41.2687),
    ("M51", 202.4696, 47.1952), ("M101", 210.8023, 54.3489), ("NGC 7331", 339.2671, 34.4158),
    ("HD 84937", 147.2346, 13.7442), ("Feige 34", 159.9030, 43.1026),
    ("BD+28 4211", 327.7954, 28.8637), ("M13", 250.4217, 36.4613),
    ("NGC 2419", 114.5353, 38.8824), ("3C 273", 187.2779, 2.0524),
    ("Kepler-22", 289.2176, 47.8843), ("SN 2024abc", 35.1234, 22.4567),
    ("AT 2025xyz", 150.4321, -5.6789), ("GJ 1214", 258.8289, 4.9639),
)

_OBSERVERS = (
    ("Maria", "Alvarez", "malvarez@ucsc.example"),
    ("Kenji", "Sato", "ksato@ucb.example"),
    ("Priya", "Raman", "praman@ucla.example"),
    ("Thomas", "Brink", "tbrink@ucb.example"),
    ("Grace", "Okafor", "gokafor@ucsd.example"),
    ("Luca", "Bianchi", "lbianchi@ucsc.example"),
    ("Hannah", "Weiss", "hweiss@uci.example"),
    ("Omar", "Haddad", "ohaddad@ucd.example"),
)

_PROGRAMS = {
    "Shane": ("Supernova spectroscopy", "Exoplanet hosts with ShaneAO",
              "Galaxy kinematics", "Spectrophotometric standards"),
    "Nickel": ("Nickel photometric monitoring", "Open cluster photometry",
               "Quasar variability"),
}

_SALT_CHARS = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True)
class DemoSummary:
    """What was written: counts, the schedule file and the deliberately broken files."""

    directory: Path
    files: int
    nights: int
    by_instrument: dict[str, int] = field(default_factory=dict)
    broken: tuple[str, ...] = ()
    override_files: tuple[str, ...] = ()
    schedule_path: Path | None = None
    observers: int = 0
    runs: int = 0


@dataclass
class _Frame:
    kind: str           # template key
    filename: str
    frame_type: str
    target: tuple[str, float, float]
    start: datetime
    exptime: float
    observer: str
    program: str
    setup: dict[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------- header editing


def _sexagesimal(value: float, *, hours: bool) -> str:
    sign = "-" if value < 0 else ("" if hours else "+")
    total = abs(value) / (15.0 if hours else 1.0)
    whole = int(total)
    minutes = int((total - whole) * 60)
    seconds = (total - whole - minutes / 60.0) * 3600.0
    if seconds >= 59.995:
        seconds = 0.0
        minutes += 1
    if minutes == 60:
        minutes = 0
        whole += 1
    return f"{sign}{whole:02d}:{minutes:02d}:{seconds:05.2f}"


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 10000:02d}"


def _scale_geometry(cards: list[str], binning: int) -> tuple[int, int]:
    """Shrink NAXIS1/2 by ``binning``; scale every CD matrix and CRPIX to match."""
    shape = []
    for axis in (1, 2):
        image = get_card(cards, f"NAXIS{axis}")
        original = int(image[10:30]) if image else 64
        size = max(8, original // binning)
        set_card(cards, f"NAXIS{axis}", size)
        shape.append(size)
    for suffix in ("", "S"):
        for i in (1, 2):
            for j in (1, 2):
                key = f"CD{i}_{j}{suffix}"
                image = get_card(cards, key)
                if image:
                    set_card(cards, key, float(image[10:30]) * binning)
            key = f"CRPIX{i}{suffix}"
            image = get_card(cards, key)
            if image:
                set_card(cards, key, (float(image[10:30]) - 0.5) / binning + 0.5)
    return shape[0], shape[1]


def _lamps(cards: list[str], flat: bool, arc: bool, *, logical: bool) -> None:
    for i, image in enumerate(cards):
        if not image.startswith("LAMPSTA"):
            continue
        name = image[7]
        on = (flat and name in "25") or (arc and name in "EFGH")
        comment = image[33:].rstrip()
        cards[i] = format_card(image[:8], on if logical else ("on" if on else "off"), comment)


def _header(frame: _Frame, night: date, number: int) -> tuple[list[str], tuple[int, int], int]:
    template, binning = _TEMPLATES[frame.kind]
    cards = load_template(template)
    shape = _scale_geometry(cards, binning)
    name, ra, dec = frame.target
    end = frame.start + timedelta(seconds=frame.exptime)
    old = frame.kind.endswith("_old")
    set_card(cards, "OBJECT", name)
    set_card(cards, "OBSERVER", frame.observer)
    set_card(cards, "OBSNUM", number)
    set_card(cards, "RA", _sexagesimal(ra, hours=True))
    set_card(cards, "DEC", _sexagesimal(dec, hours=False))
    if get_card(cards, "AIRMASS") is not None:
        set_card(cards, "AIRMASS", round(1.0 + 0.5 * abs(math.sin(math.radians(ra))), 3))
    for suffix in ("", "S"):
        if "RA--" in (get_card(cards, f"CTYPE1{suffix}") or ""):
            set_card(cards, f"CRVAL1{suffix}", ra)
            set_card(cards, f"CRVAL2{suffix}", dec)
    if frame.kind == "sharcs":
        # ShARCS keeps a bogus DATE-OBS/TIME-OBS, as the real camera did: only
        # DATE-BEG is the start of the exposure.
        set_card(cards, "DATE-BEG", _iso(frame.start))
        set_card(cards, "TRUITIME", round(frame.exptime, 5))
        set_card(cards, "COADDONE", 1)
        set_card(cards, "PROGRAM", frame.program)
        set_card(cards, "FILT1NAM", frame.setup.get("filter1", "Ks"))
        set_card(cards, "FILT2NAM", "Blank25" if frame.frame_type == "dark" else "Open")
        _lamps(cards, frame.frame_type == "flat", False, logical=False)
    else:
        set_card(cards, "DATE-OBS", _iso(frame.start))
        for key in ("DATE-BEG",):
            if get_card(cards, key) is not None:
                set_card(cards, key, _iso(frame.start))
        if get_card(cards, "DATE-END") is not None:
            set_card(cards, "DATE-END", _iso(end))
        if get_card(cards, "DATE") is not None:
            set_card(cards, "DATE", _iso(end + timedelta(seconds=10)))
        if old and frame.kind.startswith("kast"):
            set_card(cards, "EXPOSURE", int(frame.exptime))
            set_card(cards, "TIME", frame.start.strftime("%H:%M:%S.0"))
        else:
            set_card(cards, "EXPTIME", frame.exptime)
            set_card(cards, "OBSTYPE", "DARK" if frame.frame_type in ("bias", "dark")
                     else "OBJECT")
        for key, value in frame.setup.items():
            set_card(cards, key, value)
        _lamps(cards, frame.frame_type == "flat", frame.frame_type == "arc", logical=False)
    return cards, shape, -32 if frame.kind == "sharcs" else 16


def _pixels(rng: np.random.Generator, frame: _Frame, shape: tuple[int, int],
            bitpix: int) -> bytes:
    n1, n2 = shape
    level = {"bias": 600.0, "dark": 620.0, "flat": 20000.0, "arc": 900.0}.get(
        frame.frame_type, 1500.0)
    image = rng.normal(level, math.sqrt(level), size=(n2, n1))
    if frame.frame_type == "science":
        for _ in range(3):
            x, y = rng.uniform(0, n1), rng.uniform(0, n2)
            yy, xx = np.mgrid[0:n2, 0:n1]
            image += rng.uniform(2000, 20000) * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / 4.0)
    if bitpix == -32:
        return image.astype(">f4").tobytes()
    # BZERO = 32768: store physical value - 32768 as big-endian int16.
    return (np.clip(image, 0, 65535) - 32768).astype(">i2").tobytes()


# ---------------------------------------------------------------- the plan


def _nights(rng: random.Random) -> list[tuple[date, str]]:
    """(night, telescope) pairs: two old nights, then 2015-2026 with recent ones."""
    chosen: list[tuple[date, str]] = [(date(2007, 8, 10), "Shane"), (date(2007, 3, 17), "Nickel")]
    for year in range(2015, 2027):
        for _ in range(3 if year >= 2025 else 2):
            day = date(year, rng.randint(1, 10 if year == 2026 else 12), rng.randint(1, 28))
            chosen.append((day, rng.choice(("Shane", "Shane", "Nickel"))))
    return sorted(set(chosen))


def _frames_for_night(rng: random.Random, night: date, telescope: str,
                      observer: str, program: str) -> list[tuple[str, _Frame]]:
    """(instrument dir, frame) of one night: calibrations, then science."""
    evening = datetime(night.year, night.month, night.day, 3, 0, tzinfo=UTC) + timedelta(days=1)
    frames: list[tuple[str, _Frame]] = []
    clock = evening - timedelta(hours=2)
    old = night.year < 2010
    if telescope == "Nickel":
        kind = "nickel_old" if old else "nickel"
        plan = [("bias", 0.0), ("bias", 0.0), ("flat", 3.0), ("flat", 3.0)]
        plan += [("science", float(rng.choice((60, 120, 300)))) for _ in range(rng.randint(3, 5))]
        plan.append(("focus", 20.0))
        filters = ("B", "V", "R", "I")
        for i, (frame_type, exptime) in enumerate(plan):
            target = _target(rng, frame_type)
            setup = {"FILTNAM": rng.choice(filters)}
            frames.append(("nickel", _Frame(kind, f"d{100 + i}.fits", frame_type, target,
                                            clock, exptime, observer, program, setup)))
            clock += timedelta(seconds=exptime + 60)
        return frames
    use_ao = not old and night >= date(2015, 1, 1) and rng.random() < 0.4
    if use_ao:
        plan = [("dark", 10.0), ("flat", 5.0)]
        plan += [("science", float(rng.choice((2.9, 10.0, 30.0))))
                 for _ in range(rng.randint(3, 5))]
        filt = rng.choice(("Ks", "BrG-2.16", "J", "H"))
        for i, (frame_type, exptime) in enumerate(plan):
            frames.append(("AO", _Frame("sharcs", f"s{i:04d}.fits", frame_type,
                                        _target(rng, frame_type), clock, exptime, observer,
                                        program, {"filter1": filt})))
            clock += timedelta(seconds=exptime + 30)
    grism = rng.choice(("600/4310", "452/3306", "830/3460"))
    grating = rng.choice(("300/7500", "600/7500", "830/8460", "600/5000"))
    slit = rng.choice(("1.0 arcsec", "1.5 arcsec", "2.0 arcsec"))
    splitter = rng.choice(("d55", "d57", "d46"))
    plan = [("bias", 0.0), ("flat", 8.0), ("arc", 5.0)]
    plan += [("science", float(rng.choice((300, 600, 900, 1200))))
             for _ in range(rng.randint(2, 4))]
    for i, (frame_type, exptime) in enumerate(plan):
        target = _target(rng, frame_type)
        for side in ("blue", "red"):
            kind = f"kast_{side}" + ("_old" if old else "")
            setup = {"SLIT_N": slit, "BSPLIT_N": splitter}
            if side == "blue":
                setup["GRISM_N"] = grism
            else:
                setup["GRATNG_N"] = grating
            prefix = "b" if side == "blue" else "r"
            frames.append(("shane", _Frame(kind, f"{prefix}{i + 1}.fits", frame_type, target,
                                           clock, exptime, observer, program, setup)))
        clock += timedelta(seconds=exptime + 45)
    return frames


def _target(rng: random.Random, frame_type: str) -> tuple[str, float, float]:
    name, ra, dec = rng.choice(_TARGETS)
    words = {"bias": "bias", "dark": "dark", "flat": "dome flat", "arc": "arc HgNe",
             "focus": "focus run"}
    if frame_type in words:
        return words[frame_type], ra, dec
    return name, ra, dec


def _apr1(rng: random.Random, password: str) -> str:
    from passlib.hash import apr_md5_crypt

    salt = "".join(rng.choice(_SALT_CHARS) for _ in range(8))
    return str(apr_md5_crypt.using(salt=salt).hash(password))


Schedule = dict[str, list[dict[str, object]]]


def _schedule(
    rng: random.Random, nights: list[tuple[date, str]]
) -> tuple[Schedule, dict[date, tuple[str, str]]]:
    """The scheduling database and, per scheduled night, (observer names, program)."""
    observers = []
    for obid, (first, last, email) in enumerate(_OBSERVERS, start=1):
        password = f"demo-{last.lower()}"
        observers.append({"obid": obid, "first_name": first, "last_name": last,
                          "email": email, "password": password,
                          "password_apr1": _apr1(rng, password)})
    runs: list[dict[str, object]] = []
    per_night: dict[date, tuple[str, str]] = {}
    for index, (night, telescope) in enumerate(nights):
        if index % 6 == 5:
            continue  # nobody scheduled: the night's data are public
        obids = sorted(rng.sample(range(1, len(_OBSERVERS) + 1), rng.choice((1, 1, 2))))
        program = rng.choice(_PROGRAMS[telescope])
        release: str | None = None
        if index % 7 == 3:
            release = "2031-06-30"  # an extended proprietary period
        elif index % 7 == 4:
            release = (night + timedelta(days=365)).isoformat()  # a shorter one
        runs.append({"run_id": len(runs) + 1, "telescope": telescope,
                     "first_night": night.isoformat(), "last_night": night.isoformat(),
                     "release_date": release, "program": program, "obids": obids})
        names = ", ".join(f"{_OBSERVERS[o - 1][0]} {_OBSERVERS[o - 1][1]}" for o in obids)
        per_night[night] = (names, program)
    return {"observers": observers, "runs": runs}, per_night


# ---------------------------------------------------------------- broken files


_BREAKAGES = (
    ("missing_end", "shane"), ("missing_simple", "shane"), ("nul_bytes", "shane"),
    ("verify_error", "shane"), ("no_date", "nickel"), ("truncated", "AO"),
    ("bad_version", "nickel"),
)


def _choose_breakages(planned: list[tuple[int, date, str, _Frame]]) -> dict[int, str]:
    """Positions of the science frames to break, spread over the plan."""
    chosen: dict[int, str] = {}
    step = max(1, len(planned) // (len(_BREAKAGES) + 1))
    for k, (how, instrument_dir) in enumerate(_BREAKAGES):
        for position in range((k + 1) * step, len(planned)):
            _, _, where, frame = planned[position]
            if (where == instrument_dir and frame.frame_type == "science"
                    and position not in chosen):
                chosen[position] = how
                break
    return chosen


def _break(path: Path, how: str, cards: list[str], data: bytes) -> None:
    """Rewrite ``path`` broken the way real archive files are."""
    if how == "missing_end":
        write_fits(path, cards, data, end=False)
    elif how == "missing_simple":
        cards[0] = format_card("TEST", 3, "Bad test image")
        write_fits(path, cards, data)
    elif how == "nul_bytes":
        head = bytearray(header_bytes(cards))
        head[24 * CARD + 1 : 25 * CARD] = b"\0" * (CARD - 1)
        path.write_bytes(bytes(head) + data + b"\0" * (-len(data) % 2880))
    elif how == "verify_error":
        cards[1], cards[2] = cards[2], cards[1]
        write_fits(path, cards, data)
    elif how == "bad_version":
        set_card(cards, "VERSION", "x")
        cards[[c[:8].rstrip() for c in cards].index("VERSION")] = (
            "VERSION = 'nickel_direct / Data acquisition version".ljust(CARD))
        write_fits(path, cards, data)
    elif how == "no_date":
        for key in ("DATE-OBS", "DATE-BEG", "DATE"):
            remove_card(cards, key)
        write_fits(path, cards, data)
    elif how == "truncated":
        write_fits(path, cards, data)
        with path.open("r+b") as handle:
            handle.truncate(len(header_bytes(cards)) + len(data) // 2)


# ---------------------------------------------------------------- entry points


def write_demo_data(directory: Path, *, seed: int = 1) -> DemoSummary:
    """Write the demo archive below ``directory`` (created if needed)."""
    rng = random.Random(seed)
    pixels = np.random.default_rng(seed)
    nights = _nights(rng)
    schedule, per_night = _schedule(rng, nights)
    counts: dict[str, int] = {}
    broken: list[str] = []
    overrides: list[str] = []
    planned = [
        (index, night, instrument_dir, frame)
        for index, (night, telescope) in enumerate(nights)
        for instrument_dir, frame in _frames_for_night(
            rng, night, telescope, *per_night.get(night, ("Lick Staff", "Engineering")))
    ]
    damage = _choose_breakages(planned)
    total = 0
    for position, (index, night, instrument_dir, frame) in enumerate(planned):
        path = directory / f"{night:%Y-%m}" / f"{night:%d}" / instrument_dir / frame.filename
        cards, shape, bitpix = _header(frame, night, total + 1)
        data = _pixels(pixels, frame, shape, bitpix)
        how = damage.get(position)
        if how is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            _break(path, how, cards, data)
            broken.append(path.relative_to(directory).as_posix())
        else:
            write_fits(path, cards, data)
        stamp = (frame.start + timedelta(seconds=frame.exptime + 20)).timestamp()
        os.utime(path, (stamp, stamp))
        counts[frame.kind] = counts.get(frame.kind, 0) + 1
        total += 1
        if index == 4 and (position + 1 == len(planned) or planned[position + 1][0] != 4):
            overrides.append(_write_override(directory, night, schedule))
    # Files that cannot be read at all: the loader records them as rejections.
    for name, content in (("notes.fits", b"Observing notes typed into the wrong file.\n"),
                          ("empty.fits", b"")):
        night = nights[-3][0]
        path = directory / f"{night:%Y-%m}" / f"{night:%d}" / "shane" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        broken.append(path.relative_to(directory).as_posix())
        total += 1
    schedule_path = directory / SCHEDULE_FILE
    schedule_path.write_text(json.dumps(schedule, indent=1, sort_keys=True) + "\n")
    return DemoSummary(directory, total, len(nights), dict(sorted(counts.items())),
                       tuple(broken), tuple(overrides), schedule_path,
                       len(schedule["observers"]), len(schedule["runs"]))


def _write_override(directory: Path, night: date, schedule: Schedule) -> str:
    """An override file as staff drop them: reassign one frame type, grant one file."""
    for instrument_dir in ("shane", "nickel", "AO"):
        folder = directory / f"{night:%Y-%m}" / f"{night:%d}" / instrument_dir
        if folder.is_dir():
            break
    last_name = str(schedule["observers"][2]["last_name"])
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "override.access"
    path.write_text(
        "# Demo override rules: first matching line wins\n"
        "*2.fits obstype flat\n"
        f"*1.fits access {last_name.lower()}\n"
        "*3.fits access public\n"
    )
    return path.relative_to(directory).as_posix()


def write_bulk_data(directory: Path, *, count: int, seed: int = 1) -> DemoSummary:
    """``count`` small, valid files (all instruments) for benchmarks, quickly.

    Headers come from the same templates as the demo data with tiny 8x8 arrays;
    files are spread over nights of 2015-2024, 200 files per night and directory.
    """
    rng = random.Random(seed)
    kinds = ("kast_blue", "kast_red", "sharcs", "nickel")
    dirs = {"kast_blue": "shane", "kast_red": "shane", "sharcs": "AO", "nickel": "nickel"}
    prepared = {}
    for kind in kinds:
        cards = load_template(_TEMPLATES[kind][0])
        set_card(cards, "NAXIS1", 8)
        set_card(cards, "NAXIS2", 8)
        prepared[kind] = cards
    start = date(2015, 1, 1)
    for i in range(count):
        kind = kinds[i % len(kinds)]
        night = start + timedelta(days=i // (200 * len(kinds)))
        cards = list(prepared[kind])
        name, ra, dec = _TARGETS[rng.randrange(len(_TARGETS))]
        moment = datetime(night.year, night.month, night.day, 4, 0, tzinfo=UTC) + timedelta(
            days=1, seconds=i % 30000)
        set_card(cards, "OBJECT", name)
        set_card(cards, "DATE-BEG" if kind == "sharcs" else "DATE-OBS", _iso(moment))
        set_card(cards, "RA", _sexagesimal(ra, hours=True))
        set_card(cards, "DEC", _sexagesimal(dec, hours=False))
        set_card(cards, "CRVAL1", ra)
        set_card(cards, "CRVAL2", dec)
        prefix = {"kast_blue": "b", "kast_red": "r", "sharcs": "s", "nickel": "d"}[kind]
        path = directory / f"{night:%Y-%m}" / f"{night:%d}" / dirs[kind] / f"{prefix}{i}.fits"
        write_fits(path, cards)
    return DemoSummary(directory, count, -(-count // (200 * len(kinds))))
