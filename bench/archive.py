"""A synthetic but realistic Lick archive, loaded with COPY: ``bench.tap.build_database``.

    .venv/bin/python -m bench.archive [--rows 1000000] [--data-dir var/bench-tap]

``load_archive(owner_dsn, rows)`` replaces the rows of ivoa.obscore, lick.files and
the accounts/grants of auth with ``rows`` frames shaped like the real archive:

* **nights** from 1990-01-01 to yesterday on the Shane 3-m and the Nickel 1-m (three
  nights in four observed), more frames a night in later years (bigger detectors,
  faster readout); every instrument of conf/instruments.toml in its era: Kast blue and
  red (pairs, since 1992), ShARCS (AO directory, since 2014-04), Nickel Direct, the
  Nickel Spectrograph (1990-2000); every frame type (bias, dark, flat, arc, science,
  focus, unknown) in per-instrument proportions, with the filters and dispersers
  (and so em_min/em_max) of the configuration;
* **sky** clustered like real pointings: a few thousand targets observed again and
  again (Zipf popularity: a handful have thousands of frames), each frame dithered
  around its target, plus survey fields (a supernova search on the Nickel) seen a few
  times each; bias and dark frames carry no position, flats point near the zenith;
* **owners and programs**: one program a scheduled night and telescope (one night in
  ten is engineering, hence public), 1-4 observers a program from 2,000 synced
  observers (some in many programs), release date = night + 2 years or, for long
  programs (three in five), 4 to 20 years; about 30 % of the rows are proprietary
  today, 1 % undetermined (NULL release: staff only);
* **the bench observer**: ``bench.observer@example.edu`` (observer id 1) is an owner in
  45 programs and holds override grants on 5 more (50 programs), plus a few other
  users' grants, so that row-level security has real work to do.

Indexes other than the primary keys are dropped for the load and rebuilt after it,
then both tables are ``VACUUM ANALYZE``d (the planner's statistics describe the new
rows, not the empty tables of before).
"""

from __future__ import annotations

import argparse
import io
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import psycopg2
import psycopg2.extensions

PROJECT = Path(__file__).resolve().parent.parent
FIRST_NIGHT = date(1990, 1, 1)
MJD_EPOCH = date(1858, 11, 17)
OBSERVERS = 2_000
BENCH_OBSERVER_ID = 1
BENCH_LOGIN = "bench.observer@example.edu"
OWNED_PROGRAMS, GRANTED_PROGRAMS = 45, 5
TARGETS, SURVEY_FIELDS = 5_000, 20_000
CHUNK = 200_000
DID = "ivo://bench/lick?{}"
VERSION = 2  # of the generator: a database built by another version is rebuilt

# instrument -> (dir, telescope, file prefix, frame types and weights, per-night weight)
FRAME_TYPES = ("bias", "dark", "flat", "arc", "science", "focus", "unknown")
INSTRUMENTS = {
    "Kast Blue": ("shane", "Shane", "b", (10, 0, 10, 6, 68, 2, 4)),
    "Kast Red": ("shane", "Shane", "r", (10, 0, 10, 6, 68, 2, 4)),
    "ShARCS": ("AO", "Shane", "s", (0, 8, 10, 0, 78, 2, 2)),
    "Nickel Direct": ("nickel", "Nickel", "d", (8, 2, 12, 0, 74, 2, 2)),
    "Nickel Spectrograph": ("nickel", "Nickel", "n", (10, 0, 10, 8, 68, 0, 4)),
}
NAMES = list(INSTRUMENTS)
FIRST_NAMES = ("Ana", "Ben", "Chen", "Dana", "Eli", "Fatima", "Gus", "Hana", "Ivan", "Jo",
               "Kai", "Lena", "Maya", "Nils", "Omar", "Pia", "Quinn", "Raj", "Sara", "Tom")
LAST_NAMES = ("Alvarez", "Brown", "Chang", "Dixon", "Evans", "Filippenko", "Garcia", "Huang",
              "Ito", "Jensen", "Khan", "Lopez", "Miller", "Nguyen", "Okafor", "Patel", "Quist",
              "Rossi", "Smith", "Tanaka", "Umar", "Vogt", "Wang", "Xu", "Young", "Zhou")


@dataclass(frozen=True)
class Archive:
    """What the benchmarks need to know about what was loaded."""

    rows: int
    proprietary: int
    undetermined: int
    observer_login: str
    observer_rows: int  # rows the bench observer owns or was granted, not yet public


