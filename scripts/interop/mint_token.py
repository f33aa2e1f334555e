#!/usr/bin/env python3
"""Mint a JWT exactly as vibectl 0.11.6's `vibectl-server generate-token` does.

Usage (venv python from scripts/setup-python-peer):

  mint_token.py SECRET SUB [--expires-in 30d] [--issuer ISS] [--json]
  mint_token.py SECRET SUB --no-exp [--json]

Path taken (0.11.6 code, not a re-implementation): the secret goes in env
VIBECTL_JWT_SECRET (first in 0.11.6's lookup order), then
vibectl.server.jwt_auth.load_config_with_generation(server_config=...) builds
the JWTConfig (issuer from --issuer via the config's jwt.issuer, default
"vibectl-server"; algorithm HS256) and JWTAuthManager.generate_token(SUB,
expiration_days) signs it. --expires-in is parsed by 0.11.6's
parse_duration_to_days ("30d", "6m" = 180 days, "1y" = 365 days, bare
number = days; "-1d" gives an already expired token). Default: 1y, the
generate-token CLI default.

--no-exp is NOT something 0.11.6 can mint: it signs the same header and
claims minus "exp" with PyJWT directly (for tests of the no-exp policy).

Prints the token alone on one line, or with --json
{"token", "header", "claims"} (decoded, unverified). Hermetic: HOME and the
config dirs point at a temp dir (see _hermetic.py), so no config is read or
written. Exit 0 on success, 1 on error (message on stderr).
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hermetic import emit, isolate, quiet_logging  # noqa: E402

isolate()


def main() -> int:
    p = argparse.ArgumentParser(description="mint a JWT with vibectl 0.11.6's code")
    p.add_argument("secret")
    p.add_argument("sub")
    p.add_argument("--expires-in", default="1y")
    p.add_argument("--issuer", default=None)
    p.add_argument("--no-exp", action="store_true")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()

    os.environ["VIBECTL_JWT_SECRET"] = args.secret

    import jwt

    from vibectl.config_utils import parse_duration_to_days
    from vibectl.server.jwt_auth import JWTAuthManager, load_config_with_generation

    quiet_logging()
    jwt_section: dict = {}
    if args.issuer:
        jwt_section["issuer"] = args.issuer
    config = load_config_with_generation(
        server_config={"jwt": jwt_section}, persist_generated_key=False
    )
    if config.secret_key != args.secret:
        print("error: 0.11.6 did not pick up the secret from VIBECTL_JWT_SECRET", file=sys.stderr)
        return 1

    try:
        days = parse_duration_to_days(args.expires_in)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1

    manager = JWTAuthManager(config)
    token = manager.generate_token(args.sub, expiration_days=days)
    if args.no_exp:
        claims = jwt.decode(token, options={"verify_signature": False})
        claims.pop("exp", None)
        token = jwt.encode(claims, config.secret_key, algorithm=config.algorithm)

    if args.json:
        emit(
            {
                "token": token,
                "header": jwt.get_unverified_header(token),
                "claims": jwt.decode(token, options={"verify_signature": False}),
                "expiration_days": None if args.no_exp else days,
            }
        )
    else:
        print(token)
    return 0


if __name__ == "__main__":
    sys.exit(main())
