"""Two service instances behind nginx (conf/nginx/lick-archive.conf), one database and one
results store: whichever instance answers, a client sees one service, at the proxy's URLs.
"""

from __future__ import annotations

import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from lxml import etree

from tests.conftest import (
    PROJECT,
    DemoArchive,
    RunningServer,
    TestDatabase,
    cli_env,
    fetch,
    free_port,
    running_server,
)
from tests.datalink.helpers import PROPRIETARY, PUBLIC, one, owner_auth

UWS = "{http://www.ivoa.net/xml/UWS/v1.0}"
TOP = {"LANG": "ADQL", "QUERY": "SELECT TOP 2 obs_id FROM ivoa.obscore"}


@dataclass
class Deployment:
    proxy: str  # https://127.0.0.1:<port>
    a: RunningServer
    b: RunningServer
    ca: Path  # the self-signed certificate clients trust

    @property
    def tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))


def nginx_config(site: str, port: int, upstreams: list[str], cert: Path, key: Path,
                 prefix: Path) -> str:
    """The sample site on loopback: its upstreams, port and certificate replaced, the
    plain-http redirect left out, inside a main configuration of its own."""
    site = re.sub(r"server 127\.0\.0\.1:800\d;\n\s*server 127\.0\.0\.1:800\d;",
                  "\n    ".join(f"server {u};" for u in upstreams), site)
    site = re.sub(r"server \{\n    listen 80;.*?\n\}\n", "", site, flags=re.S)
    site = site.replace("listen 443 ssl;", f"listen 127.0.0.1:{port} ssl;")
    site = site.replace("/etc/ssl/certs/archive.example.org.pem", str(cert))
    site = site.replace("/etc/ssl/private/archive.example.org.key", str(key))
    temp = prefix / "temp"
    return (f"daemon off;\nworker_processes 1;\npid {prefix}/nginx.pid;\n"
            f"error_log {prefix}/error.log;\nevents {{ worker_connections 256; }}\n"
            f"http {{\n  access_log off;\n  client_body_temp_path {temp}/body;\n"
            f"  proxy_temp_path {temp}/proxy;\n  fastcgi_temp_path {temp}/fastcgi;\n"
            f"  uwsgi_temp_path {temp}/uwsgi;\n  scgi_temp_path {temp}/scgi;\n"
            f"{site}\n}}\n")


@pytest.fixture(scope="module")
def deployment(database: TestDatabase, archive: DemoArchive) -> Iterator[Deployment]:
    if shutil.which("nginx") is None:
        pytest.fail("nginx is missing: `make test` installs it (scripts/install-system-packages)")
    prefix = Path(tempfile.mkdtemp(prefix="lick-nginx-"))
    (prefix / "temp").mkdir()
    prefix.chmod(0o755)
    (prefix / "temp").chmod(0o777)
    cert, key = prefix / "cert.pem", prefix / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    port = free_port()
    proxy = f"https://127.0.0.1:{port}"
    env = {"LICK_ARCHIVE_SERVICE_BASE_URL": proxy,
           "LICK_ARCHIVE_SERVICE_TRUSTED_PROXIES": "127.0.0.1",
           "LICK_ARCHIVE_DOWNLOADS_ACCEL_REDIRECT_PREFIX": "/_lick_archive_files"}
    with ExitStack() as stack:
        a = stack.enter_context(running_server(database, env))
        b = stack.enter_context(running_server(database, env))
        site = (PROJECT / "conf" / "nginx" / "lick-archive.conf").read_text()
        upstreams = [s.base_url.removeprefix("http://") for s in (a, b)]
        (prefix / "nginx.conf").write_text(nginx_config(site, port, upstreams, cert, key,
                                                        prefix))
        process = subprocess.Popen(["nginx", "-c", str(prefix / "nginx.conf"),
                                    "-p", str(prefix)], stderr=subprocess.PIPE)
        stack.callback(lambda: (process.terminate(), process.wait(10)))
        deadline = time.monotonic() + 20
        while True:
            try:
                trust = ssl.create_default_context(cafile=str(cert))
                if httpx.get(f"{proxy}/tap/availability", verify=trust).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"nginx did not start: {(prefix / 'error.log').read_text()}")
            time.sleep(0.2)
        # the archive is published at the proxy's URL: db init rewrites the access URLs
        # ingest wrote under the configured one, and puts them back afterwards
        assert "access URLs now start with" in _db_init(database, proxy)
        stack.callback(lambda: _db_init(database, "http://127.0.0.1:8000"))
        yield Deployment(proxy, a, b, cert)
    shutil.rmtree(prefix, ignore_errors=True)


