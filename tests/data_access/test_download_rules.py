"""The download rules without HTTP: ranges, validators, tar streams, rate, preview cache."""

from __future__ import annotations

import io
import os
import tarfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from vo_service.services.datasets import Dataset
from vo_service.services.downloads import (
    FileReader,
    RangeNotSatisfiable,
    file_to_send,
    not_modified,
    parse_ranges,
    range_applies,
)
from vo_service.services.previews import PreviewCache
from vo_service.services.tarball import Member, RateLimiter, TarPlan, TarStream


@pytest.mark.parametrize(("header", "expected"), [
    (None, None), ("items=0-1", None), ("bytes=0-0", [(0, 1)]), ("bytes=-10", [(90, 100)]),
    ("bytes=-1000", [(0, 100)]), ("bytes=95-", [(95, 100)]), ("bytes=90-200", [(90, 100)]),
    ("bytes=0-9,20-29", [(0, 10), (20, 30)]), ("bytes=0-9,5-14", [(0, 15)]),
    ("bytes=0-9,10-19", [(0, 20)]), ("bytes=100-,0-1", [(0, 2)]),
    (",".join(f"bytes={i * 2}-{i * 2}" for i in range(1)), [(0, 1)]),
])
def test_ranges(header, expected) -> None:
    assert parse_ranges(header, 100) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=5-1", "bytes=a-b", "bytes=",
                                    "bytes=-0", "bytes=--1", "bytes=\u0661-\u0662", "bytes",
                                    "bytes=" + "1" * 5000, "bytes=-", "bytes=1-2-3"])
def test_unsatisfiable_ranges(header) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_ranges(header, 100)


def test_many_ranges_become_one() -> None:
    spec = "bytes=" + ",".join(f"{i * 4}-{i * 4 + 1}" for i in range(20))
    assert parse_ranges(spec, 1000) == [(0, 78)]


def _dataset(size: int, checksum: str | None = "abc", mtime: datetime | None = None
             ) -> Dataset:
    return Dataset(did="ivo://x?y", path="2020-01/01/shane/b1.fits", filename="b1.fits",
                   night=date(2020, 1, 1), instrument_dir="shane", instrument=None,
                   frame_type="science", file_size=size, file_mtime=mtime, checksum=checksum,
                   release_date=None, dataproduct_type="image", access_format=None,
                   s_ra=None, s_dec=None, s_fov=None, em_min=None, em_max=None, public=True)


def test_validators_come_from_the_row_while_the_file_is_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "b1.fits"
    path.write_bytes(b"x" * 10)
    stored = datetime(2020, 1, 2, 3, 4, 5)
    sent = file_to_send(path, os.stat(path), _dataset(10, "abc", stored))
    assert sent.etag == '"abc"' and sent.last_modified == stored.replace(tzinfo=UTC)
    changed = file_to_send(path, os.stat(path), _dataset(11, "abc", stored))
    assert changed.etag != '"abc"' and changed.last_modified != stored.replace(tzinfo=UTC)


def test_conditions() -> None:
    when = datetime(2020, 1, 2, tzinfo=UTC)
    assert not_modified('"a", "b"', None, '"b"', when)
    assert not_modified("*", None, '"b"', when)
    assert not_modified('W/"b"', None, '"b"', when)
    assert not not_modified('"c"', "Thu, 01 Jan 2030 00:00:00 GMT", '"b"', when)
    assert not_modified(None, "Thu, 01 Jan 2030 00:00:00 GMT", '"b"', when)
    assert not not_modified(None, "garbage", '"b"', when)
    assert range_applies(None, '"b"', when)
    assert range_applies('"b"', '"b"', when) and not range_applies('"c"', '"b"', when)
    assert range_applies("Thu, 02 Jan 2020 00:00:00 GMT", '"b"', when)
    assert not range_applies("garbage", '"b"', when)


def test_multipart_reader_length_matches(tmp_path: Path) -> None:
    path = tmp_path / "b1.fits"
    path.write_bytes(bytes(range(256)) * 40)
    sent = file_to_send(path, os.stat(path), _dataset(10240))
    reader = FileReader(sent, [(0, 10), (5000, 5100), (10000, 10240)], 64, "BOUNDARY")
    body = b""
    while (chunk := reader.next_chunk()) is not None:
        body += chunk
    assert len(body) == reader.content_length
    assert body.endswith(b"--BOUNDARY--\r\n") and b"Content-Range: bytes 5000-5099/10240" in body


def test_a_file_that_shrinks_breaks_the_stream(tmp_path: Path) -> None:
    path = tmp_path / "b1.fits"
    path.write_bytes(b"x" * 5000)
    reader = FileReader(file_to_send(path, os.stat(path), _dataset(5000)), None, 4096)
    assert reader.next_chunk()
    path.write_bytes(b"x" * 10)
    with pytest.raises(OSError):
        reader.next_chunk()


@pytest.mark.parametrize("gzip", [False, True])
def test_tar_stream(tmp_path: Path, gzip: bool) -> None:
    members = []
    for number, size in enumerate([0, 1, 511, 512, 513, 70000]):
        path = tmp_path / f"f{number}.fits"
        path.write_bytes(os.urandom(size))
        info = tarfile.TarInfo(f"2020-01-01-shane/{'long' * 40 if number == 2 else ''}f{number}")
        info.size = size
        members.append(Member(info.name, path, size, info.tobuf(tarfile.PAX_FORMAT)))
    tar_plan = TarPlan(tuple(members), gzip)
    stream = TarStream(tar_plan, 4096)
    body = b"".join(iter(stream.next_chunk, None))
    if not gzip:
        assert len(body) == tar_plan.tar_size
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz" if gzip else "r:") as tar:
        for info, member in zip(tar.getmembers(), members, strict=True):
            assert info.name == member.name
            assert tar.extractfile(info).read() == member.path.read_bytes()  # type: ignore[union-attr]


def test_rate_limiter_is_bounded_and_refills() -> None:
    now = [0.0]
    limiter = RateLimiter(burst=2, per_hour=3600, max_clients=3, clock=lambda: now[0])
    assert limiter.take("a") is None and limiter.take("a") is None
    wait = limiter.take("a")
    assert wait is not None and 0 < wait <= 1.0
    now[0] += 1.0
    assert limiter.take("a") is None
    limiter.refund("a")
    assert limiter.take("a") is None
    for key in "bcdefg":
        limiter.take(key)
    assert len(limiter) == 3


def test_preview_cache_trims_least_recently_used(tmp_path: Path) -> None:
    cache = PreviewCache(tmp_path, max_bytes=3000)
    for number in range(3):
        cache.put(f"{number:064x}", b"p" * 1000)
        time.sleep(0.01)
    assert cache.get(f"{0:064x}") is not None  # used: now the most recent
    time.sleep(0.01)
    cache.put(f"{9:064x}", b"p" * 1000)
    assert cache.total_bytes <= 3000
    assert cache.get(f"{1:064x}") is None  # the least recently used went first
    assert cache.get(f"{0:064x}") is not None and cache.get(f"{9:064x}") is not None
    assert not list(tmp_path.rglob(".partial-*"))
