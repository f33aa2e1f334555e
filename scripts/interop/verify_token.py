#!/usr/bin/env python3
"""Verify a JWT exactly as vibectl 0.11.6's server does.

Usage (venv python from scripts/setup-python-peer):

  verify_token.py SECRET TOKEN [--issuer ISS]

Path taken (0.11.6 code): secret in env VIBECTL_JWT_SECRET ->
vibectl.server.jwt_auth.load_config_from_server(server_config=...) ->
JWTAuthManager.validate_token(TOKEN), the call its gRPC JWTAuthInterceptor
makes for every RPC (PyJWT decode with algorithms=[HS256] and
issuer=ISS, default "vibectl-server": "iss" must be present and equal; "exp"
is checked only when present; "iat" must not be in the future).

Prints {"valid": true, "header": {...}, "claims": {...}} and exits 0, or
{"valid": false, "error": "...", "error_type": "..."} and exits 1.
Hermetic (see _hermetic.py).
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hermetic import emit, isolate, quiet_logging  # noqa: E402

isolate()


def main() -> int:
    p = argparse.ArgumentParser(description="verify a JWT with vibectl 0.11.6's code")
    p.add_argument("secret")
    p.add_argument("token")
    p.add_argument("--issuer", default=None)
    args = p.parse_args()

    os.environ["VIBECTL_JWT_SECRET"] = args.secret

    import jwt

    from vibectl.server.jwt_auth import JWTAuthManager, load_config_from_server

    quiet_logging()
    jwt_section: dict = {}
    if args.issuer:
        jwt_section["issuer"] = args.issuer
    manager = JWTAuthManager(load_config_from_server(server_config={"jwt": jwt_section}))
    try:
        header = jwt.get_unverified_header(args.token)
    except Exception:
        header = None
    try:
        claims = manager.validate_token(args.token)
    except Exception as e:  # jwt.InvalidTokenError and friends
        emit({"valid": False, "error": str(e), "error_type": type(e).__name__, "header": header})
        return 1
    emit({"valid": True, "header": header, "claims": claims})
    return 0


if __name__ == "__main__":
    sys.exit(main())
