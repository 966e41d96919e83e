"""The model cache: fetch (resumable, retried, verified, atomic), verify, resolve names to files.

Files live in $SWAPLINE_HOME/models (default: the user's cache folder). These downloads are the
users' supply chain, so every answer from a server is distrusted until checked:

- a download goes to NAME.partial and is renamed into place only when complete and checked;
- a cut download resumes with a Range request only under If-Range with the validator (strong ETag,
  else Last-Modified) recorded in NAME.partial.json when it started, so a file changed on the server
  restarts from zero instead of splicing old and new bytes;
- web pages (login walls, mirror error pages), a size other than the registry's, a wrong SHA-256 and
  a file that is not an ONNX model with the registry's inputs and outputs are refused and removed;
- size and SHA-256 are pinned per source (the same file name differs between hosts): mirrors are
  tried in order, each checked against its own pin, and one whose file fails is passed over for the
  next (the refusal is still reported if none succeeds); a cached file must match one of the pins;
- from a source the registry pins no hash for, the hash of the first complete, checked download is
  recorded in NAME.sha256 (trust on first use) and enforced from then on, at fetch, `verify` and load;
- a lock file (NAME.lock) lets one process or thread download a model while the others wait;
- the whole fetch has a deadline, so a trickling server cannot hang a run forever.

The library never prints: the licence notice goes to the log ("swapline.models") and `on_notice`,
progress to `on_progress`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock, Timeout

from swapline.errors import SwaplineError
from swapline.models.registry import ModelSpec, Source, registry

log = logging.getLogger("swapline.models")

# (path, size, mtime_ns, accepted sha256s) of cached files whose hash matched in this process: a file
# is hashed at its first load only, and again only once it changes.
_intact: set[tuple[str, int, int, frozenset[str]]] = set()

# Content types that mean "a web page", never a model file.
_PAGE_TYPES = ("text/", "application/xhtml+xml")


def swapline_home() -> Path:
    env = os.environ.get("SWAPLINE_HOME")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("swapline"))


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


class ModelStore:
    """Registry models on disk. `on_notice(text)` gets the licence shown before a download;
    `on_progress(model, bytes_done, total_or_None)` is called as bytes arrive."""

    def __init__(
        self,
        home: Path | None = None,
        offline: bool = False,
        retries: int = 4,
        backoff_s: float = 0.5,
        timeout_s: float = 30.0,
        models: dict[str, ModelSpec] | None = None,
        deadline_s: float = 1800.0,
        on_notice: Callable[[str], None] | None = None,
        on_progress: Callable[[str, int, int | None], None] | None = None,
    ):
        self.models = models if models is not None else registry()
        self.folder = (home or swapline_home()) / "models"
        self.offline = offline
        self.retries = retries
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s  # for connecting and for each read
        self.deadline_s = deadline_s  # for a whole fetch, retries included
        self.on_notice = on_notice
        self.on_progress = on_progress

    # -- where things are ---------------------------------------------------------------------

    def spec(self, name: str) -> ModelSpec:
        if name not in self.models:
            raise SwaplineError(f"unknown model {name!r}; known: {', '.join(sorted(self.models))}")
        return self.models[name]

    def path(self, name: str) -> Path:
        return self.folder / self.spec(name).filename

    def _pin_path(self, name: str) -> Path:
        return self.folder / f"{self.spec(name).filename}.sha256"

    def expected_hash(self, name: str) -> str | None:
        """The model-wide pinned hash, else the one recorded at the first download (None: neither)."""
        pinned = self.spec(name).sha256
        if pinned:
            return pinned.lower()
        return self.recorded_hash(name)

    def recorded_hash(self, name: str) -> str | None:
        """The hash recorded at the first download from an unpinned source (None: none)."""
        record = self._pin_path(name)
        return record.read_text().strip() if record.exists() else None

    def accepted_hashes(self, name: str) -> frozenset[str]:
        """Every hash a cached file of this model may have: its sources' pins, plus the first-use
        record unless every source is pinned (then a file matching no pin is refused). Empty: nothing
        to check against (placed by hand, never fetched)."""
        model = self.spec(name)
        accepted = set(model.pinned_digests)
        recorded = self.recorded_hash(name)
        if recorded and not model.fully_pinned:
            accepted.add(recorded)
        return frozenset(accepted)

    def _source_hash(self, name: str, source: Source) -> str | None:
        """What a download from `source` must hash to: its pin, else the first-use record."""
        return source.sha256.lower() if source.sha256 else self.recorded_hash(name)

    def resolve(self, name_or_path: str | Path) -> tuple[Path, ModelSpec | None]:
        """A local file as given, or a registry model from the cache (fetched when missing, checked
        against its size and hash before its first load in this process)."""
        candidate = Path(name_or_path)
        if str(name_or_path) not in self.models:
            if candidate.suffix == ".onnx" or candidate.exists():
                if not candidate.is_file():
                    raise SwaplineError(f"{candidate}: model file not found")
                return candidate, None
            self.spec(str(name_or_path))  # raises "unknown model"
        name = str(name_or_path)
        path = self.path(name)
        if not path.exists():
            self.fetch(name)
        self._check_intact(name, path)
        return path, self.spec(name)

    def _check_intact(self, name: str, path: Path) -> None:
        """Refuse a cached file that changed since it was downloaded and checked (tampering, disk
        corruption, a half-copied file): one hash per process, none while the file is unchanged."""
        stat = path.stat()
        sizes = {s.size for s in self.spec(name).sources}
        again = f"run `swapline models verify {name}` and fetch it again"
        if None not in sizes and stat.st_size not in sizes:  # every source pins a size
            expected = " or ".join(str(s) for s in sorted(sizes))
            raise SwaplineError(f"{path}: {name} has {stat.st_size} bytes, expected {expected}; {again}")
        accepted = self.accepted_hashes(name)
        if not accepted:  # placed by hand and never fetched: nothing to check against
            return
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, accepted)
        if key in _intact:
            return
        if sha256_of(path) not in accepted:
            raise SwaplineError(f"{path}: {name} changed since it was downloaded (SHA-256 mismatch); {again}")
        _intact.add(key)

    # -- fetching ------------------------------------------------------------------------------

    def fetch(self, name: str) -> Path:
        """The cached file, downloaded first when missing; concurrent fetches of one model wait
        for the first instead of racing it on the same partial file."""
        model = self.spec(name)
        target = self.path(name)
        if target.exists():
            return target
        if self.offline:
            raise SwaplineError(
                f"{target}: {name} is not downloaded and --offline is set; place the file there by hand "
                f"(from {model.urls[0]})"
            )
        self.folder.mkdir(parents=True, exist_ok=True)
        lock = FileLock(self.folder / f"{model.filename}.lock", timeout=self.deadline_s)
        try:
            with lock:
                if target.exists():  # another process or thread fetched it while this one waited
                    return target
                return self._fetch_now(name, model, target)
        except Timeout:
            raise SwaplineError(
                f"{target}: another download of {name} (holding {lock.lock_file}) did not finish within "
                f"{self.deadline_s:g} s; run again later"
            ) from None

    def _fetch_now(self, name: str, model: ModelSpec, target: Path) -> Path:
        self._notice(f"{name}: licence: {model.licence}")
        deadline = time.monotonic() + self.deadline_s
        partial = target.with_name(target.name + ".partial")
        last: Exception = _Retryable("no source")
        refused: _WrongFile | None = None  # a source sent a file that failed its checks: try the next
        for source in model.sources:
            for attempt in range(self.retries + 1):
                try:
                    self._download(source, partial, model, deadline)
                    digest = self._check_download(partial, model, source, target)
                except _WrongSource as exc:  # 404, a web page, another size...: another try will not help
                    last = exc
                    break
                except _Retryable as exc:
                    last = exc
                    if attempt < self.retries:
                        time.sleep(min(self.backoff_s * (2**attempt), max(0.0, deadline - time.monotonic())))
                    continue
                except _WrongFile as exc:
                    partial.unlink(missing_ok=True)
                    _meta_path(partial).unlink(missing_ok=True)
                    refused = refused or exc
                    break
                os.replace(partial, target)
                _meta_path(partial).unlink(missing_ok=True)
                if not source.pinned and not self._pin_path(name).exists():
                    self._pin_path(name).write_text(digest + "\n")  # trust on first use
                stat = target.stat()
                key = (str(target.resolve()), stat.st_size, stat.st_mtime_ns, self.accepted_hashes(name))
                _intact.add(key)  # hashed just now
                return target
        if refused is not None:  # what a mirror sent was refused: say so, rather than a later 404
            raise refused
        if isinstance(last, _WrongSource):
            raise SwaplineError(f"{target}: {last}; place the file there by hand (from {model.urls[0]})")
        raise SwaplineError(
            f"{target}: cannot download {name} ({last}); no network? place the file there by hand "
            f"(from {model.urls[0]})"
        )

    def _download(self, source: Source, partial: Path, model: ModelSpec, deadline: float) -> None:
        """Fill `partial` from the source's URL: append after a cut only while the server's validator is
        the one recorded when the download began, else start again from zero."""
        import requests
        import urllib3

        url = source.url
        meta = _meta_path(partial)
        have = partial.stat().st_size if partial.exists() else 0
        validator = _saved_validator(meta, url) if have else None
        headers = {"Accept-Encoding": "identity"}  # byte ranges of the file itself, not of a gzip of it
        if validator:
            headers |= {"Range": f"bytes={have}-", "If-Range": validator}
        left = deadline - time.monotonic()
        if left <= 0:
            raise self._too_slow(model)
        try:
            response = requests.get(url, headers=headers, stream=True, timeout=min(self.timeout_s, left))
        except requests.RequestException as exc:
            raise _Retryable(type(exc).__name__) from exc
        with response:
            code = response.status_code
            if code == 416 and validator:  # asked past the end: the partial is complete (checked next)
                return
            if code >= 500 or code == 429:
                raise _Retryable(f"HTTP {code} from {url}")
            if code in (404, 410):
                raise _WrongSource(f"{model.name} not found at {url} (HTTP {code})")
            if code >= 400:
                raise _WrongSource(f"{url} refused to send {model.name} (HTTP {code})")
            kind = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if kind.startswith(_PAGE_TYPES):
                raise _WrongSource(f"{url} answered with a web page ({kind}), not a model file")
            if code == 206:
                now = _validator(response)
                if not validator or now not in (None, validator) or _range_start(response) not in (None, have):
                    partial.unlink(missing_ok=True)  # not the rest of the bytes we have: start again
                    meta.unlink(missing_ok=True)
                    raise _Retryable(f"{model.name} changed on the server during the download")
                done = have
            else:  # the whole file: it replaces whatever the partial held
                done = 0
            length = _int(response.headers.get("Content-Length"))
            total = done + length if length is not None else source.size
            if source.size is not None and total != source.size:
                raise _WrongSource(f"{url} offers {total} bytes for {model.name}, the registry expects {source.size}")
            if not done:
                _save_validator(meta, url, _validator(response))
            read = getattr(response.raw, "read1", response.raw.read)  # read1: whatever has arrived, no waiting
            with open(partial, "ab" if done else "wb") as handle:
                try:
                    while block := read(1 << 16, decode_content=True):
                        handle.write(block)
                        done += len(block)
                        if self.on_progress:
                            self.on_progress(model.name, done, total)
                        if time.monotonic() > deadline:
                            raise self._too_slow(model)
                except (requests.RequestException, urllib3.exceptions.HTTPError, ConnectionError, TimeoutError) as exc:
                    raise _Retryable(f"connection cut after {done} bytes") from exc
            if length is not None and done < total:
                raise _Retryable(f"connection cut after {done} bytes")

    def _check_download(self, partial: Path, model: ModelSpec, source: Source, target: Path) -> str:
        """The SHA-256 of a complete download that has its source's size, its source's pinned (or the
        recorded) hash and the registry's ONNX signature; else _WrongFile (nothing kept or recorded)."""
        name = model.name
        size = partial.stat().st_size
        if source.size is not None and size != source.size:
            raise _WrongFile(f"{target}: download of {name} has {size} bytes, expected {source.size}; removed")
        digest = sha256_of(partial)
        expected = self._source_hash(name, source)  # pinned for this source, or recorded at first download
        if expected and digest != expected:
            raise _WrongFile(f"{target}: download of {name} failed its SHA-256 check; removed")
        if not expected and source.published_once and digest != source.published_once.lower():
            log.warning(
                "%s: %s has sha256 %s, not the %s published once; kept on trust on first use",
                target,
                name,
                digest[:12],
                source.published_once[:12],
            )
        try:
            _check_onnx(partial, model, target)
        except SwaplineError as exc:
            raise _WrongFile(f"{exc}; download removed") from exc
        return digest

    def _notice(self, text: str) -> None:
        log.info("%s", text)
        if self.on_notice:
            self.on_notice(text)

    def _too_slow(self, model: ModelSpec) -> SwaplineError:
        return _TooSlow(
            f"{self.path(model.name)}: download of {model.name} did not finish within {self.deadline_s:g} s "
            "(server too slow?); run again to resume"
        )

    # -- checking what is there ----------------------------------------------------------------

    def verify(self, name: str) -> str:
        """'ok', 'missing' or a reason; a file that fails is removed."""
        path = self.path(name)
        if not path.exists():
            return "missing"
        accepted = self.accepted_hashes(name)
        if accepted and sha256_of(path) not in accepted:
            path.unlink()
            return "checksum mismatch: removed"
        try:
            _check_onnx(path, self.spec(name), path)
        except SwaplineError as exc:
            path.unlink()
            return f"{exc}: removed"
        return "ok"

    def status(self) -> dict[str, str]:
        return {name: ("downloaded" if self.path(name).exists() else "not downloaded") for name in self.models}


