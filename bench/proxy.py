"""Downloads behind nginx with X-Accel-Redirect, against a local read in the same run.

    .venv/bin/python -m bench.proxy [--repeat 5]

Builds (once, cached in var/bench-proxy) a small archive with bench/datalink.py's
builder — among its files one of 100 MiB — starts a real `lick-archive serve` with
``[downloads] accel_redirect_prefix`` and nginx on loopback in front of it (the
upstream and internal location of conf/nginx/lick-archive.conf, plain HTTP), and
measures downloading the 100 MiB file through nginx (curl to /dev/null) against
reading it locally in 1 MiB blocks, both from the page cache; and, for comparison, the
same download from a server streaming the file itself (no X-Accel-Redirect).
Target: >= 0.9x the local read.  Medians of ``--repeat``, each transfer with its
baseline measured just before it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import quote

from bench.datalink import _free_port, build_files, curl, local_read
from bench.report import record
from bench.tap import PROJECT, answering, build_database, start_server

ROWS = 20_000
PREFIX = "/_lick_archive_files"


def nginx_config(home: Path, port: int, upstream: int) -> str:
    temp = home / "temp"
    return (f"daemon off;\nworker_processes 1;\npid {home}/nginx.pid;\n"
            f"error_log {home}/error.log;\nevents {{ worker_connections 256; }}\n"
            f"http {{\n  access_log off;\n  client_body_temp_path {temp}/body;\n"
            f"  proxy_temp_path {temp}/proxy;\n  fastcgi_temp_path {temp}/fastcgi;\n"
            f"  uwsgi_temp_path {temp}/uwsgi;\n  scgi_temp_path {temp}/scgi;\n"
            f"  upstream lick_archive {{ server 127.0.0.1:{upstream}; keepalive 8; }}\n"
            f"  server {{\n    listen 127.0.0.1:{port};\n"
            "    location / { proxy_pass http://lick_archive; proxy_http_version 1.1;\n"
            '      proxy_set_header Connection ""; proxy_buffering off; }\n'
            f"    location {PREFIX}/ {{ internal; alias /; sendfile on; tcp_nopush on; }}\n"
            "  }\n}\n")


def start_nginx(home: Path, port: int, upstream: int) -> subprocess.Popen[bytes]:
    (home / "temp").mkdir(parents=True, exist_ok=True)
    (home / "temp").chmod(0o777)
    (home / "nginx.conf").write_text(nginx_config(home, port, upstream))
    process = subprocess.Popen(["nginx", "-c", str(home / "nginx.conf"), "-p", str(home)])
    try:
        return answering(process, port, 20, "nginx did not start")
    except RuntimeError:
        raise RuntimeError(f"nginx did not start: {(home / 'error.log').read_text()}") from None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if shutil.which("nginx") is None or shutil.which("curl") is None:
        raise SystemExit("bench.proxy needs nginx and curl (make test installs them)")
    data_dir = PROJECT / "var" / "bench-proxy"
    root = data_dir / "archive"
    target = build_database(data_dir, ROWS)
    dids, paths = build_files(target, root)  # the last: 100 MiB
    os.environ["LICK_ARCHIVE_INGEST_ROOTS"] = str(root)
    big = paths[-1]
    path = f"/data/file?ID={quote(dids[-1], safe='')}"
    home = Path(tempfile.mkdtemp(prefix="lick-bench-nginx-"))
    home.chmod(0o755)
    local_read([big])  # warm the page cache
    ratios: dict[str, list[float]] = {"nginx": [], "direct": []}
    rates: dict[str, list[float]] = {"nginx": [], "direct": [], "local": []}
    try:
        for kind in ("direct", "nginx"):
            if kind == "nginx":
                os.environ["LICK_ARCHIVE_DOWNLOADS_ACCEL_REDIRECT_PREFIX"] = PREFIX
            upstream = _free_port()
            server = start_server(data_dir, upstream)
            nginx = None
            try:
                base = f"http://127.0.0.1:{upstream}"
                if kind == "nginx":
                    port = _free_port()
                    nginx = start_nginx(home, port, upstream)
                    base = f"http://127.0.0.1:{port}"
                for _ in range(args.repeat):
                    seconds, size = local_read([big])
                    served, sent = curl(f"{base}{path}")
                    assert sent == size, (kind, sent, size)
                    rates["local"].append(size / seconds / 1e6)
                    rates[kind].append(sent / served / 1e6)
                    ratios[kind].append(seconds / served)
            finally:
                if nginx is not None:
                    nginx.terminate()
                    nginx.wait(10)
                server.terminate()
                server.wait(20)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    local = statistics.median(rates["local"])
    for kind, label in (("nginx", "through nginx (X-Accel-Redirect)"),
                        ("direct", "from the service itself")):
        rate, ratio = statistics.median(rates[kind]), statistics.median(ratios[kind])
        print(f"100 MiB file {label}: {rate:,.0f} MB/s, {ratio:.2f}x the local read "
              f"({local:,.0f} MB/s), median of {args.repeat}")
        record("proxy", f"100 MiB download {label}", rate, "MB/s", baseline=rate / ratio,
               baseline_name="local read", target=">= 0.9x" if kind == "nginx" else "",
               met=ratio >= 0.9 if kind == "nginx" else None)


if __name__ == "__main__":
    main()
