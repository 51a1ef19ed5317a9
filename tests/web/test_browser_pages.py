"""The archive pages in a real browser: headless Chromium driven by Selenium.

What a user does — search by object, cone, nights; page forward and back (links and
the browser's back button); log in and see a proprietary row an anonymous search
does not show; tick rows and download the tarball; open a header and a preview —
against the running server and the demo archive.  Expected rows come from the owner
role's view of the database.  Each test saves screenshots, light and dark, under
``build/screenshots/`` (the name says what it shows).

Waits are explicit and generous (a loaded 2-core machine): every step waits for the
element the next step needs, never for a fixed time.
"""

from __future__ import annotations

import io
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.conftest import PROJECT
from tests.web.conftest import owner_rows, public_dids

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.common.exceptions import WebDriverException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as ec  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
SHOTS = PROJECT / "build" / "screenshots"
WAIT_S = 90
#: --bg of each theme in style.css, as the browser computes it
BODY_BACKGROUND = {"light": "rgb(246, 247, 250)", "dark": "rgb(18, 22, 30)"}

pytestmark = pytest.mark.skipif(
    not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
    reason="Chromium and chromedriver are needed (Debian packages chromium, chromium-driver)")


class Browser:
    """One Chromium with helpers for the pages (waits, screenshots, forms)."""

    def __init__(self, driver, base_url: str, downloads: Path) -> None:
        self.driver = driver
        self.base_url = base_url
        self.downloads = downloads

    def open(self, path: str) -> None:
        self.driver.get(self.base_url + path)
        self.wait_for(By.CSS_SELECTOR, "footer")

    def wait_for(self, by: str, selector: str):
        return WebDriverWait(self.driver, WAIT_S).until(
            ec.presence_of_element_located((by, selector)))

    def wait_until(self, condition, message: str = ""):
        return WebDriverWait(self.driver, WAIT_S, poll_frequency=0.2).until(condition, message)

    def css(self, selector: str):
        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def all(self, selector: str):
        return self.driver.find_elements(By.CSS_SELECTOR, selector)

    def fill(self, name: str, value: str) -> None:
        """Set a field by name (date inputs take locale-dependent keystrokes: set directly)."""
        field = self.css(f'[name="{name}"]')
        self.driver.execute_script(
            "arguments[0].value = arguments[1];"
            "arguments[0].dispatchEvent(new Event('change', {bubbles: true}));", field, value)

    def tick(self, name: str, value: str) -> None:
        box = self.css(f'input[name="{name}"][value="{value}"]')
        if not box.is_selected():
            self.driver.execute_script("arguments[0].click();", box)

    def submit_search(self) -> None:
        """Press Search and wait for the next page (results, count or the form's errors)."""
        old = self.css("footer")
        self.driver.execute_script("arguments[0].click();", self.css("#search-button"))
        self.wait_until(ec.staleness_of(old), "the search did not load a new page")
        self.wait_for(By.CSS_SELECTOR, "footer")

    def follow(self, selector: str, *, page: bool = True) -> None:
        """Click a link and wait for what it opens (one of our pages, or any document)."""
        old = self.css("footer")
        self.driver.execute_script("arguments[0].click();", self.css(selector))
        self.wait_until(ec.staleness_of(old), f"{selector} did not load a new page")
        self.wait_for(By.CSS_SELECTOR, "footer" if page else "body")

    def row_ids(self) -> list[str]:
        return [box.get_attribute("value") for box in self.all('#results input[name="ID"]')]

    def shot(self, name: str) -> None:
        """``<name>-light.png`` and ``<name>-dark.png`` of the whole page."""
        SHOTS.mkdir(parents=True, exist_ok=True)
        height = self.driver.execute_script(
            "return Math.min(document.documentElement.scrollHeight, 4000)")
        width = self.driver.get_window_size()["width"]
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": max(int(height), 400), "deviceScaleFactor": 1,
            "mobile": width < 500})
        try:
            for scheme in ("light", "dark"):
                self.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {
                    "features": [{"name": "prefers-color-scheme", "value": scheme}]})
                expected = BODY_BACKGROUND[scheme]
                self.wait_until(lambda d, want=expected: d.execute_script(
                    "return getComputedStyle(document.body).backgroundColor") == want,
                    f"the page did not switch to the {scheme} theme")
                self.driver.save_screenshot(str(SHOTS / f"{name}-{scheme}.png"))
        finally:
            self.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
            self.driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


