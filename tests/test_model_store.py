"""Model downloads against a local HTTP server on 127.0.0.1: resume, retries, checksums, offline."""

import hashlib
import tempfile
import threading
import time
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from swapline.errors import SwaplineError
from swapline.models.registry import spec
from swapline.models.store import ModelStore
from tests import synthetic_models as synth


def model_bytes(seed: int) -> bytes:
    """A tiny ONNX file with the w600k_mbf signature; other seeds give other bytes of the same size."""
    with tempfile.TemporaryDirectory() as folder:
        weights = np.random.default_rng(seed).normal(size=(3, 512)).astype(np.float32)
        return synth.arcface(Path(folder) / "m.onnx", weights).read_bytes()


PAYLOAD = model_bytes(0)


class Server:
    """Serves `body` at /model.onnx with a strong ETag, honouring Range and If-Range like a CDN.

    `plan` scripts how the next requests are answered, then `default`: ok; cut (half of what was
    promised, then the connection drops); wrong (other bytes of the same size); 500 or 404; page (a
    login wall of type `page_type`); slow (the body in 16 pieces, `pause_s` apart); trickle (one byte
    every `pause_s`).
    """

    def __init__(self):
        self.plan: list[str] = []
        self.default = "ok"
        self.requests: list[dict] = []
        self.body = PAYLOAD
        self.etag = True  # send an ETag
        self.honour_if_range = True  # False: a server that answers 206 whatever If-Range says
        self.page_type = "text/html; charset=utf-8"
        self.pause_s = 0.01
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                action = owner.plan.pop(0) if owner.plan else owner.default
                body = owner.body if action != "wrong" else b"x" * len(owner.body)
                tag = f'"{hashlib.sha256(body).hexdigest()[:16]}"'
                asked = 0
                if "Range" in self.headers:
                    asked = int(self.headers["Range"].split("=")[1].split("-")[0])
                if_range = self.headers.get("If-Range")
                owner.requests.append({"range_start": asked, "if_range": if_range, "action": action})
                if action in ("500", "404"):
                    self.send_response(int(action))
                    self.end_headers()
                    return
                if action == "page":
                    page = b"<html><body>Please sign in to download this file.</body></html>"
                    self.send_response(200)
                    self.send_header("Content-Type", owner.page_type)
                    self.send_header("Content-Length", str(len(page)))
                    self.end_headers()
                    self.wfile.write(page)
                    return
                start = asked if if_range in (None, tag) or not owner.honour_if_range else 0
                self.send_response(206 if start else 200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body) - start))
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                if owner.etag:
                    self.send_header("ETag", tag)
                self.end_headers()
                rest = body[start:]
                try:
                    if action == "cut":
                        self.wfile.write(rest[: len(rest) // 2])
                        self.wfile.flush()
                        self.connection.close()
                    elif action in ("slow", "trickle"):
                        step = 1 if action == "trickle" else -(-len(rest) // 16)
                        for at in range(0, len(rest), step):
                            self.wfile.write(rest[at : at + step])
                            self.wfile.flush()
                            time.sleep(owner.pause_s)
                    else:
                        self.wfile.write(rest)
                except OSError:  # the client gave up (deadline): nothing more to send
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/model.onnx"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def make_store(tmp_path, server, **spec_changes):
    model = replace(spec("w600k_mbf"), name="tiny", urls=(server.url,), filename="tiny.onnx", **spec_changes)
    lines = []
    store = ModelStore(home=tmp_path, retries=3, backoff_s=0.01, on_notice=lines.append, models={"tiny": model})
    return store, lines


def test_download_is_verified_and_placed_atomically(tmp_path, server):
    store, lines = make_store(tmp_path, server, sha256=hashlib.sha256(PAYLOAD).hexdigest(), size=len(PAYLOAD))
    path = store.fetch("tiny")
    assert path.read_bytes() == PAYLOAD and path == tmp_path / "models" / "tiny.onnx"
    assert not list(path.parent.glob("*.partial*"))
    assert "licence" in lines[0]  # the licence is shown before the download


def test_a_cut_download_resumes_with_a_range_request(tmp_path, server):
    store, _ = make_store(tmp_path, server, sha256=hashlib.sha256(PAYLOAD).hexdigest())
    server.plan = ["cut", "ok"]
    assert store.fetch("tiny").read_bytes() == PAYLOAD
    assert server.requests[0]["range_start"] == 0
    assert server.requests[1]["range_start"] == len(PAYLOAD) // 2  # only the rest was fetched


def test_server_errors_are_retried_with_backoff(tmp_path, server):
    store, _ = make_store(tmp_path, server)
    server.plan = ["500", "500", "ok"]
    assert store.fetch("tiny").read_bytes() == PAYLOAD
    assert len(server.requests) == 3
    # no hash in the registry: the first complete download is pinned for later checks
    assert store.expected_hash("tiny") == hashlib.sha256(PAYLOAD).hexdigest()


def test_persistent_server_errors_give_a_clear_error(tmp_path, server):
    store, _ = make_store(tmp_path, server)
    server.plan = ["500"] * 10
    with pytest.raises(SwaplineError, match="cannot download tiny .*HTTP 500.*place the file there by hand"):
        store.fetch("tiny")
    assert len(server.requests) == 4  # 1 try + 3 retries


def test_checksum_mismatch_removes_the_file(tmp_path, server):
    store, _ = make_store(tmp_path, server, sha256=hashlib.sha256(PAYLOAD).hexdigest())
    server.plan = ["wrong"]
    with pytest.raises(SwaplineError, match="failed its SHA-256 check; removed"):
        store.fetch("tiny")
    assert [p.name for p in (tmp_path / "models").iterdir()] == ["tiny.onnx.lock"]  # only the (empty) lock


def test_offline_and_no_network_name_the_file_to_place(tmp_path, server):
    store, _ = make_store(tmp_path, server)
    store.offline = True
    with pytest.raises(SwaplineError, match=r"tiny.onnx: tiny is not downloaded and --offline is set"):
        store.fetch("tiny")
    server.close()  # nothing listens any more: like having no network
    store.offline = False
    store.retries = 1
    with pytest.raises(SwaplineError, match=r"tiny.onnx: cannot download tiny .*no network\?"):
        store.fetch("tiny")


def test_verify_removes_a_corrupted_file(tmp_path, server):
    store, _ = make_store(tmp_path, server, sha256=hashlib.sha256(PAYLOAD).hexdigest())
    path = store.fetch("tiny")
    path.write_bytes(PAYLOAD[:-1] + b"!")
    assert store.verify("tiny") == "checksum mismatch: removed"
    assert not path.exists() and store.verify("tiny") == "missing"


def test_local_paths_are_used_as_given(tmp_path):
    store = ModelStore(home=tmp_path, offline=True)
    local = tmp_path / "mine.onnx"
    local.write_bytes(b"onnx")
    assert store.resolve(local) == (local, None)
    with pytest.raises(SwaplineError, match="model file not found"):
        store.resolve(tmp_path / "other.onnx")
    with pytest.raises(SwaplineError, match="unknown model"):
        store.resolve("no_such_model")


def test_missing_file_on_the_server_is_not_retried(tmp_path, server):
    store, _ = make_store(tmp_path, server)
    server.default = "404"
    with pytest.raises(SwaplineError, match="HTTP 404"):
        store.fetch("tiny")
    assert len(server.requests) == 1


def test_the_first_download_hash_is_kept_and_enforced(tmp_path, server):
    store, _ = make_store(tmp_path, server)
    path = store.fetch("tiny")
    recorded = store.expected_hash("tiny")
    path.unlink()  # e.g. removed by verify after tampering
    server.plan = ["wrong"]  # the server now sends something else
    with pytest.raises(SwaplineError, match="failed its SHA-256 check"):
        store.fetch("tiny")
    assert store.expected_hash("tiny") == recorded