def _instrument_facts() -> dict[str, dict[str, object]]:
    with (PROJECT / "conf" / "instruments.toml").open("rb") as handle:
        return tomllib.load(handle)["instruments"]  # type: ignore[no-any-return]


def _bands(name: str, facts: dict[str, dict[str, object]]) -> list[tuple[str, float, float,
                                                                       float | None]]:
    """(filter or disperser, em_min, em_max, resolving power) choices of an instrument."""
    entry = facts[name]
    for key in ("filters", "dispersers"):
        table = entry.get(key)
        if isinstance(table, dict) and table:
            return [(band, float(v["em_min"]), float(v["em_max"]),
                     float(v["res_power"]) if "res_power" in v else None)
                    for band, v in table.items()]
    return [("", float(entry.get("em_min", 3.2e-7)), float(entry.get("em_max", 1e-6)), None)]


def _sessions(rng: np.random.Generator, today: date) -> dict[str, np.ndarray]:
    """Each observed (night, instrument): its night, instrument and frame weight."""
    nights, instruments, weights = [], [], []
    day = FIRST_NIGHT
    while day < today:
        year = day.year + day.timetuple().tm_yday / 366
        growth = 1 + (year - 1990) / 6  # frames a night grow with the years
        if rng.random() < 0.75:  # Shane
            if day >= date(2014, 4, 1) and rng.random() < 0.3:
                nights.append(day.toordinal())
                instruments.append(NAMES.index("ShARCS"))
                weights.append(2.0 * growth)
            elif day >= date(1992, 1, 1):
                nights.append(day.toordinal())
                instruments.append(NAMES.index("Kast Blue"))  # with Kast Red: pairs
                weights.append(1.6 * growth)
        if rng.random() < 0.75:  # Nickel
            spectrograph = day < date(2000, 1, 1) and rng.random() < 0.2
            nights.append(day.toordinal())
            instruments.append(NAMES.index("Nickel Spectrograph" if spectrograph
                                           else "Nickel Direct"))
            weights.append(1.2 * growth)
        day += timedelta(days=1)
    return {"night": np.array(nights), "instrument": np.array(instruments),
            "weight": np.array(weights)}


def _programs(rng: np.random.Generator, sessions: dict[str, np.ndarray]
              ) -> tuple[np.ndarray, list[str], list[list[int]], np.ndarray]:
    """A program for each session (-1: engineering, public), with codes, observers and
    a release period in days.  A program spans a semester's nights on its telescope."""
    count = len(sessions["night"])
    semester = np.array([date.fromordinal(int(n)).year * 2 + (date.fromordinal(int(n)).month
                                                              > 6) for n in sessions["night"]])
    telescope = np.array([INSTRUMENTS[NAMES[i]][1] == "Shane" for i in sessions["instrument"]])
    # about 25 programs a semester and telescope
    slot = rng.integers(0, 25, count)
    key = semester * 100 + telescope * 50 + slot
    unique, program = np.unique(key, return_inverse=True)
    codes, owners = [], []
    popularity = 1 / np.arange(1, OBSERVERS + 1) ** 0.8
    popularity /= popularity.sum()
    for k in unique:
        sem, rest = divmod(int(k), 100)
        tel, number = divmod(rest, 50)
        codes.append(f"{sem // 2}{'AB'[sem % 2]}-{'SN'[1 - tel]}{number:03d}")
        team = rng.choice(np.arange(2, OBSERVERS + 1), size=int(rng.integers(1, 5)),
                          replace=False, p=popularity[1:] / popularity[1:].sum())
        owners.append(sorted(int(t) for t in team))
    # the bench observer: in OWNED_PROGRAMS programs spread over the years, recent ones
    # among them (proprietary); GRANTED_PROGRAMS more are granted to it (see _auth)
    chosen = np.linspace(len(unique) * 0.5, len(unique) - 1, OWNED_PROGRAMS).astype(int)
    for p in chosen:
        owners[p] = sorted({BENCH_OBSERVER_ID, *owners[p]})
    period = np.where(rng.random(len(unique)) < 0.6,
                      rng.integers(4 * 365, 20 * 365, len(unique)), 2 * 365)
    engineering = rng.random(count) < 0.1
    program[engineering] = -1
    return program, codes, owners, period


