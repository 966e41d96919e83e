"""Sign an output file with a C2PA manifest: created by swapline, trained algorithmic media.

Images (jpg, png, webp) and ISO BMFF video (mp4, m4v, mov) get the manifest inside the file: a
signed copy is written beside it and renamed over it, so the name never holds a half-signed file.
Types the SDK cannot embed into (mkv, webm: c2pa-python 0.38) get a sidecar manifest store,
NAME.c2pa beside the file (the C2PA sidecar naming), whose hash covers every byte of the file.

The manifest has one action, `c2pa.created` with digitalSourceType trainedAlgorithmicMedia and
swapline as software agent; the source face photo and the target image or video are ingredients
with relationship `inputTo` (a `c2pa.created` manifest may not have a `parentOf` ingredient).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from swapline import __version__
from swapline.errors import SwaplineError
from swapline.io.atomic import atomic_output
from swapline.trust.c2pa._sdk import context, embeddable, media_type, require_sdk
from swapline.trust.c2pa.local_ca import SigningMaterial, key_matches, local_signer, pkcs8_pem
from swapline.trust.c2pa.settings import TRAINED_ALGORITHMIC_MEDIA, CredentialSettings, default_local_ca_dir

SIDECAR_SUFFIX = ".c2pa"


def sidecar_path(path: Path | str) -> Path:
    """Where the sidecar manifest store of `path` goes: same name, extension .c2pa."""
    return Path(path).with_suffix(SIDECAR_SUFFIX)


def sign_file(
    path: Path | str,
    ingredients: Sequence[Path | str] = (),
    settings: CredentialSettings | None = None,
) -> Path:
    """Add Content Credentials to the finished output `path`; return where the manifest is
    (`path` itself, or its sidecar). `ingredients`: the source face photo, then the target."""
    c2pa = require_sdk()
    path = Path(path)
    settings = settings or CredentialSettings()
    if not path.is_file():
        raise SwaplineError(f"{path}: no such file to sign")
    material = _material(settings)
    mime = media_type(path)
    try:
        alg = _algorithm(c2pa, material.key_pem)
        info = c2pa.C2paSignerInfo(alg, material.chain_pem, material.key_pem, settings.tsa_url)
        with (
            c2pa.Signer.from_info(info) as signer,
            c2pa.Builder(_manifest(path.name, len(ingredients)), context(c2pa, settings.thumbnails)) as builder,
        ):
            _add_ingredients(builder, [Path(p) for p in ingredients])
            if embeddable(c2pa, mime):
                return _embed(builder, signer, mime, path)
            return _sidecar(builder, signer, mime, path)
    except c2pa.C2paError as exc:
        raise SwaplineError(f"{path}: cannot add Content Credentials ({exc})") from exc
    except OSError as exc:
        raise SwaplineError(f"{path}: cannot add Content Credentials ({exc.strerror or exc})") from exc


def _manifest(title: str, ingredient_count: int) -> dict:
    agent = {"name": "swapline", "version": __version__}
    action: dict = {
        "action": "c2pa.created",
        "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA,
        "softwareAgent": agent,
        "description": "Face replaced by swapline's face-swap models",
    }
    if ingredient_count:
        action["parameters"] = {"ingredientIds": [_label(i) for i in range(ingredient_count)]}
    return {
        "claim_generator_info": [agent],
        "title": title,
        "assertions": [{"label": "c2pa.actions.v2", "data": {"actions": [action]}}],
    }


def _label(index: int) -> str:
    return f"swapline-input-{index}"


def _add_ingredients(builder, ingredients: list[Path]) -> None:
    for index, ingredient in enumerate(ingredients):
        definition = {"title": ingredient.name, "relationship": "inputTo", "label": _label(index)}
        try:
            with open(ingredient, "rb") as stream:
                builder.add_ingredient(definition, media_type(ingredient), stream)
        except FileNotFoundError as exc:
            raise SwaplineError(f"{ingredient}: ingredient not found") from exc


def _embed(builder, signer, mime: str, path: Path) -> Path:
    with atomic_output(path) as tmp, open(path, "rb") as source, open(tmp, "w+b") as dest:
        builder.sign(signer, mime, source, dest)
    return path


def _sidecar(builder, signer, mime: str, path: Path) -> Path:
    # The SDK copies the asset to `dest` while hashing it; a sidecar needs only the manifest.
    builder.set_no_embed()
    with open(path, "rb") as source, open(os.devnull, "w+b") as dest:
        manifest = builder.sign(signer, mime, source, dest)
    out = sidecar_path(path)
    with atomic_output(out) as tmp:
        tmp.write_bytes(manifest)
    return out


def _material(settings: CredentialSettings) -> SigningMaterial:
    if not settings.user_certificate:
        folder = settings.local_ca_dir or default_local_ca_dir()
        try:
            return local_signer(folder)
        except OSError as exc:
            raise SwaplineError(f"{folder}: cannot keep the local C2PA certificate ({exc.strerror or exc})") from exc
    return _user_material(settings.cert_chain, settings.private_key)


def _user_material(chain_path: Path, key_path: Path) -> SigningMaterial:
    """The user's PEM chain and key, checked to belong together; the key re-encoded as PKCS#8."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        chain = chain_path.read_bytes()
        certificates = x509.load_pem_x509_certificates(chain)
    except (OSError, ValueError) as exc:
        raise SwaplineError(f"{chain_path}: not a readable PEM certificate chain ({exc})") from exc
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except TypeError as exc:  # a password-protected key
        raise SwaplineError(f"{key_path}: the private key is encrypted; C2PA signing needs it unencrypted") from exc
    except (OSError, ValueError) as exc:
        raise SwaplineError(f"{key_path}: not a readable PEM private key ({exc})") from exc
    if not key_matches(certificates[0], key):
        raise SwaplineError(f"{key_path}: this key does not belong to the first certificate in {chain_path}")
    return SigningMaterial(chain, pkcs8_pem(key))


def _algorithm(c2pa, key_pem: bytes):
    """The C2PA signing algorithm that fits the key (ES256 for the local P-256 key)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    key = serialization.load_pem_private_key(key_pem, password=None)
    algs = c2pa.C2paSigningAlg
    if isinstance(key, ec.EllipticCurvePrivateKey):
        by_curve = {"secp256r1": algs.ES256, "secp384r1": algs.ES384, "secp521r1": algs.ES512}
        if key.curve.name in by_curve:
            return by_curve[key.curve.name]
    elif isinstance(key, rsa.RSAPrivateKey):
        return algs.PS256
    elif isinstance(key, ed25519.Ed25519PrivateKey):
        return algs.ED25519
    raise SwaplineError(f"C2PA signing does not support this key type ({type(key).__name__})")
