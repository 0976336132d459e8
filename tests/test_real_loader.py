"""`load_real_housing` for real: a housing.tgz built from the reference CSV, served by http.server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import http.server
import io
import socket
import tarfile
import threading
import traceback

import pandas as pd
import pytest

from mlops_course.data import COLUMNS, REAL_DATA_SHA256, DataSourceError, load_real_housing


@pytest.fixture(scope="module")
def csv_bytes(shared_csv) -> bytes:
    "The reference table's bytes: the tests serve an archive built from them."
    data = shared_csv.read_bytes()
    assert hashlib.sha256(data).hexdigest() == REAL_DATA_SHA256, "the reference CSV is not the published file"
    return data


def _tgz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class _Server:
    "Serves a dict path -> bytes on a free loopback port and counts requests."
    def __init__(self, files: dict[str, bytes]):
        self.files, self.hits = files, []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.hits.append(self.path)
                body = outer.files.get(self.path)
                if body is None:
                    self.send_error(404, "Not Found")
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture(scope="module")
def server(csv_bytes):
    files = {
        "/housing.tgz": _tgz({"housing/housing.csv": csv_bytes}),
        "/corrupt.tgz": b"\x1f\x8b\x08\x00 this is not really gzip" + bytes(range(200)),
        "/tampered.tgz": _tgz({"housing.csv": csv_bytes.replace(b"NEAR BAY", b"NEAR BAX", 1)}),
        "/empty.tgz": _tgz({"README.txt": b"nothing here"}),
    }
    with _Server(files) as s:
        yield s


def _assert_clean(err: DataSourceError, *fragments: str):
    msg = str(err)
    for f in fragments:
        assert f in msg, f"{f!r} not in:\n{msg}"
    assert "MLOPS_COURSE_DATA_SOURCE=simulated" in msg and "MLOPS_COURSE_DATA_SOURCE=/path/to/housing.csv" in msg
    assert err.__cause__ is None and (err.__context__ is None or err.__suppress_context__)
    shown = "".join(traceback.format_exception(err))
    assert "During handling of the above exception" not in shown, "the library exception chain must be hidden"


def test_download_verify_and_cache(server, tmp_path, csv_bytes):
    server.hits.clear()
    df = load_real_housing(url=server.url + "/housing.tgz", cache_dir=tmp_path)
    assert list(df.columns) == COLUMNS and len(df) == 20_640
    assert df["total_bedrooms"].isna().sum() == 207
    cached = tmp_path / "housing.csv"
    assert cached.read_bytes() == csv_bytes
    assert server.hits == ["/housing.tgz"]
    assert not list(tmp_path.glob("*.part")), "no partial file is left behind"


def test_second_call_is_a_cache_hit(server, tmp_path):
    url = server.url + "/housing.tgz"
    first = load_real_housing(url=url, cache_dir=tmp_path)
    server.hits.clear()
    second = load_real_housing(url=url, cache_dir=tmp_path)
    assert server.hits == [], "the second call must not download"
    pd.testing.assert_frame_equal(first, second)


def test_damaged_cache_is_downloaded_again(server, tmp_path):
    url = server.url + "/housing.tgz"
    (tmp_path / "housing.csv").write_text("longitude\n1\n")
    server.hits.clear()
    assert len(load_real_housing(url=url, cache_dir=tmp_path)) == 20_640
    assert server.hits == ["/housing.tgz"]


def test_http_404(server, tmp_path):
    with pytest.raises(DataSourceError) as info:
        load_real_housing(url=server.url + "/missing.tgz", cache_dir=tmp_path)
    _assert_clean(info.value, "HTTP 404", "/missing.tgz")
    assert not (tmp_path / "housing.csv").exists()


def test_connection_refused(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # a port nobody listens on once the socket is closed
    with pytest.raises(DataSourceError) as info:
        load_real_housing(url=f"http://127.0.0.1:{port}/housing.tgz", cache_dir=tmp_path, timeout=5)
    _assert_clean(info.value, "could not reach", "offline")


def test_corrupt_archive(server, tmp_path):
    with pytest.raises(DataSourceError) as info:
        load_real_housing(url=server.url + "/corrupt.tgz", cache_dir=tmp_path)
    _assert_clean(info.value, "corrupt or not a .tgz")


def test_archive_without_the_csv(server, tmp_path):
    with pytest.raises(DataSourceError) as info:
        load_real_housing(url=server.url + "/empty.tgz", cache_dir=tmp_path)
    _assert_clean(info.value, "has no housing.csv")


def test_checksum_mismatch(server, tmp_path):
    with pytest.raises(DataSourceError) as info:
        load_real_housing(url=server.url + "/tampered.tgz", cache_dir=tmp_path)
    _assert_clean(info.value, "sha256", "not used")
    assert not (tmp_path / "housing.csv").exists(), "a file that fails its checksum is never cached"


def test_load_housing_real_uses_the_workspace_cache(server, tmp_path, monkeypatch, csv_bytes):
    "With data_source=real, load_housing reads <workspace>/data/housing.csv (here pre-seeded: no network)."
    from mlops_course.config import get_settings
    from mlops_course.data import load_housing
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "housing.csv").write_bytes(csv_bytes)
    monkeypatch.setenv("MLOPS_COURSE_WORKSPACE", str(tmp_path))
    monkeypatch.setenv("MLOPS_COURSE_DATA_SOURCE", "real")
    get_settings.cache_clear()
    try:
        assert len(load_housing()) == 20_640
    finally:
        get_settings.cache_clear()