def _positions(rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Points on the sky visible from Mt. Hamilton (dec > -30), uniform on the sphere."""
    ra = rng.uniform(0, 360, count)
    dec = np.degrees(np.arcsin(rng.uniform(np.sin(np.radians(-30)), np.sin(np.radians(85)),
                                           count)))
    return ra, dec


def _tangent(ra0: np.ndarray, dec0: np.ndarray, xi: np.ndarray, eta: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray]:
    """The gnomonic inverse: (xi, eta) in radians on the plane tangent at (ra0, dec0)."""
    a0, d0 = np.radians(ra0), np.radians(dec0)
    dec = np.arcsin((np.sin(d0) + eta * np.cos(d0)) / np.sqrt(1 + xi * xi + eta * eta))
    ra = a0 + np.arctan2(xi, np.cos(d0) - eta * np.sin(d0))
    return np.degrees(ra) % 360, np.degrees(dec)


def _text(values: np.ndarray, fmt: str) -> np.ndarray:
    return np.char.mod(fmt, values)


def _rows(rng: np.random.Generator, rows: int, today: date) -> Iterator[tuple[str, str, dict[
        str, int]]]:
    """Chunks of COPY text for ivoa.obscore and lick.files, with counts."""
    facts = _instrument_facts()
    sessions = _sessions(rng, today)
    program, codes, owners, period = _programs(rng, sessions)
    weights = sessions["weight"] / sessions["weight"].sum()
    per_session = np.floor(weights * rows).astype(np.int64)
    per_session[np.argsort(-weights)[: rows - per_session.sum()]] += 1
    session_of_row = np.repeat(np.arange(len(per_session)), per_session)
    first_row = np.concatenate(([0], np.cumsum(per_session)[:-1]))
    # targets: Zipf popularity; each session observes a few of them, or survey fields
    target_ra, target_dec = _positions(rng, TARGETS)
    field_ra, field_dec = _positions(rng, SURVEY_FIELDS)
    target_names = np.array([("NGC %d" if i % 3 == 0 else "HD %d" if i % 3 == 1 else
                              "SN %d") % (100 + 37 * i) for i in range(TARGETS)])
    popularity = 1 / np.arange(1, TARGETS + 1) ** 0.3
    popularity /= popularity.sum()
    survey = (sessions["instrument"] == NAMES.index("Nickel Direct")) & (
        rng.random(len(per_session)) < 0.3)
    picks = rng.integers(2, 12, len(per_session))
    pick_start = np.concatenate(([0], np.cumsum(picks)[:-1]))
    picked = rng.choice(TARGETS, size=int(picks.sum()), p=popularity)
    observer_names = [f"{LAST_NAMES[i % len(LAST_NAMES)]}{'' if i < 26 else i}"
                      for i in range(OBSERVERS + 1)]
    band_tables = {name: _bands(name, facts) for name in NAMES}
    today_ordinal = today.toordinal()
    counts = {"proprietary": 0, "undetermined": 0, "observer": 0}
    for start in range(0, rows, CHUNK):
        stop = min(rows, start + CHUNK)
        n = stop - start
        index = np.arange(start, stop)
        session = session_of_row[start:stop]
        within = index - first_row[session]
        instrument = sessions["instrument"][session].copy()
        kast = instrument == NAMES.index("Kast Blue")
        instrument[kast & (within % 2 == 1)] = NAMES.index("Kast Red")
        frame_number = np.where(kast, within // 2, within) + 1
        night = sessions["night"][session]
        # frame types by instrument
        frame = np.empty(n, dtype=np.int64)
        u = rng.random(n)
        for code, name in enumerate(NAMES):
            mask = instrument == code
            cumulative = np.cumsum(INSTRUMENTS[name][3]) / sum(INSTRUMENTS[name][3])
            frame[mask] = np.searchsorted(cumulative, u[mask], side="right")
        if kast.any():  # a Kast pair shares its frame type, target and time
            pair = kast & (within % 2 == 1)
            frame[pair] = np.roll(frame, 1)[pair]
        science = (frame == FRAME_TYPES.index("science")) | (frame == 6) | (frame == 5)
        # pointings
        k = picks[session]
        slot = np.floor(rng.random(n) * k).astype(np.int64)
        if kast.any():
            slot[kast & (within % 2 == 1)] = np.roll(slot, 1)[kast & (within % 2 == 1)]
        target = picked[pick_start[session] + slot]
        is_survey = survey[session]
        field = rng.integers(0, SURVEY_FIELDS, n)
        ra0 = np.where(is_survey, field_ra[field], target_ra[target])
        dec0 = np.where(is_survey, field_dec[field], target_dec[target])
        spectro = np.isin(instrument, [NAMES.index("Kast Blue"), NAMES.index("Kast Red"),
                                       NAMES.index("Nickel Spectrograph")])
        dither = np.radians(np.where(spectro, 3, 20) / 3600)
        ra, dec = _tangent(ra0, dec0, rng.normal(0, 1, n) * dither, rng.normal(0, 1, n) * dither)
        mjd_night = night - MJD_EPOCH.toordinal()
        t_min = mjd_night + 1.1 + 0.45 * within / np.maximum(per_session[session], 1) + \
            rng.uniform(0, 0.001, n)
        flat = frame == FRAME_TYPES.index("flat")
        # flats near the zenith (dome or twilight): RA ~ local sidereal time, dec ~ 37.3
        lst = (280.46061837 + 360.98564736629 * (t_min - 51544.5) - 121.64) % 360
        ra = np.where(flat, lst, ra)
        dec = np.where(flat, 37.34 + rng.normal(0, 0.5, n), dec)
        positioned = ~np.isin(frame, [FRAME_TYPES.index("bias"), FRAME_TYPES.index("dark")])
        exptime = np.select(
            [frame == 0, frame == 1, flat, frame == 3, frame == 5],
            [np.zeros(n), rng.uniform(60, 300, n), rng.uniform(1, 30, n),
             rng.uniform(1, 20, n), rng.uniform(5, 30, n)], rng.uniform(30, 1800, n))
        t_max = t_min + exptime / 86400
        # filters / dispersers, chosen per session (a set-up a night) and frame type
        band = np.zeros(n, dtype=np.int64)
        em_min, em_max = np.zeros(n), np.zeros(n)
        res_power = np.full(n, np.nan)
        band_name = np.empty(n, dtype=object)
        for code, name in enumerate(NAMES):
            mask = instrument == code
            if not mask.any():
                continue
            table = band_tables[name]
            imaging = name in ("ShARCS", "Nickel Direct")
            choice = (session[mask] * 7 + (within[mask] // 3 if imaging else 0)) % len(table)
            band[mask] = choice
            em_min[mask] = np.array([b[1] for b in table])[choice]
            em_max[mask] = np.array([b[2] for b in table])[choice]
            res_power[mask] = np.array([np.nan if b[3] is None else b[3]
                                        for b in table])[choice]
            band_name[mask] = np.array([b[0] for b in table], dtype=object)[choice]
        # ownership
        prog = program[session]
        release = np.where(prog >= 0, night + period[np.maximum(prog, 0)], night)
        undetermined = (prog >= 0) & (rng.random(n) < 0.01)
        proprietary = undetermined | (release > today_ordinal)
        counts["proprietary"] += int(proprietary.sum())
        counts["undetermined"] += int(undetermined.sum())
        obscore, files = io.StringIO(), io.StringIO()
        night_text = [date.fromordinal(int(d)).isoformat() for d in night]
        release_text = [r"\N" if undetermined[i] else date.fromordinal(int(release[i]))
                        .isoformat() for i in range(n)]
        ra_text, dec_text = _text(ra, "%.9f"), _text(dec, "%.9f")
        # s_region: a square of the field's size around the pointing, its corners on the
        # tangent plane at sqrt(2) x half its side, so inside the bound circle of
        # diameter s_fov (migration 0006's CHECK) whatever the declination
        radius = np.array([float(facts[name]["field_radius"])  # type: ignore[arg-type]
                           for name in NAMES])[instrument] / 3600
        half = np.radians(radius / np.sqrt(2))
        corners = [_tangent(ra, dec, sx * half, sy * half)
                   for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1))]
        corner_text = [(_text(a, "%.9f"), _text(b, "%.9f")) for a, b in corners]
        fov_text = _text(2 * radius * 1.001, "%.6f")
        tmin_text, tmax_text = _text(t_min, "%.6f"), _text(t_max, "%.6f")
        exp_text = _text(exptime, "%.1f")
        emin_text, emax_text = _text(em_min, "%.4g"), _text(em_max, "%.4g")
        for i in range(n):
            name = NAMES[instrument[i]]
            directory, telescope, prefix, _ = INSTRUMENTS[name]
            fact = facts[name]
            d = night_text[i]
            filename = f"{prefix}{int(frame_number[i]):04d}.fits"
            path = f"{d[:7]}/{d[8:]}/{directory}/{filename}"
            did = DID.format(start + i + 1)
            ftype = FRAME_TYPES[frame[i]]
            p = int(prog[i])
            team = owners[p] if p >= 0 else []
            owner_text = "{" + ",".join(map(str, team)) + "}"
            if BENCH_OBSERVER_ID in team and proprietary[i]:
                counts["observer"] += 1
            rights = "proprietary" if proprietary[i] else "public"
            if science[i]:
                obj = f"survey field {field[i]}" if is_survey[i] else target_names[target[i]]
            else:
                obj = {"bias": "bias", "dark": "dark", "flat": "dome flat",
                       "arc": "arc HeHgCd", "focus": "focus"}.get(ftype, "")
            if positioned[i]:
                region = "{" + ",".join(f"({a[i]}d,{b[i]}d)" for a, b in corner_text) + "}"
                position = (ra_text[i], dec_text[i], fov_text[i], region)
            else:
                position = (r"\N", r"\N", r"\N", r"\N")
            pixels = 2048 if name != "Nickel Direct" else 1024
            res = res_power[i]
            obscore.write("\t".join((
                "spectrum" if fact["dataproduct_type"] == "spectrum" else "image", "1",
                str(fact["collection"]), path.removesuffix(".fits"), did,
                f"http://127.0.0.1/datalink/links?ID={did}", "application/fits",
                str(pixels * pixels * 2 // 1024 + 3), obj or r"\N", *position,
                str(fact["s_resolution"]), str(pixels), str(pixels if "Kast" not in name
                                                            else 1),
                tmin_text[i], tmax_text[i], exp_text[i], exp_text[i], "1", emin_text[i],
                emax_text[i], r"\N" if np.isnan(res) else f"{res:.0f}", r"\N",
                "phot.count", r"\N", r"\N", str(fact["facility_name"]), name,
                release_text[i], rights, owner_text)) + "\n")
            observers = ", ".join(observer_names[o] for o in team) or r"\N"
            program_code = codes[p] if p >= 0 else r"\N"
            filt = band_name[i] or r"\N"
            imaging = name in ("ShARCS", "Nickel Direct")
            files.write("\t".join((
                did, path, filename, d, directory, name, telescope, ftype, obj or r"\N",
                observers, program_code, f"{d} 04:00:00", exp_text[i], "1.2",
                position[0], position[1], filt if imaging else r"\N", r"\N",
                filt if imaging else r"\N", r"\N" if imaging else "1.0",
                filt if name == "Kast Blue" else r"\N",
                filt if name in ("Kast Red", "Nickel Spectrograph") else r"\N",
                r"\N", "d57" if "Kast" in name else r"\N", r"\N",
                str(pixels * pixels * 2 + 2880), f"{d} 12:00:00", r"\N",
                f"SIMPLE  = T / {filename}", release_text[i], owner_text)) + "\n")
        yield obscore.getvalue(), files.getvalue(), {"rows": n}
    yield "", "", counts


OBSCORE_COLUMNS = (
    "dataproduct_type, calib_level, obs_collection, obs_id, obs_publisher_did, access_url, "
    "access_format, access_estsize, target_name, s_ra, s_dec, s_fov, s_region, s_resolution, "
    "s_xel1, s_xel2, t_min, t_max, t_exptime, t_resolution, t_xel, em_min, em_max, "
    "em_res_power, em_xel, o_ucd, pol_states, pol_xel, facility_name, instrument_name, "
    "obs_release_date, data_rights, owner_ids")
FILES_COLUMNS = (
    "obs_publisher_did, path, filename, night, instrument_dir, instrument, telescope, "
    "frame_type, object, observer, program, date_obs, exptime, airmass, ra, dec, filter1, "
    "filter2, science_filter, slit, grism, grating, grating_tilt, beam_splitter, "
    "ingest_flags, file_size, file_mtime, checksum, header, release_date, owner_ids")


def _secondary_indexes(cur: psycopg2.extensions.cursor) -> list[tuple[str, str]]:
    cur.execute(
        "SELECT i.schemaname || '.' || i.indexname, i.indexdef FROM pg_indexes AS i "
        "JOIN pg_class AS c ON c.relname = i.indexname "
        "JOIN pg_index AS x ON x.indexrelid = c.oid "
        "WHERE i.schemaname || '.' || i.tablename IN ('ivoa.obscore', 'lick.files') "
        "AND NOT x.indisprimary AND NOT x.indisunique")
    return [(str(name), str(definition)) for name, definition in cur.fetchall()]


def _auth(cur: psycopg2.extensions.cursor, codes: list[str], owned: set[str]) -> None:
    """Observers 1..OBSERVERS as synced accounts, the bench observer's grants and a few
    grants of other users."""
    cur.execute("DELETE FROM auth.grants; DELETE FROM auth.tokens; DELETE FROM auth.users")
    buffer = io.StringIO()
    for obid in range(1, OBSERVERS + 1):
        login = BENCH_LOGIN if obid == BENCH_OBSERVER_ID else f"observer{obid}@example.edu"
        buffer.write(f"{obid}\t{login}\t{login}\t{FIRST_NAMES[obid % len(FIRST_NAMES)]}\t"
                     f"{LAST_NAMES[obid % len(LAST_NAMES)]}\tfalse\n")
    buffer.seek(0)
    cur.copy_expert("COPY auth.users (observer_id, login, email, first_name, last_name, "
                    "is_local) FROM STDIN", buffer)
    cur.execute("SELECT user_id FROM auth.users WHERE observer_id = %s", (BENCH_OBSERVER_ID,))
    user_id = cur.fetchone()[0]  # type: ignore[index]
    others = [c for c in codes if c not in owned]
    granted = others[-GRANTED_PROGRAMS * 7::7][:GRANTED_PROGRAMS]  # recent ones
    for code in granted:
        cur.execute("INSERT INTO auth.grants (user_id, program, note) VALUES (%s, %s, %s)",
                    (user_id, code, "bench: collaborator's program"))
    cur.execute("INSERT INTO auth.grants (user_id, program, note) SELECT u.user_id, %s, "
                "'bench' FROM auth.users AS u WHERE u.observer_id BETWEEN 2 AND 40",
                (others[-3],))


def load_archive(owner_dsn: str, rows: int, *, seed: int = 1) -> Archive:
    """Replace the archive's rows with ``rows`` synthetic frames (see the module doc)."""
    rng = np.random.default_rng(seed)
    today = date.today()
    started = time.perf_counter()
    conn = psycopg2.connect(owner_dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("TRUNCATE ivoa.obscore CASCADE")
            indexes = _secondary_indexes(cur)
            for name, _ in indexes:
                cur.execute(f"DROP INDEX {name}")
            loaded = 0
            counts: dict[str, int] = {}
            for obscore, files, counted in _rows(rng, rows, today):
                if not obscore:
                    counts = counted
                    break
                cur.copy_expert(f"COPY ivoa.obscore ({OBSCORE_COLUMNS}) FROM STDIN",
                                io.StringIO(obscore))
                cur.copy_expert(f"COPY lick.files ({FILES_COLUMNS}) FROM STDIN",
                                io.StringIO(files))
                loaded += counted["rows"]
                print(f"  {loaded:,} rows loaded, {time.perf_counter() - started:.0f} s",
                      flush=True)
            for _name, definition in indexes:
                cur.execute(definition)
            print(f"  indexes rebuilt, {time.perf_counter() - started:.0f} s", flush=True)
            cur.execute("SELECT DISTINCT program FROM lick.files WHERE program IS NOT NULL "
                        "ORDER BY 1")
            codes = [r[0] for r in cur.fetchall()]
            cur.execute("SELECT DISTINCT program FROM lick.files WHERE owner_ids @> %s",
                        ([BENCH_OBSERVER_ID],))
            owned = {r[0] for r in cur.fetchall()}
            _auth(cur, codes, owned)
        conn.commit()
        conn.autocommit = True
        with conn.cursor() as cur:
            for table in ("ivoa.obscore", "lick.files", "auth.users", "auth.grants"):
                cur.execute(f"VACUUM ANALYZE {table}")
    finally:
        conn.close()
    print(f"  {rows:,} rows, {counts['proprietary']:,} proprietary "
          f"({counts['proprietary'] / max(rows, 1):.0%}), {counts['undetermined']:,} "
          f"undetermined; bench observer owns {counts['observer']:,} proprietary rows; "
          f"{time.perf_counter() - started:.0f} s", flush=True)
    return Archive(rows, counts["proprietary"], counts["undetermined"], BENCH_LOGIN,
                   counts["observer"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--data-dir", type=Path, default=PROJECT / "var" / "bench-tap")
    args = parser.parse_args()
    from bench.tap import build_database

    build_database(args.data_dir, args.rows)


if __name__ == "__main__":
    main()
