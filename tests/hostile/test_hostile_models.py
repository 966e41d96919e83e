"""The model store against hostile or broken servers and caches: each case is a clean one-line error
naming the model and the problem, or a correct result; never a spliced, foreign or tampered file."""

import hashlib
import logging
import threading
from pathlib import Path

import numpy as np
import pytest

import swapline.models.store as store_module
from swapline.errors import SwaplineError
from swapline.models.loading import OnnxModel
from swapline.models.store import ModelStore
from swapline.runtime import SessionFactory
from tests import synthetic_models as synth
from tests.test_model_store import PAYLOAD, Server, make_store, model_bytes


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def leftovers(tmp_path) -> list[str]:
    """What the models folder holds besides the (empty) lock file."""
    return sorted(p.name for p in (tmp_path / "models").iterdir() if p.suffix != ".lock")


# -- 1. the library never prints ------------------------------------------------------------------


def test_a_fetch_writes_nothing_to_the_terminal(tmp_path, server, capfd, caplog):
    store, _ = make_store(tmp_path, server)
    store.on_notice = None
    with caplog.at_level(logging.INFO, logger="swapline.models"):
        store.fetch("tiny")
    assert capfd.readouterr() == ("", "")
    assert any("licence" in record.getMessage() for record in caplog.records)  # logged instead


def test_notice_and_progress_go_to_the_callbacks(tmp_path, server):
    store, notices = make_store(tmp_path, server)
    progress = []
    store.on_progress = lambda *args: progress.append(args)
    server.plan = ["cut", "ok"]
    store.fetch("tiny")
    assert notices == [f"tiny: licence: {store.spec('tiny').licence}"]
    assert {name for name, _, _ in progress} == {"tiny"}
    assert progress[-1] == ("tiny", len(PAYLOAD), len(PAYLOAD))
    done = [d for _, d, _ in progress]
    assert done == sorted(done)  # the resume counts on from the bytes kept, not from zero


# -- 2. a file changed on the server between a cut and the resume is never spliced -----------------


@pytest.mark.parametrize("honour_if_range", [True, False], ids=["server-honours-if-range", "server-ignores-it"])
def test_a_file_changed_on_the_server_is_fetched_whole_not_spliced(tmp_path, server, honour_if_range):
    store, _ = make_store(tmp_path, server)  # no pinned hash: a splice would be trusted on first use
    new = model_bytes(1)
    assert len(new) == len(PAYLOAD) and new != PAYLOAD
    server.honour_if_range = honour_if_range
    server.plan = ["cut"]
    store.retries = 0
    with pytest.raises(SwaplineError, match="connection cut"):  # no retries left: the partial stays for later
        store.fetch("tiny")
    assert (tmp_path / "models" / "tiny.onnx.partial").stat().st_size == len(PAYLOAD) // 2
    server.body = new  # the server publishes a new version (new ETag)
    store.retries = 3
    assert store.fetch("tiny").read_bytes() == new
    assert server.requests[1]["if_range"] is not None  # the resume was conditional
    assert store.expected_hash("tiny") == hashlib.sha256(new).hexdigest()
    assert leftovers(tmp_path) == ["tiny.onnx", "tiny.onnx.sha256"]


def test_without_a_validator_a_cut_download_starts_again(tmp_path, server):
    store, _ = make_store(tmp_path, server)
    server.etag = False  # nothing proves the file unchanged: appending could splice two versions
    server.plan = ["cut", "ok"]
    assert store.fetch("tiny").read_bytes() == PAYLOAD
    assert [r["range_start"] for r in server.requests] == [0, 0]


# -- 3. web pages, wrong sizes and non-models are refused and never trusted ------------------------


@pytest.mark.parametrize("page_type", ["text/html; charset=utf-8", "text/plain"])
def test_a_web_page_is_refused(tmp_path, server, page_type):
    store, _ = make_store(tmp_path, server)
    server.default, server.page_type = "page", page_type
    kind = page_type.split(";")[0]
    with pytest.raises(SwaplineError, match=rf"tiny.onnx: .* answered with a web page \({kind}\), not a model file"):
        store.fetch("tiny")
    assert len(server.requests) == 1  # not retried: the same page would come back
    assert leftovers(tmp_path) == []


