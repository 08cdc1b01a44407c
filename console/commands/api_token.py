"""`loadmaster api-token [--read-only] [--rotate]`: print (or replace) a token of the HTTP API."""

from __future__ import annotations

import argparse

from console.commands.options import add_config, load_config
from console.commands.runtime import api_tokens_path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "api-token",
        help="print the HTTP API's read-write token (made on first use), or the read-only one",
        description="Print a token of the HTTP API (`Authorization: Bearer TOKEN`). The tokens live in "
        "~/.loadmaster/<cluster>/api-tokens.json (mode 0600), made on first use; LOADMASTER_API_TOKEN and "
        "LOADMASTER_API_READ_TOKEN replace them when set.",
    )
    add_config(p)
    p.add_argument("--read-only", action="store_true", help="the read-only token instead of the read-write one")
    p.add_argument("--rotate", action="store_true", help="replace the token (the old one stops working at once)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from core.api.tokens import Access, TokenStore

    store = TokenStore(api_tokens_path(load_config(args)))
    access = Access.READ_ONLY if args.read_only else Access.READ_WRITE
    token = store.rotate(access) if args.rotate else store.token(access)
    print(token.secret)
    return 0
