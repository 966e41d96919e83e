"""C2PA Content Credentials on real outputs: sign, read back, tamper, user certificates, sidecars."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("c2pa")

import av  # noqa: E402
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: E402

from swapline.bench.clips import make_clip  # noqa: E402
from swapline.errors import SwaplineError  # noqa: E402
from swapline.io import read_image, read_provenance, write_image  # noqa: E402
from swapline.trust.c2pa.local_ca import CA_CERT, CA_KEY, SIGNER_CHAIN, SIGNER_KEY, local_signer  # noqa: E402
from swapline.trust.credentials import (  # noqa: E402
    CredentialSettings,
    default_local_ca_dir,
    read_credentials,
    sidecar_path,
    sign_file,
)

DATA = Path(__file__).parent / "data"
SOURCE, TARGET = DATA / "biden2.jpg", DATA / "obama.jpg"
RECORD = {"ai_generated": True, "generator": "swapline test"}


@pytest.fixture
def local(tmp_path) -> CredentialSettings:
    return CredentialSettings(local_ca_dir=tmp_path / "ca")


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """A real 1 s H.264 mp4 with a moving face (unsigned; tests copy it)."""
    return make_clip(TARGET, tmp_path_factory.mktemp("clip") / "clip.mp4", (320, 240), 10.0, 1.0, 100)


def _subject(pem: bytes, oid) -> str:
    return x509.load_pem_x509_certificates(pem)[0].subject.get_attributes_for_oid(oid)[0].value


def _frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="bgr24") for frame in container.decode(video=0)]


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def _box(data: bytes, kind: bytes) -> tuple[int, int]:
    """(offset, size) of a top-level ISO BMFF box."""
    offset = 0
    while offset + 8 <= len(data):
        size = int.from_bytes(data[offset : offset + 4], "big")
        size = int.from_bytes(data[offset + 8 : offset + 16], "big") if size == 1 else size or len(data) - offset
        if data[offset + 4 : offset + 8] == kind:
            return offset, size
        offset += size
    raise AssertionError(f"no {kind!r} box")


def _user_chain(folder: Path, name: str) -> tuple[Path, Path, Path]:
    """A CA and a P-384 signing leaf made here, independently of the code under test."""
    folder.mkdir()
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    later = now + dt.timedelta(days=30)

    def subject(cn: str) -> x509.Name:
        return x509.Name(
            [x509.NameAttribute(NameOID.COMMON_NAME, cn), x509.NameAttribute(NameOID.ORGANIZATION_NAME, name)]
        )

    def usage(sign: bool, cert_sign: bool) -> x509.KeyUsage:
        return x509.KeyUsage(sign, False, False, False, False, cert_sign, cert_sign, False, False)

    ca_key, key = ec.generate_private_key(ec.SECP384R1()), ec.generate_private_key(ec.SECP384R1())
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())

    def builder(cn: str, issuer: x509.Name, public_key, serial: int) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder(
                subject_name=subject(cn), issuer_name=issuer, public_key=public_key, serial_number=serial
            )
            .not_valid_before(now)
            .not_valid_after(later)
        )

    ca = (
        builder(f"{name} Root", subject(f"{name} Root"), ca_key.public_key(), 1)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage(False, True), critical=True)
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA384())
    )
    leaf = (
        builder(f"{name} Signer", ca.subject, key.public_key(), 2)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage(True, False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA384())
    )
    pem = serialization.Encoding.PEM
    chain, key_path, root = folder / "chain.pem", folder / "key.pem", folder / "root.pem"
    chain.write_bytes(leaf.public_bytes(pem) + ca.public_bytes(pem))
    key_path.write_bytes(  # traditional SEC1 form: sign_file re-encodes it for the SDK
        key.private_bytes(pem, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption())
    )
    root.write_bytes(ca.public_bytes(pem))
    return chain, key_path, root


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".webp"])
def test_signed_image_reads_back_valid_ai_generated_by_the_local_ca(tmp_path, local, suffix):
    out = write_image(tmp_path / f"out{suffix}", read_image(TARGET).pixels, provenance=RECORD)
    before = read_image(out).pixels
    assert read_credentials(out).state == "absent"

    assert sign_file(out, [SOURCE, TARGET], local) == out
    report = read_credentials(out)

    chain = (local.local_ca_dir / SIGNER_CHAIN).read_bytes()
    assert report.state == "valid" and report.ai_generated
    assert report.signer == _subject(chain, NameOID.COMMON_NAME)
    assert report.issuer == _subject((local.local_ca_dir / CA_CERT).read_bytes(), NameOID.ORGANIZATION_NAME)
    assert report.ingredients == ("biden2.jpg", "obama.jpg")
    assert report.untrusted_signer and report.status_codes == ("signingCredential.untrusted",)
    assert np.array_equal(read_image(out).pixels, before)  # the pixels are untouched
    assert read_provenance(out) == RECORD  # and swapline's own metadata survives
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporaries left


def test_signed_mp4_is_valid_and_decodes_to_identical_frames(tmp_path, local, clip):
    out = shutil.copy(clip, tmp_path / "swapped.mp4")
    sign_file(out, [SOURCE, clip], local)

    report = read_credentials(out)
    assert report.state == "valid" and report.ai_generated and report.sidecar is None
    assert report.ingredients == ("biden2.jpg", "clip.mp4")
    original, signed = _frames(clip), _frames(out)
    assert len(signed) == len(original) == 10
    assert all(np.array_equal(a, b) for a, b in zip(original, signed, strict=True))


@pytest.mark.parametrize("suffix", [".jpg", ".mp4"])
def test_one_changed_byte_of_media_data_reads_invalid(tmp_path, local, clip, suffix):
    out = tmp_path / f"out{suffix}"
    if suffix == ".jpg":
        write_image(out, read_image(TARGET).pixels)
    else:
        shutil.copy(clip, out)
    sign_file(out, [SOURCE], local)
    data = out.read_bytes()
    if suffix == ".jpg":
        offset = len(data) - 100  # entropy-coded scan data, far from the manifest in APP11
    else:
        start, size = _box(data, b"mdat")
        offset = start + size // 2
    _flip(out, offset)

    report = read_credentials(out)
    assert report.state == "invalid"
    assert any(code.endswith("Hash.mismatch") for code in report.status_codes), report.status_codes


def test_user_certificate_signs_and_a_trust_anchor_makes_it_trusted(tmp_path):
    chain, key, root = _user_chain(tmp_path / "newsroom", "Test Newsroom")
    out = write_image(tmp_path / "out.jpg", read_image(TARGET).pixels)
    settings = CredentialSettings(cert_chain=chain, private_key=key, local_ca_dir=tmp_path / "ca")

    sign_file(out, [SOURCE, TARGET], settings)

    report = read_credentials(out)
    assert report.state == "valid" and report.signer == "Test Newsroom Signer" and report.issuer == "Test Newsroom"
    assert report.untrusted_signer
    assert not (tmp_path / "ca").exists()  # no local CA made when the user brings a certificate
    trusted = read_credentials(out, trust_anchors=root)
    assert trusted.state == "valid" and not trusted.untrusted_signer and trusted.status_codes == ()


def test_a_key_that_does_not_match_the_chain_is_refused(tmp_path):
    chain, _, _ = _user_chain(tmp_path / "a", "A")
    _, other_key, _ = _user_chain(tmp_path / "b", "B")
    out = write_image(tmp_path / "out.jpg", read_image(TARGET).pixels)
    with pytest.raises(SwaplineError, match="does not belong"):
        sign_file(out, [], CredentialSettings(cert_chain=chain, private_key=other_key))
    with pytest.raises(SwaplineError, match="both"):
        CredentialSettings(cert_chain=chain)


def test_local_ca_is_made_once_and_reused(tmp_path, local):
    first = write_image(tmp_path / "a.jpg", read_image(TARGET).pixels)
    second = write_image(tmp_path / "b.png", read_image(SOURCE).pixels)
    names = (CA_CERT, CA_KEY, SIGNER_CHAIN, SIGNER_KEY)

    sign_file(first, [], local)
    files = {name: (local.local_ca_dir / name).read_bytes() for name in names}
    stamps = {name: (local.local_ca_dir / name).stat().st_mtime_ns for name in names}
    sign_file(second, [], local)

    assert {name: (local.local_ca_dir / name).read_bytes() for name in names} == files
    assert {name: (local.local_ca_dir / name).stat().st_mtime_ns for name in names} == stamps
    assert read_credentials(first).signer == read_credentials(second).signer
    if os.name == "posix":
        assert {(local.local_ca_dir / n).stat().st_mode & 0o777 for n in (CA_KEY, SIGNER_KEY)} == {0o600}


def test_concurrent_first_uses_share_one_ca(tmp_path):
    folder, barrier, results = tmp_path / "ca", threading.Barrier(4), []

    def first_use() -> None:
        barrier.wait()
        results.append(local_signer(folder).chain_pem)

    threads = [threading.Thread(target=first_use) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4 and len(set(results)) == 1
    assert results[0] == (folder / SIGNER_CHAIN).read_bytes()


def test_mkv_gets_a_sidecar_that_reads_back_and_binds_the_file(tmp_path, local):
    out = make_clip(TARGET, tmp_path / "swapped.mkv", (160, 120), 10.0, 0.5, 60)
    original = out.read_bytes()

    manifest = sign_file(out, [SOURCE, TARGET], local)

    assert manifest == sidecar_path(out) == tmp_path / "swapped.c2pa"
    assert out.read_bytes() == original  # the video itself is not touched
    report = read_credentials(out)
    assert report.state == "valid" and report.ai_generated and report.sidecar == manifest
    assert report.ingredients == ("biden2.jpg", "obama.jpg")
    _flip(out, len(original) // 2)
    assert read_credentials(out).state == "invalid"


def test_local_ca_folder_follows_swapline_home(monkeypatch, tmp_path):
    monkeypatch.setenv("SWAPLINE_HOME", str(tmp_path))
    assert default_local_ca_dir() == tmp_path / "c2pa"


def test_without_the_extra_signing_fails_in_one_line_and_reading_says_unchecked(tmp_path):
    image = write_image(tmp_path / "out.jpg", read_image(TARGET).pixels)
    script = f"""
import sys
sys.modules["c2pa"] = None  # as if c2pa-python were not installed
import swapline, swapline.trust.credentials as credentials
from swapline.errors import SwaplineError
print(credentials.credentials_available(), credentials.read_credentials({str(image)!r}).state)
try:
    credentials.sign_file({str(image)!r})
except SwaplineError as exc:
    print(exc)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "False unchecked",
        "C2PA signing needs the 'c2pa' extra: pip install 'swapline[c2pa]'",
    ]


def test_a_file_the_sdk_cannot_parse_fails_cleanly_and_stays_untouched(tmp_path, local):
    fake = tmp_path / "out.jpg"
    fake.write_bytes(b"not a jpeg at all")
    with pytest.raises(SwaplineError, match="cannot add Content Credentials"):
        sign_file(fake, [SOURCE], local)
    assert fake.read_bytes() == b"not a jpeg at all"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ca", "out.jpg"]  # no temporary left behind
