"""The search page against a running server and the demo archive.

Expected rows come from the owner role's view of the database (what exists, and its
release dates), never from the service; what a requester may see is decided from
that view the way the access rules state it (public rows, plus the owner's own).
"""

from __future__ import annotations

import csv
import html
import io
import math
import re
import tarfile
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from tests.web.conftest import owner_rows, public_dids

ID_RE = re.compile(r'name="ID" value="([^"]+)"')
LINK_RE = r'href="/search(\?[^"]*)" rel="{}"'


def _grab(pattern: str, text: str, flags: int = 0) -> str:
    match = re.search(pattern, text, flags)
    assert match is not None, f"no {pattern!r} in the page"
    return html.unescape(match.group(1))


def _page(client, query: str, status: int = 200) -> tuple[list[str], str | None, str | None, str]:
    reply = client.get("/search" + query)
    assert reply.status_code == status, reply.text[-3000:]
    assert reply.headers["content-type"].startswith("text/html")
    text = reply.text
    ids = [html.unescape(i) for i in ID_RE.findall(text)]
    found = [re.search(LINK_RE.format(rel), text) for rel in ("next", "prev")]
    nxt, prev = (html.unescape(m.group(1)) if m else None for m in found)
    return ids, nxt, prev, text


def _all_pages(client, query: str) -> tuple[list[str], list[str]]:
    """Every row following next links, then following prev links back from the last page."""
    forward: list[str] = []
    pages = []
    current: str | None = query
    while current:
        ids, current_next, _, _ = _page(client, current)
        assert ids, "a next link led to an empty page"
        pages.append(current)
        forward += ids
        current = current_next
    backward: list[list[str]] = []
    ids, _, current, _ = _page(client, pages[-1])
    backward.append(ids)
    while current:
        ids, _, current, _ = _page(client, current)
        backward.append(ids)
    return forward, [i for chunk in reversed(backward) for i in chunk]


def _visible(database, where: str, params: tuple = (), *, obid: int | None = None,
             order: str = "obs_publisher_did") -> list[str]:
    """DIDs of lick.files matching ``where`` that anonymous (or observer ``obid``) sees."""
    public = public_dids(database)
    rows = owner_rows(database, f"SELECT f.obs_publisher_did, f.owner_ids FROM lick.files AS f "
                                f"JOIN ivoa.obscore AS o USING (obs_publisher_did) "
                                f"WHERE {where} ORDER BY {order}", params)
    return [r[0] for r in rows if r[0] in public or (obid is not None and obid in r[1])]


def test_empty_form_shows_no_results(client, archive):
    ids, _, _, text = _page(client, "")
    assert ids == [] and 'id="search-form"' in text and "Results" not in text


def _public_object(database) -> str:
    """An upper-case object name of several public frames of the demo archive."""
    public = public_dids(database)
    counts: dict[str, int] = {}
    for did, obj in owner_rows(database, "SELECT obs_publisher_did, object FROM lick.files "
                                         "WHERE object ~ '^[A-Z]+ [0-9]+$'"):
        if did in public:
            counts[obj] = counts.get(obj, 0) + 1
    return max(sorted(counts), key=lambda name: counts[name])


def test_object_search_is_case_insensitive_by_default(client, server, archive):
    name = _public_object(server.database)
    part = name.lower()[:-1]  # "ngc 747" of "NGC 7479"
    ids, nxt, _, _ = _page(client, f"?object={part}&size=1000")
    expected = _visible(server.database, "f.object ILIKE %s", (f"%{part}%",))
    assert expected and sorted(ids) == sorted(expected) and nxt is None
    exact, _, _, _ = _page(client, f"?object={part}&match_case=1&size=1000")
    assert exact == []  # the demo writes names in capitals
    prefix = name.split()[0]
    starts, _, _, _ = _page(client, f"?object={prefix}&object_match=starts&match_case=1"
                                    "&size=1000")
    assert sorted(starts) == sorted(_visible(server.database, "f.object LIKE %s",
                                             (prefix + "%",)))
    equals, _, _, _ = _page(client, f"?object={name.lower()}&object_match=exact&size=1000")
    assert sorted(equals) == sorted(_visible(server.database, "lower(f.object) = lower(%s)",
                                             (name,)))