def _db_init(database: TestDatabase, base_url: str) -> str:
    result = subprocess.run([sys.executable, "-m", "vo_service.cli", "db", "init"],
                            env={**cli_env(database), "LICK_ARCHIVE_SERVICE_BASE_URL": base_url},
                            cwd=PROJECT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_documents_carry_the_proxy_urls(deployment: Deployment) -> None:
    proxy = deployment.proxy
    with httpx.Client(verify=deployment.tls) as client:
        capabilities = client.get(f"{proxy}/tap/capabilities").text
        urls = set(re.findall(r"<accessURL[^>]*>([^<]+)<", capabilities))
        assert urls and all(u.startswith(proxy) for u in urls), urls
        sia = client.get(f"{proxy}/sia/capabilities").text
        assert all(u.startswith(proxy) for u in re.findall(r"<accessURL[^>]*>([^<]+)<", sia))
        created = client.post(f"{proxy}/tap/async", data=TOP)
        assert created.status_code == 303 and created.headers["location"].startswith(proxy)
        links = client.get(f"{proxy}/tap/sync", params={
            "LANG": "ADQL", "QUERY": "SELECT TOP 1 obs_publisher_did FROM ivoa.obscore"}).text
        assert f'value="{proxy}/datalink/links"' in links
        # every access_url names the proxy, and leads to the data through it
        rows = client.get(f"{proxy}/tap/sync", params={
            "LANG": "ADQL", "RESPONSEFORMAT": "csv", "MAXREC": "100000",
            "QUERY": "SELECT access_url FROM ivoa.obscore"}).text.split("\r\n")[1:-1]
        assert rows and all(r.startswith(f"{proxy}/datalink/links?ID=") for r in rows)
        document = client.get(rows[0]).text
        this = re.search(r"<TD>([^<]*/data/file[^<]*)</TD>", document)
        assert this is not None and this.group(1).startswith(proxy), document[:500]
        # the registry's base URL (records are stored: other servers of the suite publish
        # theirs into this database too, so only what each answer builds is compared)
        identify = etree.fromstring(client.get(f"{proxy}/oai",
                                               params={"verb": "Identify"}).content)
        oai_ns = {"oai": "http://www.openarchives.org/OAI/2.0/"}
        assert identify.findtext("oai:request", namespaces=oai_ns) == f"{proxy}/oai"
        assert identify.findtext(".//oai:baseURL", namespaces=oai_ns) == f"{proxy}/oai"


def test_a_job_lives_on_both_instances(deployment: Deployment) -> None:
    """Created through one instance, then polled, waited on, read and deleted through
    the other (and through the proxy, whichever instance it picks)."""
    a, b = deployment.a.base_url, deployment.b.base_url
    created = httpx.post(f"{a}/tap/async", data={**TOP, "PHASE": "RUN"})
    job_path = created.headers["location"].removeprefix(deployment.proxy)
    waited = httpx.get(f"{b}{job_path}", params={"WAIT": "30", "PHASE": "QUEUED"},
                       timeout=60)
    phase = etree.fromstring(waited.content).findtext(f"{UWS}phase")
    deadline = time.monotonic() + 30
    while phase != "COMPLETED" and time.monotonic() < deadline:
        phase = httpx.get(f"{b}{job_path}/phase").text
        time.sleep(0.1)
    assert phase == "COMPLETED"
    for base in (a, b):
        result = httpx.get(f"{base}{job_path}/results/result")
        assert result.status_code == 200 and b"<VOTABLE" in result.content
    with httpx.Client(verify=deployment.tls) as client:
        assert client.get(f"{deployment.proxy}{job_path}/phase").text == "COMPLETED"
    assert httpx.delete(f"{b}{job_path}").status_code == 303
    assert httpx.get(f"{a}{job_path}").status_code == 404


def test_a_login_holds_on_both_instances(deployment: Deployment,
                                         archive: DemoArchive) -> None:
    email, password = archive.password(archive.schedule["observers"][0]["obid"])
    with httpx.Client(verify=deployment.tls, follow_redirects=False) as client:
        form = client.get(f"{deployment.proxy}/login")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert csrf is not None
        login = client.post(f"{deployment.proxy}/login", data={
            "email": email, "password": password, "csrf_token": csrf.group(1)})
        assert login.status_code == 303, login.text
        session = client.cookies.get("lick_session")
        assert session
    for base in (deployment.a.base_url, deployment.b.base_url):
        account = httpx.get(f"{base}/account", cookies={"lick_session": session})
        assert account.status_code == 200 and email in account.text


def test_nginx_sends_the_files_the_service_allows(deployment: Deployment,
                                                 archive: DemoArchive) -> None:
    """With [downloads] accel_redirect_prefix, the service decides who may have a file
    and nginx sends it from disk (X-Accel-Redirect): whole, in ranges, and only to
    whom the service lets have it."""
    database = deployment.a.database
    public, _ = one(database, f"{PUBLIC} AND o.dataproduct_type = 'image'")
    hidden, obid = one(database, PROPRIETARY)

    def content(did: str) -> bytes:
        (path,) = fetch(database.owner_dsn, "SELECT path FROM lick.files WHERE "
                        "obs_publisher_did = %s", (did,))[0]
        return (archive.root / path).read_bytes()

    # the instance itself answers with the redirect and no body: nginx sends the bytes
    upstream = httpx.get(f"{deployment.a.base_url}/data/file", params={"ID": public})
    assert upstream.headers["x-accel-redirect"].startswith("/_lick_archive_files/")
    assert upstream.content == b""
    with httpx.Client(verify=deployment.tls, timeout=60) as client:
        url = f"{deployment.proxy}/data/file"
        whole = client.get(url, params={"ID": public})
        assert whole.status_code == 200, whole.text[:300]
        assert whole.content == content(public)
        assert whole.headers["content-type"] == "application/fits"
        assert whole.headers["content-disposition"].startswith("attachment")
        assert "x-accel-redirect" not in whole.headers
        part = client.get(url, params={"ID": public}, headers={"Range": "bytes=100-199"})
        assert part.status_code == 206 and part.content == content(public)[100:200]
        anonymous = client.get(url, params={"ID": hidden})
        assert anonymous.status_code == 401 and b"SIMPLE" not in anonymous.content
        mine = client.get(url, params={"ID": hidden}, auth=owner_auth(archive, obid))
        assert mine.status_code == 200 and mine.content == content(hidden)
        assert mine.headers["cache-control"] == "private"
        # the internal location is not reachable from outside
        direct = client.get(f"{deployment.proxy}/_lick_archive_files/etc/hostname")
        assert direct.status_code == 404
