"""How C2PA Content Credentials are made and read; import the API from swapline.trust.credentials.

_sdk (the only import of c2pa-python), settings (plain data), local_ca (this installation's CA),
signing (sign_file), reading (read_credentials).
"""