def test_paging_forward_and_back_visits_every_row_once(client, server, archive):
    expected = _visible(server.database, "true",
                        order="f.exptime DESC NULLS FIRST, f.obs_publisher_did DESC")
    forward, backward = _all_pages(client, "?sort=exptime&order=desc&size=23")
    assert forward == expected
    assert backward == forward


@pytest.mark.parametrize("sort", ["object", "night", "filename", "airmass"])
def test_paging_in_ascending_order(client, server, archive, sort):
    expected = _visible(server.database, "true",
                        order=f"f.{sort} ASC NULLS LAST, f.obs_publisher_did ASC")
    forward, backward = _all_pages(client, f"?sort={sort}&order=asc&size=40")
    assert forward == expected and backward == forward


def test_night_range_is_inclusive(client, server, archive):
    nights = [r[0] for r in owner_rows(server.database,
                                       "SELECT DISTINCT night FROM lick.files ORDER BY night")]
    first, last = nights[2], nights[5]
    ids, _, _, _ = _page(client, f"?night_from={first}&night_to={last}&size=1000")
    expected = _visible(server.database, "f.night BETWEEN %s AND %s", (first, last))
    assert expected and sorted(ids) == sorted(expected)
    one, _, _, _ = _page(client, f"?night_from={last}&night_to={last}&size=1000")
    assert sorted(one) == sorted(_visible(server.database, "f.night = %s", (last,)))


def test_cone_search_in_sexagesimal_and_degrees(client, server, archive):
    ra, dec = owner_rows(server.database, "SELECT s_ra, s_dec FROM ivoa.obscore WHERE "
                                          "target_name = %s LIMIT 1",
                         (_public_object(server.database),))[0]
    expected = _visible(server.database,
                        "spoint(radians(o.s_ra), radians(o.s_dec)) <-> "
                        "spoint(radians(%s), radians(%s)) <= radians(2.0 / 60)", (ra, dec))
    assert expected
    ids, _, _, _ = _page(client, f"?ra={ra}&dec={dec}&radius=2&radius_unit=arcmin&size=1000")
    assert sorted(ids) == sorted(expected)
    hours = ra / 15
    h, m = int(hours), int((hours - int(hours)) * 60)
    s = (hours * 3600) - h * 3600 - m * 60
    d = abs(dec)
    dd, dm = int(d), int((d - int(d)) * 60)
    ds = d * 3600 - dd * 3600 - dm * 60
    sign = "-" if dec < 0 else "%2B"
    sexa, _, _, _ = _page(client, f"?ra={h:02d}:{m:02d}:{s:06.3f}&dec={sign}{dd:02d}:{dm:02d}:"
                                  f"{ds:05.2f}&radius=120&radius_unit=arcsec&size=1000")
    assert sorted(sexa) == sorted(expected)


def test_instruments_and_frame_types(client, server, archive):
    ids, _, _, _ = _page(client, "?instrument=kast_red&instrument=sharcs&frame_type=flat"
                                 "&frame_type=dark&size=1000")
    expected = _visible(server.database, "f.instrument IN ('Kast Red', 'ShARCS') AND "
                                         "f.frame_type IN ('flat', 'dark')")
    assert expected and sorted(ids) == sorted(expected)