@pytest.fixture(scope="module")
def browser(server, archive) -> Iterator[Browser]:
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    downloads = Path(tempfile.mkdtemp(prefix="lick-downloads-"))
    options = Options()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1280,900",
                     "--disable-background-networking", "--disable-component-update",
                     "--no-first-run", "--disable-sync"):
        options.add_argument(argument)
    options.add_experimental_option("prefs", {
        "download.default_directory": str(downloads), "download.prompt_for_download": False,
        "safebrowsing.enabled": False})
    try:
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    except WebDriverException as exc:
        pytest.fail(f"Chromium did not start through chromedriver: {exc}")
    driver.set_page_load_timeout(WAIT_S)
    driver.execute_cdp_cmd("Page.setDownloadBehavior",
                           {"behavior": "allow", "downloadPath": str(downloads)})
    try:
        yield Browser(driver, server.base_url, downloads)
    finally:
        driver.quit()
        shutil.rmtree(downloads, ignore_errors=True)


@pytest.fixture
def anonymous(browser) -> Browser:
    browser.driver.delete_all_cookies()
    return browser


def _visible(database, where: str, params: tuple = (), *, obid: int | None = None) -> set[str]:
    public = public_dids(database)
    return {did for did, owners in owner_rows(
        database, f"SELECT f.obs_publisher_did, f.owner_ids FROM lick.files AS f JOIN "
                  f"ivoa.obscore AS o USING (obs_publisher_did) WHERE {where}", params)
        if did in public or (obid is not None and obid in owners)}


def _common_object(database) -> str:
    counts: dict[str, int] = {}
    public = public_dids(database)
    for did, obj in owner_rows(database, "SELECT obs_publisher_did, object FROM lick.files "
                                         "WHERE object ~ '^[A-Z]+ [0-9]+$'"):
        if did in public:
            counts[obj] = counts.get(obj, 0) + 1
    return max(sorted(counts), key=lambda name: counts[name])


def test_search_by_object(anonymous, server):
    b = anonymous
    b.open("/search")
    b.shot("search-form")
    name = _common_object(server.database)
    b.css("#object").send_keys(name.lower())
    b.fill("size", "1000")
    b.submit_search()
    b.wait_for(By.ID, "results")
    assert set(b.row_ids()) == _visible(server.database, "f.object ILIKE %s", (f"%{name}%",))
    assert "ILIKE" in b.css("#search-adql").text
    assert b.css("#object").get_attribute("value") == name.lower()  # the form kept its state
    b.shot("search-results-object")


def test_cone_search_and_field_errors(anonymous, server):
    b = anonymous
    ra, dec = owner_rows(server.database, "SELECT s_ra, s_dec FROM ivoa.obscore WHERE "
                                          "target_name = %s LIMIT 1",
                         (_common_object(server.database),))[0]
    b.open("/search")
    b.css("#ra").send_keys("25:00:00")
    b.css("#dec").send_keys(f"{dec:.5f}")
    b.submit_search()
    error = b.wait_for(By.ID, "ra-error")
    assert "0 to 24 h" in error.text
    assert b.css("#ra").get_attribute("aria-invalid") == "true"
    b.shot("search-field-error")
    b.css("#ra").clear()
    b.css("#ra").send_keys(f"{ra:.5f}")
    b.css("#radius").send_keys("2")
    b.driver.execute_script("arguments[0].value = 'arcmin'", b.css("#radius_unit"))
    b.fill("size", "1000")
    b.submit_search()
    b.wait_for(By.ID, "results")
    expected = _visible(server.database, "spoint(radians(o.s_ra), radians(o.s_dec)) <-> "
                                         "spoint(radians(%s), radians(%s)) <= radians(2.0/60)",
                        (ra, dec))
    assert set(b.row_ids()) == expected
    b.shot("search-results-cone")


