"""Every pyvo, astroquery and curl example of the user guide, run as written against a
real server: the address of the demo (``http://127.0.0.1:8000``) becomes the test
server's, ``observer@example.org`` / ``your-password`` a demo observer's login and
``YOUR-TOKEN`` a token made for them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PROJECT, DemoArchive, RunningServer, fetch, run_cli
from tests.datalink.test_clients import access_urls_of_this_server  # noqa: F401  (autouse)

USER_GUIDE = PROJECT / "docs" / "user"
DEMO_URL = "http://127.0.0.1:8000"
BLOCK = re.compile(r"^```(python|sh)\n(.*?)^```", re.S | re.M)


def blocks(page: str, language: str) -> list[str]:
    return [code for lang, code in BLOCK.findall((USER_GUIDE / page).read_text())
            if lang == language]


EXAMPLES = [(page, index) for page in ("pyvo.md", "astroquery.md")
            for index in range(len(blocks(page, "python")))]


@pytest.fixture(scope="module")
def observer(server: RunningServer, archive: DemoArchive) -> tuple[str, str, str]:
    """(login, password, token) of a demo observer who owns proprietary frames."""
    obid = fetch(server.database.owner_dsn,
                 "SELECT owner_ids[1] FROM lick.files WHERE cardinality(owner_ids) > 0 AND "
                 "release_date > now() + interval '1 day' ORDER BY path LIMIT 1")[0][0]
    login, password = archive.password(obid)
    token = run_cli(server.database, "tokens", "create", login, "--label",
                    "docs").strip().splitlines()[-1]
    return login, password, token


def _localise(code: str, server: RunningServer, observer: tuple[str, str, str]) -> str:
    login, password, token = observer
    return (code.replace(DEMO_URL, server.base_url)
            .replace("observer@example.org", login).replace("your-password", password)
            .replace("YOUR-TOKEN", token))


def test_every_example_is_collected() -> None:
    assert len(blocks("pyvo.md", "python")) >= 8
    assert len(blocks("astroquery.md", "python")) >= 3
    assert len(blocks("curl.md", "sh")) >= 5


@pytest.mark.parametrize("page,index", EXAMPLES)
def test_python_example_runs(server, observer, tmp_path: Path, page: str, index: int
                             ) -> None:
    code = _localise(blocks(page, "python")[index], server, observer)
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, f"{page} example {index + 1}:\n{code}\n{result.stderr}"
    assert result.stdout.strip(), f"{page} example {index + 1} printed nothing"
    assert "Traceback" not in result.stderr


def test_python_examples_say_what_they_promise(server, observer, tmp_path: Path) -> None:
    """The outputs are the archive's: counts match the database, the login sees
    proprietary frames, the cutout is an image."""
    def run(page: str, index: int) -> str:
        code = _localise(blocks(page, "python")[index], server, observer)
        return subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True,
                              capture_output=True, text=True, timeout=300).stdout

    pyvo_blocks = blocks("pyvo.md", "python")
    login_example = next(i for i, b in enumerate(pyvo_blocks) if "set_password" in b)
    mine = int(run("pyvo.md", login_example).split()[0])
    assert mine > 0
    token_example = next(i for i, b in enumerate(pyvo_blocks) if "Bearer" in b)
    public = fetch(server.database.owner_dsn, "SELECT count(*) FROM lick.files WHERE "
                   "release_date <= now() - interval '1 day'")[0][0]
    assert int(run("pyvo.md", token_example).split()[0]) > public
    cutout_example = next(i for i, b in enumerate(pyvo_blocks) if "#cutout" in b)
    printed = run("pyvo.md", cutout_example).strip()
    assert re.fullmatch(r"ivo://\S+ \(\d+, \d+\)", printed), printed


def test_curl_examples_run(server, observer, tmp_path: Path) -> None:
    for index, code in enumerate(blocks("curl.md", "sh")):
        script = "set -eu\n" + _localise(code, server, observer)
        result = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True,
                                text=True, timeout=120)
        assert result.returncode == 0, f"curl example {index + 1}:\n{script}\n{result.stderr}"
        assert result.stdout.strip(), script
        assert 'value="ERROR"' not in result.stdout, result.stdout[:500]
