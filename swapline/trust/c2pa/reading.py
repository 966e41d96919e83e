"""Read back and validate the Content Credentials of a file: embedded, or in its sidecar.

States: "valid" (manifest intact; the signer may still be untrusted, see `untrusted_signer`),
"invalid" (the file or the manifest changed after signing, or the manifest is broken), "absent" (no
manifest inside the file and no sidecar), "unchecked" (the 'c2pa' extra is not installed, so
nothing could be read: never report that as "absent").
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from swapline.errors import SwaplineError
from swapline.trust.c2pa._sdk import context, media_type, sdk
from swapline.trust.c2pa.settings import MISSING_EXTRA
from swapline.trust.c2pa.signing import sidecar_path

UNTRUSTED = "signingCredential.untrusted"
# The last segment of IPTC digitalSourceType URIs that mean "made by a trained model".
_AI_SOURCE_TYPES = {"trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia"}


@dataclass(frozen=True)
class CredentialReport:
    """What a file's active C2PA manifest says and whether it checks out."""

    state: str  # valid | invalid | absent | unchecked
    signer: str | None = None  # common name of the signing certificate
    issuer: str | None = None  # organization of the certificate's issuer
    ai_generated: bool = False  # an action declares trained-algorithmic media
    ingredients: tuple[str, ...] = ()  # titles of the active manifest's ingredients
    status_codes: tuple[str, ...] = ()  # C2PA validation status codes reported as problems
    untrusted_signer: bool = False  # the chain leads to no trust anchor (e.g. the local CA)
    sidecar: Path | None = None  # the .c2pa file the manifest came from, when not embedded
    note: str = ""

    def to_dict(self) -> dict:
        record = asdict(self)
        record["sidecar"] = None if self.sidecar is None else str(self.sidecar)
        return record


def read_credentials(path: Path | str, trust_anchors: Path | str | None = None) -> CredentialReport:
    """Validate the manifest of `path` offline. `trust_anchors`: PEM CA certificates to trust (none
    by default, so every signer, the local CA included, reads as untrusted)."""
    path = Path(path)
    c2pa = sdk()
    if c2pa is None:
        return CredentialReport("unchecked", note=MISSING_EXTRA)
    if not path.is_file():
        raise SwaplineError(f"{path}: no such file")
    anchors = None
    if trust_anchors is not None:
        try:
            anchors = Path(trust_anchors).read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise SwaplineError(f"{trust_anchors}: cannot read trust anchors ({exc})") from exc
    ctx = context(c2pa, trust_anchors=anchors)
    sidecar = sidecar_path(path)
    try:
        try:
            return _read(c2pa, ctx, path)
        except (c2pa.C2paError.ManifestNotFound, c2pa.C2paError.NotSupported):
            if not sidecar.is_file():
                return CredentialReport("absent")
        return _read(c2pa, ctx, path, sidecar)
    except OSError as exc:
        raise SwaplineError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    except c2pa.C2paError as exc:  # a manifest is there but cannot be parsed: as bad as a forgery
        return CredentialReport("invalid", sidecar=sidecar if sidecar.is_file() else None, note=str(exc))


def _read(c2pa, ctx, path: Path, sidecar: Path | None = None) -> CredentialReport:
    manifest_data = None if sidecar is None else sidecar.read_bytes()
    with open(path, "rb") as stream, c2pa.Reader(media_type(path), stream, manifest_data, ctx) as reader:
        return _report(json.loads(reader.json()), sidecar)


def _report(store: dict, sidecar: Path | None = None) -> CredentialReport:
    manifest = store.get("manifests", {}).get(store.get("active_manifest"), {})
    signature = manifest.get("signature_info", {})
    codes = tuple(status.get("code", "") for status in store.get("validation_status", []))
    actions = [
        action
        for assertion in manifest.get("assertions", [])
        if assertion.get("label", "").startswith("c2pa.actions")
        for action in assertion.get("data", {}).get("actions", [])
    ]
    ai = any(str(action.get("digitalSourceType", "")).rsplit("/", 1)[-1] in _AI_SOURCE_TYPES for action in actions)
    state = store.get("validation_state")
    return CredentialReport(
        state="valid" if state in ("Valid", "Trusted") else "invalid",
        signer=signature.get("common_name"),
        issuer=signature.get("issuer"),
        ai_generated=ai,
        ingredients=tuple(ingredient.get("title", "") for ingredient in manifest.get("ingredients", [])),
        status_codes=codes,
        untrusted_signer=UNTRUSTED in codes,
        sidecar=sidecar,
    )