def _check_onnx(path: Path, model: ModelSpec, shown: Path) -> None:
    """Raise SwaplineError unless `path` is an ONNX model with the registry's inputs and outputs."""
    import onnxruntime as ort

    from swapline.models.signature import check_signature

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # only the signature is read
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises several unrelated types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SwaplineError(f"{shown}: {model.name} is not a loadable ONNX model ({first})") from exc
    check_signature(session, model, shown)


def _meta_path(partial: Path) -> Path:
    return partial.with_name(partial.name + ".json")


def _validator(response) -> str | None:
    """What If-Range may carry: a strong ETag, else Last-Modified (a weak ETag is not allowed there)."""
    etag = response.headers.get("ETag")
    if etag and not etag.startswith("W/"):
        return etag
    return response.headers.get("Last-Modified")


def _save_validator(meta: Path, url: str, validator: str | None) -> None:
    if validator:
        meta.write_text(json.dumps({"url": url, "validator": validator}))
    else:  # nothing to prove the file unchanged later: a cut will restart from zero
        meta.unlink(missing_ok=True)


def _saved_validator(meta: Path, url: str) -> str | None:
    try:
        saved = json.loads(meta.read_text())
    except (OSError, ValueError):
        return None
    return saved.get("validator") if isinstance(saved, dict) and saved.get("url") == url else None


def _range_start(response) -> int | None:
    """The first byte of a 206 answer, from 'Content-Range: bytes START-END/TOTAL'."""
    value = response.headers.get("Content-Range", "")
    return _int(value.removeprefix("bytes ").split("-")[0]) if value.startswith("bytes ") else None


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


class _Retryable(Exception):
    pass


class _WrongSource(_Retryable):
    pass


class _WrongFile(SwaplineError):
    pass


class _TooSlow(SwaplineError):
    pass
