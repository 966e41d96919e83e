"""The model cache: fetch (resumable, retried, verified, atomic), verify, resolve names to files.

Files live in $SWAPLINE_HOME/models (default: the user's cache folder). A download goes to
NAME.partial, resumes with an HTTP Range request after a cut, is checked against the pinned
size and SHA-256 (when the registry has them) and is renamed into place only when complete. When
the registry pins no hash, the hash of the first complete download is recorded beside the file
(trust on first use) and `verify` checks against it from then on.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path

from swapline.errors import SwaplineError
from swapline.models.registry import ModelSpec, registry


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
    def __init__(
        self,
        home: Path | None = None,
        offline: bool = False,
        retries: int = 4,
        backoff_s: float = 0.5,
        timeout_s: float = 30.0,
        progress: bool = True,
        say: Callable[[str], None] = print,
        models: dict[str, ModelSpec] | None = None,
    ):
        self.models = models if models is not None else registry()
        self.folder = (home or swapline_home()) / "models"
        self.offline = offline
        self.retries = retries
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self.progress = progress
        self.say = say

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
        pinned = self.spec(name).sha256
        if pinned:
            return pinned.lower()
        record = self._pin_path(name)
        return record.read_text().strip() if record.exists() else None

    def resolve(self, name_or_path: str | Path) -> tuple[Path, ModelSpec | None]:
        """A local file as given, or a registry model from the cache (fetched when missing)."""
        candidate = Path(name_or_path)
        if str(name_or_path) not in self.models:
            if candidate.suffix == ".onnx" or candidate.exists():
                if not candidate.is_file():
                    raise SwaplineError(f"{candidate}: model file not found")
                return candidate, None
            self.spec(str(name_or_path))  # raises "unknown model"
        path = self.path(str(name_or_path))
        if not path.exists():
            self.fetch(str(name_or_path))
        return path, self.spec(str(name_or_path))

    # -- fetching ------------------------------------------------------------------------------

    def fetch(self, name: str) -> Path:
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
        self.say(f"{name}: licence: {model.licence}")
        partial = target.with_name(target.name + ".partial")
        last_error = "no source"
        for url in model.urls:
            for attempt in range(self.retries + 1):
                try:
                    self._download(url, partial, model)
                    self._check_complete(partial, model, name)
                    os.replace(partial, target)
                    if not self._pin_path(name).exists() and not model.sha256:
                        self._pin_path(name).write_text(sha256_of(target) + "\n")  # trust on first use
                    return target
                except _WrongSource as exc:  # 403, 404...: another try will not help
                    last_error = str(exc)
                    break
                except _Retryable as exc:
                    last_error = str(exc)
                    if attempt < self.retries:
                        time.sleep(self.backoff_s * (2**attempt))
                except _WrongFile:
                    partial.unlink(missing_ok=True)
                    raise
        raise SwaplineError(
            f"{target}: cannot download {name} ({last_error}); no network? place the file there by hand "
            f"(from {model.urls[0]})"
        )

    def _download(self, url: str, partial: Path, model: ModelSpec) -> None:
        import requests
        from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

        have = partial.stat().st_size if partial.exists() else 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        try:
            response = requests.get(url, headers=headers, stream=True, timeout=self.timeout_s)
        except requests.RequestException as exc:
            raise _Retryable(type(exc).__name__) from exc
        with response:
            if response.status_code == 416 and have:  # asked past the end: the file is complete
                return
            if response.status_code >= 500 or response.status_code == 429:
                raise _Retryable(f"HTTP {response.status_code} from {url}")
            if response.status_code >= 400:
                raise _WrongSource(f"HTTP {response.status_code} from {url}")
            resuming = response.status_code == 206 and have > 0
            mode = "ab" if resuming else "wb"
            done = have if resuming else 0
            length = response.headers.get("Content-Length")
            total = done + int(length) if length is not None else model.size
            with (
                open(partial, mode) as handle,
                Progress(
                    *Progress.get_default_columns(),
                    DownloadColumn(),
                    TransferSpeedColumn(),
                    disable=not self.progress,
                    transient=True,
                ) as bar,
            ):
                task = bar.add_task(f"downloading {model.name}", total=total, completed=done)
                try:
                    for block in response.iter_content(chunk_size=1 << 16):
                        handle.write(block)
                        bar.advance(task, len(block))
                except requests.RequestException as exc:
                    raise _Retryable(f"connection cut after {handle.tell()} bytes") from exc
            if length is not None and partial.stat().st_size < done + int(length):
                raise _Retryable(f"connection cut after {partial.stat().st_size} bytes")

    def _check_complete(self, partial: Path, model: ModelSpec, name: str) -> None:
        size = partial.stat().st_size
        if model.size is not None and size != model.size:
            raise _WrongFile(f"{self.path(name)}: download of {name} has {size} bytes, expected {model.size}; removed")
        expected = self.expected_hash(name)  # pinned in the registry, or recorded at first download
        if expected and sha256_of(partial) != expected:
            raise _WrongFile(f"{self.path(name)}: download of {name} failed its SHA-256 check; removed")

    # -- checking what is there ----------------------------------------------------------------

    def verify(self, name: str) -> str:
        """'ok', 'missing' or a reason; a file that fails is removed."""
        path = self.path(name)
        if not path.exists():
            return "missing"
        expected = self.expected_hash(name)
        if expected and sha256_of(path) != expected:
            path.unlink()
            return "checksum mismatch: removed"
        try:
            from swapline.models.signature import check_signature
            from swapline.runtime import SessionFactory

            check_signature(SessionFactory().load(path), self.spec(name), path)
        except SwaplineError as exc:
            path.unlink()
            return f"{exc}: removed"
        return "ok"

    def status(self) -> dict[str, str]:
        return {name: ("downloaded" if self.path(name).exists() else "not downloaded") for name in self.models}


class _Retryable(Exception):
    pass


class _WrongSource(_Retryable):
    pass


class _WrongFile(SwaplineError):
    pass
