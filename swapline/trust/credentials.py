"""C2PA Content Credentials: a signed manifest on every output saying it is AI-generated.

The public face of `swapline.trust.c2pa`. `sign_file` adds a manifest to a finished output
(embedded in jpg/png/webp/mp4/m4v/mov, a NAME.c2pa sidecar for mkv/webm); `read_credentials`
validates it offline. Both need the optional 'c2pa' extra (c2pa-python, cryptography); importing
this module does not: without it `sign_file` raises a one-line SwaplineError and `read_credentials`
reports state "unchecked" (never "absent", which would claim there is no manifest).
"""

from swapline.trust.c2pa._sdk import credentials_available
from swapline.trust.c2pa.reading import CredentialReport, read_credentials
from swapline.trust.c2pa.settings import CredentialSettings, default_local_ca_dir
from swapline.trust.c2pa.signing import sidecar_path, sign_file

__all__ = [
    "CredentialReport",
    "CredentialSettings",
    "credentials_available",
    "default_local_ca_dir",
    "read_credentials",
    "sidecar_path",
    "sign_file",
]