def test_path_equals_and_starts_with(client, server, archive):
    path, filename = owner_rows(server.database, "SELECT path, filename FROM lick.files "
                                "WHERE release_date < now() - interval '1 year' "
                                "ORDER BY path LIMIT 1")[0]
    ids, _, _, _ = _page(client, f"?path={path}&path_match=exact")
    assert ids == _visible(server.database, "f.path = %s", (path,))
    prefix = path.rsplit("/", 1)[0] + "/"
    ids, _, _, _ = _page(client, f"?path={prefix}&size=1000")
    assert sorted(ids) == sorted(_visible(server.database, "f.path LIKE %s", (prefix + "%",)))
    ids, _, _, _ = _page(client, f"?path={filename}&path_match=exact&size=1000")
    assert sorted(ids) == sorted(_visible(server.database, "f.filename = %s", (filename,)))


def test_count_only(client, server, archive):
    reply = client.get("/search?instrument=nickel_direct&count=1")
    assert reply.status_code == 200
    count = int(_grab(r'id="result-count"><strong>(\d+)</strong>', reply.text))
    assert count == len(_visible(server.database, "f.instrument = 'Nickel Direct'"))
    assert 'name="ID"' not in reply.text
    _, nxt, _, text = _page(client, "?instrument=nickel_direct&size=5")
    assert nxt is not None
    _, _, _, text = _page(client, nxt)  # from a later page: the count of the whole search
    counted = client.get(_grab(r'href="([^"]+)" id="count-all"', text))
    assert int(_grab(r'id="result-count"><strong>(\d+)</strong>', counted.text)) == count


@pytest.mark.parametrize(("query", "field", "words"), [
    ("?night_from=2020-02-30", "night_from", "not a date"),
    ("?night_from=2020-02-03&night_to=2020-01-01", "night_to", "before the first"),
    ("?ra=25:00:00&dec=10", "ra", "0 to 24 h"),
    ("?ra=10&dec=91", "dec", "-90 to +90"),
    ("?ra=10&dec=abc", "dec", "not a declination"),
    ("?ra=10", "dec", "declination too"),
    ("?radius=3", "ra", "needs a position"),
    ("?ra=1&dec=1&radius=-1", "radius", "positive"),
    ("?ra=1&dec=1&radius=20&radius_unit=deg", "radius", "at most"),
    ("?ra=1&dec=1&radius_unit=parsec", "radius_unit", "radius unit"),
    ("?size=0", "size", "1 to 1000"),
    ("?size=1001", "size", "1 to 1000"),
    ("?sort=header", "sort", "sort field"),
    ("?order=up", "order", "direction"),
    ("?instrument=hubble", "instrument", "unknown instrument"),
    ("?frame_type=selfie", "frame_type", "unknown frame type"),
    ("?field=header", "field", "unknown result field"),
    ("?object_match=regex&object=x", "object_match", "how the object name matches"),
    ("?after=%%%", "page", "damaged"),
    ("?after=WyJ4Il0", "page", "damaged"),
    ("?object=" + "x" * 300, "object", "at most"),
])
def test_bad_values_are_named_next_to_their_field(client, archive, query, field, words):
    _, _, _, text = _page(client, query, status=400)
    match = re.search(rf'class="field-error" id="{field}-error">([^<]*)<', text)
    assert match, f"no message for {field}"
    assert words in html.unescape(match.group(1))
    assert "Traceback" not in text


def test_a_proprietary_row_appears_after_login(make_client, server, observer):
    did = sorted(observer.owned)[0]
    path = owner_rows(server.database, "SELECT path FROM lick.files WHERE obs_publisher_did = %s",
                      (did,))[0][0]
    anonymous = make_client()
    ids, _, _, text = _page(anonymous, f"?path={path}&path_match=exact")
    assert ids == [] and "log in" in text
    assert anonymous.get("/dataset?ID=" + did).status_code == 404
    owner = make_client()
    assert owner.login(observer.login, observer.password).status_code == 303
    ids, _, _, text = _page(owner, f"?path={path}&path_match=exact")
    assert ids == [did] and "Logged in as" in text
    every, _ = _all_pages(owner, "?size=1000")
    assert set(every) == set(_visible(server.database, "true", obid=observer.obid))
    assert observer.owned <= set(every)
    page = owner.get("/dataset?ID=" + did)
    assert page.status_code == 200 and 'id="access">proprietary' in page.text
    assert observer.login in page.text.split('id="owners">')[1].split("</dd>")[0]