def test_a_file_of_another_size_than_the_registry_says_is_refused(tmp_path, server):
    store, _ = make_store(tmp_path, server, size=len(PAYLOAD) + 1)
    with pytest.raises(SwaplineError, match=rf"offers {len(PAYLOAD)} bytes for tiny, the registry expects"):
        store.fetch("tiny")
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("wrong", ["not-onnx", "other-model"])
def test_a_file_that_is_not_the_model_is_not_kept_or_trusted(tmp_path, server, wrong):
    store, _ = make_store(tmp_path, server)  # no pinned hash: trust on first use would apply
    if wrong == "not-onnx":
        server.default = "wrong"
        message = "is not a loadable ONNX model"
    else:
        server.body = synth.linear(tmp_path / "converter.onnx", np.eye(512)).read_bytes()
        message = "not a tiny model: expected"
    with pytest.raises(SwaplineError, match=rf"tiny.onnx: .*{message}.*; download removed"):
        store.fetch("tiny")
    assert store.expected_hash("tiny") is None
    assert leftovers(tmp_path) == []
    server.body, server.default = PAYLOAD, "ok"  # the real file, later, is still accepted
    assert store.fetch("tiny").read_bytes() == PAYLOAD


# -- 4. a cached file is checked against its hash before its first load -----------------------------


def load(store: ModelStore) -> OnnxModel:
    return OnnxModel("tiny", "recognizer", store=store, sessions=SessionFactory())


@pytest.mark.parametrize("replacement", ["same-size", "other-size"])
def test_a_cached_file_replaced_after_download_is_refused_at_load(tmp_path, server, replacement):
    store, _ = make_store(tmp_path, server)
    path = store.fetch("tiny")
    path.write_bytes(model_bytes(2) if replacement == "same-size" else PAYLOAD + b"\0")
    with pytest.raises(SwaplineError, match=r"tiny.onnx: tiny changed since it was downloaded .*models verify tiny"):
        load(store)


def test_an_unchanged_cached_file_is_hashed_once_per_process(tmp_path, server, monkeypatch):
    store, _ = make_store(tmp_path, server, sha256=hashlib.sha256(PAYLOAD).hexdigest())
    path = store.fetch("tiny")
    calls = []

    def counting(p: Path, *args) -> str:
        calls.append(p)
        return hashlib.sha256(Path(p).read_bytes()).hexdigest()

    monkeypatch.setattr(store_module, "sha256_of", counting)
    load(store)
    assert calls == []  # fetched (and hashed) in this process just now
    monkeypatch.setattr(store_module, "_intact", set())  # as in a new process
    load(store)
    load(store)
    assert calls == [path]


def test_a_pinned_size_is_checked_at_load(tmp_path, server):
    store, _ = make_store(tmp_path, server, size=len(PAYLOAD))
    path = store.fetch("tiny")
    path.write_bytes(PAYLOAD + b"\0")
    with pytest.raises(SwaplineError, match=rf"tiny has {len(PAYLOAD) + 1} bytes, expected {len(PAYLOAD)}"):
        load(store)


# -- 5. concurrent fetches of one model -------------------------------------------------------------


def test_two_fetches_at_once_download_once_and_both_succeed(tmp_path, server):
    store, _ = make_store(tmp_path, server)
    server.default = "slow"  # the first download is still running when the second fetch starts
    start = threading.Barrier(2)
    results, errors = [], []

    def fetch():
        start.wait()
        try:
            results.append(store.fetch("tiny"))
        except Exception as exc:  # reported by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=fetch) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(results) == 2 and results[0] == results[1] and results[0].read_bytes() == PAYLOAD
    assert len(server.requests) == 1


# -- 6. slow and missing files ----------------------------------------------------------------------


def test_a_trickling_server_hits_the_deadline_and_the_next_run_resumes(tmp_path, server):
    store, _ = make_store(tmp_path, server)
    store.deadline_s = 1.5  # the trickle needs over a minute for the whole file
    server.default = "trickle"  # one byte every 10 ms: every read gets something, the whole never ends
    with pytest.raises(SwaplineError, match=r"tiny.onnx: download of tiny did not finish within 1.5 s .*resume"):
        store.fetch("tiny")
    kept = (tmp_path / "models" / "tiny.onnx.partial").stat().st_size
    assert 0 < kept < len(PAYLOAD)
    server.default = "ok"
    store.deadline_s = 1800
    assert store.fetch("tiny").read_bytes() == PAYLOAD
    assert server.requests[-1]["range_start"] == kept


def test_a_missing_file_says_not_found_not_no_network(tmp_path, server):
    store, _ = make_store(tmp_path, server)
    server.default = "404"
    with pytest.raises(SwaplineError) as caught:
        store.fetch("tiny")
    message = str(caught.value)
    assert f"tiny not found at {server.url} (HTTP 404)" in message
    assert "no network" not in message and "\n" not in message
