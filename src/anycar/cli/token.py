"""`anycar token mint --scope SCOPE`: development tokens for the hub (KUKSA-style scopes).

The key pair lives in ``--keys DIR`` (``jwt.key``, ``jwt.key.pub``) and is created on first
use; point the hub's ``tokens.public_key`` at ``jwt.key.pub``. Not for production: a real
deployment gets its tokens from an authorization server.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from anycar.cli.output import errors


def register(sub: Any) -> None:
    group = sub.add_parser("token", help="development access tokens (JWT with KUKSA scopes)")
    cmds = group.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    mint = cmds.add_parser("mint", help="create a key pair if needed and print a signed token")
    mint.add_argument(
        "--scope",
        required=True,
        help="space-separated scopes, e.g. 'read actuate:Vehicle.Cabin.* provide:Vehicle.Speed'",
    )
    mint.add_argument(
        "--keys", default=".anycar-keys", help="folder of jwt.key / jwt.key.pub (default .anycar-keys)"
    )
    mint.add_argument("--algorithm", choices=["RS256", "ES256"], default="RS256", help="for a new key pair")
    mint.add_argument("--subject", default="anycar-dev", help="the 'sub' claim")
    mint.add_argument("--ttl", type=float, default=3600.0, help="seconds until the token expires")
    mint.add_argument("--audience", help="the 'aud' claim (the hub checks it when configured)")
    mint.add_argument("--issuer", help="the 'iss' claim")
    mint.set_defaults(func=mint_token)


def mint_token(args: argparse.Namespace) -> int:
    from anycar.api.auth import ensure_keypair, mint

    private, public = ensure_keypair(args.keys, args.algorithm)
    token = mint(
        private.read_bytes(),
        args.scope,
        subject=args.subject,
        ttl_s=args.ttl,
        audience=args.audience,
        issuer=args.issuer,
    )
    sys.stdout.write(token + "\n")
    errors.print(
        f"signed with {private}; configure the hub with tokens.public_key: {public}", highlight=False
    )
    return 0