def test_night_range_and_paging_forward_and_back(anonymous, server):
    b = anonymous
    nights = [r[0] for r in owner_rows(server.database, "SELECT DISTINCT night FROM lick.files "
                                                        "ORDER BY night")]
    first, last = nights[0].isoformat(), nights[len(nights) // 2].isoformat()
    expected = _visible(server.database, "f.night BETWEEN %s AND %s", (first, last))
    assert len(expected) > 10
    b.open("/search")
    b.fill("night_from", first)
    b.fill("night_to", last)
    b.fill("size", "10")
    b.driver.execute_script("arguments[0].value = 'asc'", b.css("#order"))
    b.submit_search()
    b.wait_for(By.ID, "results")
    page1 = b.row_ids()
    assert len(page1) == 10 and not b.all("#prev-page")
    b.follow("#next-page")
    page2 = b.row_ids()
    assert page2 and not set(page2) & set(page1)
    b.shot("search-results-page2")
    b.follow("#prev-page")
    assert b.row_ids() == page1
    b.driver.back()  # the browser's back button: the second page again, from the URL
    b.wait_until(lambda d: b.row_ids() == page2, "back did not return to page 2")
    seen = list(page1)
    b.driver.back()
    b.wait_until(lambda d: b.row_ids() == page1, "back did not return to page 1")
    while True:  # every row of the range, once
        if not b.all("#next-page"):
            break
        b.follow("#next-page")
        seen += b.row_ids()
    assert len(seen) == len(set(seen)) and set(seen) == expected


def test_login_shows_a_proprietary_row(anonymous, server, observer):
    b = anonymous
    did = sorted(observer.owned)[0]
    path = owner_rows(server.database, "SELECT path FROM lick.files WHERE obs_publisher_did = %s",
                      (did,))[0][0]
    query = f"/search?path={quote(path)}&path_match=exact"
    b.open(query)
    b.wait_for(By.ID, "no-results")
    assert b.row_ids() == []
    b.shot("search-anonymous-no-proprietary")
    b.follow("#login-for-more")
    b.css('input[name="email"]').send_keys(observer.login)
    b.css('input[name="password"]').send_keys(observer.password)
    old = b.css("footer")
    b.css('input[name="password"]').submit()
    b.wait_until(ec.staleness_of(old))
    b.wait_for(By.ID, "results")  # back on the search, now logged in
    assert b.row_ids() == [did]
    assert observer.login in b.css("header").text
    b.shot("search-observer-proprietary")
    b.follow("#results a.details")
    assert "proprietary" in b.css("#access").text
    assert observer.login in b.css("#owners").text
    b.shot("dataset-proprietary")
    b.follow('header a[href="/nights"]')
    assert b.all("#runs tr.run")
    b.shot("my-nights")
    b.driver.delete_all_cookies()


def test_download_selected_rows_as_a_tarball(anonymous, server, fresh_account):
    b = anonymous
    for old in b.downloads.iterdir():
        old.unlink()
    _log_in(b, fresh_account, "/search")  # tarballs are rate-limited per user
    b.open("/search?instrument=sharcs&frame_type=dark&size=1000&sort=filename&order=asc")
    b.wait_for(By.ID, "results")
    ids = b.row_ids()
    assert ids
    select_all = b.css('input[data-select-all="ID"]')
    assert select_all.is_displayed()  # shown by the script
    select_all.click()
    assert all(box.is_selected() for box in b.all('#results input[name="ID"]'))
    b.css("#download-selected").click()
    tarball = b.wait_until(
        lambda d: next((p for p in b.downloads.iterdir() if p.suffix == ".tar"), None),
        "no tarball downloaded")
    expected = sorted(f"{night.isoformat()}-{directory}/{filename}" for night, directory, filename
                      in owner_rows(server.database, "SELECT night, instrument_dir, filename "
                                    "FROM lick.files WHERE obs_publisher_did = ANY(%s)", (ids,)))
    with tarfile.open(fileobj=io.BytesIO(tarball.read_bytes())) as tar:
        assert sorted(m.name for m in tar.getmembers() if m.isfile()) == expected


def test_header_and_preview(anonymous, server):
    b = anonymous
    did = owner_rows(server.database,
                     "SELECT f.obs_publisher_did FROM lick.files AS f JOIN ivoa.obscore AS o "
                     "USING (obs_publisher_did) WHERE o.dataproduct_type = 'image' AND "
                     "f.frame_type = 'science' AND f.release_date < now() - interval '1 year' "
                     "ORDER BY f.path LIMIT 1")[0][0]
    path = owner_rows(server.database, "SELECT path FROM lick.files WHERE obs_publisher_did = %s",
                      (did,))[0][0]
    b.open(f"/search?path={quote(path)}&path_match=exact")
    b.wait_for(By.ID, "results")
    thumb = b.css("img.thumb")
    b.wait_until(lambda d: d.execute_script(
        "return arguments[0].complete && arguments[0].naturalWidth > 0", thumb),
        "the preview thumbnail did not load")
    b.follow("a.header-link", page=False)
    assert b.driver.find_element(By.TAG_NAME, "body").text.startswith("SIMPLE  =")
    b.driver.back()
    b.follow("#results a.details")
    preview = b.wait_for(By.CSS_SELECTOR, "img.preview")
    b.wait_until(lambda d: d.execute_script(
        "return arguments[0].complete && arguments[0].naturalWidth > 0", preview),
        "the preview did not load")
    assert "SIMPLE  =" in b.css("#fits-header").text
    b.shot("dataset-public")


def test_phone_layout(anonymous, server):
    b = anonymous
    b.driver.set_window_size(390, 844)
    try:
        b.open("/search?instrument=nickel_direct&size=20")
        b.wait_for(By.ID, "results")
        overflow = b.driver.execute_script(
            "return document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1  # the table scrolls inside its box, not the page
        b.shot("search-phone")
    finally:
        b.driver.set_window_size(1280, 900)


def _log_in(b: Browser, account, next_path: str) -> None:
    """Log in through the form; ``account`` is an Observer or a (login, password) pair."""
    login, password = account if isinstance(account, tuple) else (account.login,
                                                                   account.password)
    b.open(f"/login?next={quote(next_path, safe='')}")
    b.css('input[name="email"]').send_keys(login)
    b.css('input[name="password"]').send_keys(password)
    old = b.css("footer")
    b.css('input[name="password"]').submit()
    b.wait_until(ec.staleness_of(old))
    b.wait_for(By.CSS_SELECTOR, "footer")


def test_adql_sync_run_and_error_position(anonymous, server):
    b = anonymous
    b.open("/adql?table=ivoa.obscore")
    assert b.all("#column-table tbody tr")
    b.css("#query").send_keys("SELECT TOP 7 obs_publisher_did, target_name\nFROM ivoa.obscore\n"
                              "ORDER BY obs_publisher_did")
    b.follow("#run-sync")
    rows = b.all("#result-table tbody tr")
    expected = sorted(public_dids(server.database))[:7]
    assert [r.find_element(By.TAG_NAME, "td").text for r in rows] == expected
    b.shot("adql-sync-result")
    b.css("#query").clear()
    b.css("#query").send_keys("SELECT obs_id\nFROM ivoa.obscore\nWHERE nonsense = 1")
    b.follow("#run-sync")
    assert b.css("#error-at").text == "n"
    assert "line 3, column 7" in b.css("#query-error").text
    b.shot("adql-error-position")


def test_adql_async_job_and_delete(anonymous, server, observer):
    b = anonymous
    _log_in(b, observer, "/adql")
    b.open("/adql?query=" + quote("SELECT TOP 3 obs_id FROM ivoa.obscore", safe=""))
    before = {row.get_attribute("data-job") for row in b.all("tr.job")}
    b.follow("#submit-async")
    rows = [r for r in b.all("tr.job") if r.get_attribute("data-job") not in before]
    assert len(rows) == 1
    job_id = rows[0].get_attribute("data-job")

    def finished(driver) -> bool:
        b.open("/adql")
        phase = b.css(f'tr.job[data-job="{job_id}"] td.phase').text
        return phase in ("COMPLETED", "ERROR")

    b.wait_until(finished, "the job did not finish")
    row = b.css(f'tr.job[data-job="{job_id}"]')
    assert row.find_element(By.CSS_SELECTOR, "td.phase").text == "COMPLETED"
    assert row.find_elements(By.CSS_SELECTOR, "a.job-result")
    b.shot("adql-jobs")
    b.follow(f'tr.job[data-job="{job_id}"] button.danger')
    assert not b.all(f'tr.job[data-job="{job_id}"]')
    assert "deleted" in b.css(".notice").text
    b.driver.delete_all_cookies()


UNLABELLED = """
return Array.from(document.querySelectorAll('input, select, textarea'))
  .filter(e => e.type !== 'hidden' && !e.hidden)
  .filter(e => e.labels.length === 0 && !e.getAttribute('aria-label'))
  .map(e => e.outerHTML.slice(0, 120));
"""


def test_labels_and_keyboard(anonymous, server):
    b = anonymous
    did = sorted(public_dids(server.database))[0]
    for path in ("/search", "/search?size=5", "/adql?table=lick.files", "/login",
                 f"/dataset?ID={quote(did, safe='')}"):
        b.open(path)
        assert b.driver.execute_script(UNLABELLED) == [], path
    b.open("/search")
    from selenium.webdriver.common.keys import Keys

    body = b.driver.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)
    first = b.driver.switch_to.active_element
    assert first.get_attribute("class") == "skip" and first.is_displayed()
    first.send_keys(Keys.ENTER)
    b.wait_until(lambda d: d.current_url.endswith("#main"))
    b.css("#object").send_keys("HD", Keys.ENTER)  # Enter in a field submits the form
    b.wait_for(By.CSS_SELECTOR, "#results, #no-results")
    assert "object=HD" in b.driver.current_url


def test_search_and_download_with_javascript_off(anonymous, server, fresh_account):
    b = anonymous
    for old in b.downloads.iterdir():
        old.unlink()
    _log_in(b, fresh_account, "/search")  # tarballs are rate-limited per user
    b.driver.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": True})
    try:
        b.open("/search")
        b.tick("instrument", "nickel_direct")
        b.tick("frame_type", "bias")
        b.fill("size", "3")
        b.submit_search()
        b.wait_for(By.ID, "results")
        assert not b.css('input[data-select-all="ID"]').is_displayed()  # no script: hidden
        page1 = b.row_ids()
        assert len(page1) == 3
        b.follow("#next-page")
        page2 = b.row_ids()
        assert page2 and not set(page1) & set(page2)
        boxes = b.all('#results input[name="ID"]')[:2]
        for box in boxes:
            box.click()
        chosen = [box.get_attribute("value") for box in boxes]
        b.css("#download-selected").click()
        tarball = b.wait_until(
            lambda d: next((p for p in b.downloads.iterdir() if p.suffix == ".tar"), None),
            "no tarball downloaded")
        with tarfile.open(fileobj=io.BytesIO(tarball.read_bytes())) as tar:
            names = sorted(m.name.rsplit("/", 1)[1] for m in tar.getmembers() if m.isfile())
        expected = sorted(r[0] for r in owner_rows(
            server.database, "SELECT filename FROM lick.files WHERE obs_publisher_did = ANY(%s)",
            (chosen,)))
        assert names == expected
        b.shot("search-no-javascript")
    finally:
        b.driver.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": False})
