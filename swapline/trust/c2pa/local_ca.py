"""This installation's own signing certificate: a local CA and a leaf it issued, made on first use.

A lone self-signed certificate is refused by C2PA validators, so there are two: a CA (keyCertSign,
its own SubjectKeyIdentifier) and a signing leaf (CA=false, digitalSignature, emailProtection, SKI,
AuthorityKeyIdentifier -> CA), both ES256 / P-256. They prove that a manifest is intact and was made
with this installation's key, not who the user is: verifiers report the signer as untrusted.

Files (keys 0600, folder 0700): ca.pem, ca.key, signer.pem (leaf + CA), signer.key. Each is
written to a temporary sibling and renamed; a lock (.lock) makes concurrent first uses, in threads or
processes, share one CA instead of racing to make two.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from swapline.errors import SwaplineError
from swapline.io.atomic import atomic_output

log = logging.getLogger("swapline.trust")

CA_CERT, CA_KEY = "ca.pem", "ca.key"
SIGNER_CHAIN, SIGNER_KEY = "signer.pem", "signer.key"
ORGANIZATION = "swapline local installation (unverified)"
CA_NAME = "swapline local CA"
SIGNER_NAME = "swapline local signer"
CA_YEARS, SIGNER_YEARS = 20, 10
RENEW_BEFORE = dt.timedelta(days=30)  # a leaf this close to expiry is re-issued by the same CA


@dataclass(frozen=True)
class SigningMaterial:
    """What the SDK signs with: PEM chain (leaf first) and unencrypted PKCS#8 PEM key."""

    chain_pem: bytes
    key_pem: bytes


def local_signer(folder: Path) -> SigningMaterial:
    """The local signing leaf in `folder`, made (with its CA) on first use, re-issued near expiry."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    with FileLock(str(folder / ".lock"), timeout=60):
        ca = _load_or_make_ca(folder)
        chain, key = folder / SIGNER_CHAIN, folder / SIGNER_KEY
        if _needs_new_leaf(chain, key, ca[0]):
            _issue_leaf(folder, *ca)
        return SigningMaterial(chain.read_bytes(), key.read_bytes())


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _load_or_make_ca(folder: Path):
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert_path, key_path = folder / CA_CERT, folder / CA_KEY
    if cert_path.is_file() and key_path.is_file():
        try:
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        except (ValueError, TypeError) as exc:
            raise SwaplineError(f"{folder}: the local C2PA CA is damaged ({exc}); delete the folder") from exc
        if key_matches(cert, key) and cert.not_valid_after_utc - _now() > RENEW_BEFORE:
            return cert, key
        log.info("local C2PA CA in %s expires soon or lost its key: making a new one", folder)
    cert, key = _make_ca()
    _write(key_path, pkcs8_pem(key), private=True)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    log.info("made a local C2PA CA in %s (its certificate is not on any trust list)", folder)
    return cert, key


def _needs_new_leaf(chain: Path, key: Path, ca) -> bool:
    """Missing, unreadable, not from this CA, near expiry, or not matching its key (a crash
    between the two renames): any of these gets a fresh leaf."""
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization

    try:
        leaf = x509.load_pem_x509_certificates(chain.read_bytes())[0]
        private = serialization.load_pem_private_key(key.read_bytes(), password=None)
        leaf.verify_directly_issued_by(ca)
    except (OSError, ValueError, TypeError, InvalidSignature):
        return True
    return leaf.not_valid_after_utc - _now() <= RENEW_BEFORE or not key_matches(leaf, private)


def key_matches(cert, private_key) -> bool:
    """True when `private_key` belongs to `cert` (two renames are not one atomic step)."""
    from cryptography.hazmat.primitives import serialization

    raw = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return cert.public_key().public_bytes(*raw) == private_key.public_key().public_bytes(*raw)


def _name(common_name: str):
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
        ]
    )


def _key_usage(digital_signature: bool, key_cert_sign: bool):
    from cryptography import x509

    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=key_cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _make_ca():
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    start = _now() - dt.timedelta(hours=1)  # tolerate a verifier's clock that runs a little behind
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(CA_NAME))
        .issuer_name(_name(CA_NAME))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=365 * CA_YEARS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(digital_signature=False, key_cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _issue_leaf(folder: Path, ca, ca_key) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID

    key = ec.generate_private_key(ec.SECP256R1())
    start = _now() - dt.timedelta(hours=1)
    ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name(SIGNER_NAME))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(min(start + dt.timedelta(days=365 * SIGNER_YEARS), ca.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=True, key_cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    _write(folder / SIGNER_KEY, pkcs8_pem(key), private=True)
    _write(folder / SIGNER_CHAIN, leaf.public_bytes(pem) + ca.public_bytes(pem))


def pkcs8_pem(key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write(path: Path, data: bytes, private: bool = False) -> None:
    with atomic_output(path) as tmp:
        if private:
            os.chmod(tmp, 0o600)  # before the key is in it
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