def test_download_all_and_selected_are_tarballs_of_the_rows(client, server, archive,
                                                            fresh_account):
    client.login(*fresh_account)  # tarballs are rate-limited per user: a budget of its own
    ids, _, _, text = _page(client, "?instrument=sharcs&frame_type=dark&size=1000")
    assert ids
    tar_link = _grab(r'id="download-all" href="([^"]+)"', text)
    reply = client.get(tar_link)
    assert reply.status_code == 200, reply.text
    expected = sorted(f"{night.isoformat()}-{directory}/{filename}" for night, directory, filename
                      in owner_rows(server.database, "SELECT night, instrument_dir, filename "
                                    "FROM lick.files WHERE obs_publisher_did = ANY(%s)", (ids,)))
    with tarfile.open(fileobj=io.BytesIO(reply.content)) as tar:
        names = sorted(m.name for m in tar.getmembers() if m.isfile())
    assert names == expected
    selected = client.post("/data/tar", {"ID": ids[:2]})
    assert selected.status_code == 200
    with tarfile.open(fileobj=io.BytesIO(selected.content)) as tar:
        assert len([m for m in tar.getmembers() if m.isfile()]) == 2


def test_shown_adql_and_exports_return_the_same_rows(client, server, archive):
    name = _public_object(server.database).split()[0]
    ids, _, _, text = _page(client, f"?object={name}&size=1000&field=object&field=night")
    adql = _grab(r'<pre id="search-adql">(.*?)</pre>', text, re.S)
    assert adql.startswith("SELECT obs_publisher_did, filename, object, night")
    opened = _grab(r'href="([^"]+)" id="open-adql"', text)
    assert opened.startswith("/adql?") and dict(parse_qsl(urlsplit(opened).query))["query"] == adql
    pyvo = _grab(r'<pre id="search-pyvo">(.*?)</pre>', text, re.S)
    assert adql in pyvo and f"TAPService('{server.base_url}/tap')" in pyvo
    export = _grab(r'href="([^"]+)" class="export-csv"', text)
    params = dict(parse_qsl(urlsplit(export).query))
    assert params["QUERY"] == adql
    reply = httpx.get(server.base_url + export, timeout=60)
    rows = list(csv.DictReader(io.StringIO(reply.text)))
    assert [r["obs_publisher_did"] for r in rows] == ids
    votable = _grab(r'href="([^"]+)" class="export-votable"', text)
    reply = httpx.get(server.base_url + votable, timeout=60)
    assert reply.status_code == 200 and b"<VOTABLE" in reply.content


def test_coordinates_shown_in_either_format(client, server, archive):
    name = _public_object(server.database)
    query = f"?object={name}&object_match=exact&size=1&sort=filename&order=asc"
    ids, _, _, sexa = _page(client, query)
    _, _, _, degs = _page(client, query + "&coords=degrees")
    ra = owner_rows(server.database, "SELECT ra FROM lick.files WHERE obs_publisher_did = %s",
                    (ids[0],))[0][0]
    hours = ra / 15
    assert f">{int(hours):02d}:{int((hours % 1) * 60):02d}:" in sexa
    assert f">{ra:.5f}<" in degs and not math.isnan(ra)


def test_dataset_page_of_a_public_frame(client, server, archive):
    did, filename = owner_rows(server.database,
                               "SELECT f.obs_publisher_did, f.filename FROM lick.files AS f JOIN "
                               "ivoa.obscore AS o USING (obs_publisher_did) WHERE "
                               "o.dataproduct_type = 'image' AND f.frame_type = 'science' AND "
                               "f.release_date < now() - interval '1 year' LIMIT 1")[0]
    reply = client.get("/dataset?ID=" + did)
    assert reply.status_code == 200
    text = reply.text
    assert f"<h1>{filename}</h1>" in text and 'id="fits-header"' in text
    assert "SIMPLE  =" in text and "/data/preview?ID=" in text
    assert "#calibration" in text or "#bias" in text or "#flat" in text
    assert 'id="access">public' in text and 'id="owners"' not in text
    assert client.get("/dataset").status_code == 400


def test_more_searches_at_once_than_query_slots(server, archive):
    """Three times as many concurrent searchers as the query pool has slots (8): each
    waits for a slot on the event loop and gets the same rows as when alone."""
    from concurrent.futures import ThreadPoolExecutor

    queries = ["?size=500", "?sort=object&order=asc&size=200", "?instrument=kast_blue&size=100",
               "?night_from=2010-01-01&size=300&field=object"]
    with httpx.Client(base_url=server.base_url, timeout=120) as alone:
        expected = {q: ID_RE.findall(alone.get("/search" + q).text) for q in queries}
    assert all(expected.values())

    def searcher(n: int) -> list[tuple[str, int, list[str]]]:
        seen = []
        with httpx.Client(base_url=server.base_url, timeout=120) as http:
            for i in range(3):
                query = queries[(n + i) % len(queries)]
                reply = http.get("/search" + query)
                seen.append((query, reply.status_code, ID_RE.findall(reply.text)))
        return seen

    with ThreadPoolExecutor(max_workers=24) as pool:
        results = [r for batch in pool.map(searcher, range(24)) for r in batch]
    assert len(results) == 72
    for query, status, ids in results:
        assert status == 200 and ids == expected[query], query


def test_dataset_page_cutout_form_cuts_out(client, server, archive):
    """An image with a celestial WCS offers the SODA form; its default circle works."""
    from astropy.io import fits

    candidates = owner_rows(server.database,
                            "SELECT f.obs_publisher_did FROM lick.files AS f JOIN ivoa.obscore "
                            "AS o USING (obs_publisher_did) WHERE o.dataproduct_type = 'image' "
                            "AND f.header ~ 'CTYPE1S? *= +''RA--' ORDER BY f.path")
    public = public_dids(server.database)
    did = next(d for (d,) in candidates if d in public)
    text = client.get("/dataset?ID=" + did).text
    assert 'id="cutout"' in text
    circle = _grab(r'name="CIRCLE" value="([^"]+)"', text)
    reply = client.get("/soda/sync", params={"ID": did, "CIRCLE": circle})
    assert reply.status_code == 200, reply.text
    with fits.open(io.BytesIO(reply.content)) as hdus:
        assert hdus[0].data is not None and hdus[0].data.size > 0


def test_the_pyvo_snippet_runs_and_returns_the_rows(client, server, archive, capsys):
    ids, _, _, text = _page(client, "?instrument=kast_red&frame_type=arc&size=1000"
                                    "&sort=filename&order=asc")
    snippet = _grab(r'<pre id="search-pyvo">(.*?)</pre>', text, re.S)
    scope: dict[str, object] = {}
    exec(compile(snippet, "pyvo-snippet", "exec"), scope)  # the user's copy and paste
    table = scope["table"]
    assert [str(v) for v in table["obs_publisher_did"]] == ids  # type: ignore[index]
    assert capsys.readouterr().out.strip()


def test_staff_see_who_may_see_a_proprietary_dataset(make_client, server, observer,
                                                     staff_account):
    did = sorted(observer.owned)[0]
    owners = owner_rows(server.database, "SELECT u.login FROM lick.files AS f CROSS JOIN "
                                         "LATERAL unnest(f.owner_ids) AS o(id) JOIN auth.users "
                                         "AS u ON u.observer_id = o.id WHERE "
                                         "f.obs_publisher_did = %s", (did,))
    staff = make_client()
    staff.login(*staff_account)
    page = staff.get("/dataset?ID=" + did)
    assert page.status_code == 200
    shown = _grab(r'id="owners">(.*?)</dd>', page.text, re.S)
    assert owners and all(login in shown for (login,) in owners)
    assert "archive staff" in shown
