"""`sentinel console ...`: accounts and tokens on the console's ops DB, and a console serving a store alone.

Passwords come from a file (--password-file), from stdin when it is not a terminal (`... < secret`), or
from a prompt; never from the command line, where `ps` and shell history would keep them.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

from rules.durations import parse_duration
from sentinel.console.ops_db import ROLES, OpsDB

log = logging.getLogger(__name__)
DEFAULT_OPS_DB = os.environ.get("SENTINEL_CONSOLE_OPS_DB", "sentinel-console.sqlite")


def _host_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def read_password(args: argparse.Namespace) -> str:
    if args.password_file:
        lines = Path(args.password_file).read_text(encoding="utf-8").splitlines()
        return lines[0] if lines else ""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise ValueError("the passwords differ")
    return first


def _ops(args: argparse.Namespace) -> OpsDB:
    return OpsDB(args.ops_db)


def cmd_user_add(args: argparse.Namespace) -> int:
    ops = _ops(args)
    user = ops.add_user(args.name, args.role, read_password(args))
    ops.audit(_host_actor(), "host", "user.add", f"user:{user.username}", {"role": user.role})
    print(f"user {user.username} added with role {user.role}")
    return 0


def cmd_user_list(args: argparse.Namespace) -> int:
    for u in _ops(args).users():
        print(f"{u.username:24s} {u.role:9s}{'  (disabled)' if u.disabled else ''}")
    return 0


def cmd_user_passwd(args: argparse.Namespace) -> int:
    ops = _ops(args)
    ops.set_password(args.name, read_password(args))
    ops.audit(_host_actor(), "host", "user.passwd", f"user:{args.name}", {})
    print(f"password of {args.name} changed")
    return 0


def cmd_user_role(args: argparse.Namespace) -> int:
    ops = _ops(args)
    ops.set_role(args.name, args.role)
    ops.audit(_host_actor(), "host", "user.role", f"user:{args.name}", {"role": args.role})
    print(f"{args.name} is now {args.role}")
    return 0


def cmd_user_disable(args: argparse.Namespace) -> int:
    ops = _ops(args)
    revoked = ops.set_disabled(args.name, not args.enable)
    action = "user.enable" if args.enable else "user.disable"
    ops.audit(_host_actor(), "host", action, f"user:{args.name}", {"tokens_revoked": revoked})
    print(f"{args.name} {'enabled' if args.enable else f'disabled ({revoked} token(s) revoked)'}")
    return 0


def cmd_token_add(args: argparse.Namespace) -> int:
    ops = _ops(args)
    user = ops.user(args.user)
    if user is None:
        raise KeyError(args.user)
    plain, info = ops.issue_token(user.username, args.role or user.role, "api", args.name, parse_duration(args.ttl))
    ops.audit(_host_actor(), "host", "token.create", f"token:{info.id}",
              {"user": info.username, "name": info.name, "role": info.role})
    print(f"token {info.id} for {info.username} ({info.role}); shown once, keep it secret:", file=sys.stderr)
    print(plain)
    return 0


def cmd_token_list(args: argparse.Namespace) -> int:
    from sentinel.readings import iso

    for t in _ops(args).tokens(args.user):
        print(f"{t.id}  {t.username:20s} {t.role:9s} {t.kind:7s} {t.name:20s} expires {iso(t.expires_ns)}")
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    ops = _ops(args)
    if not ops.revoke_token(args.id):
        print(f"error: no live token {args.id}", file=sys.stderr)
        return 1
    ops.audit(_host_actor(), "host", "token.revoke", f"token:{args.id}", {})
    print(f"token {args.id} revoked")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """The console alone over a store (the processor elsewhere): read, silence, manage rules; acknowledge
    and resolve answer 503, since only the processor's thread may change alerts."""
    import uvicorn

    from sentinel.catalog import load_catalog
    from sentinel.console.app import create_app
    from sentinel.console.config import ConsoleConfig
    from sentinel.console.rules_manager import RulesManager
    from sentinel.console.server import parse_listen

    catalog = load_catalog(args.catalog)
    host, port = parse_listen(args.listen)
    cfg = ConsoleConfig(ops_db=Path(args.ops_db), rule_paths=tuple(Path(p) for p in args.rules or ()),
                        cookie_secure=args.secure_cookie)
    ops = OpsDB(cfg.ops_db)
    rules = None
    if args.rules_file:
        rules = RulesManager(args.rules_file, ops, catalog, args.db, other_paths=args.rules or ())
    app = create_app(cfg, store_path=args.db, catalog=catalog, actions=None, rules=rules)
    if not ops.users():
        log.warning("no console users yet: `sentinel console user add NAME --role operator --ops-db %s`", args.ops_db)
    log.info("console on http://%s:%d over %s (read-only: acknowledge/resolve need `sentinel run --console`)",
             host, port, args.db)
    verbose = getattr(args, "verbose", False)  # `sentinel -v`
    uvicorn.run(app, host=host, port=port, access_log=verbose, log_level="info" if verbose else "warning",
                timeout_graceful_shutdown=2)
    return 0


Command = Callable[[argparse.Namespace], int]


def _run(fn: Command) -> Command:
    """Turn the expected failures into one line and exit status 2, as the other commands do."""

    def wrapped(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except KeyError as exc:
            print(f"error: no user {exc.args[0]!r}", file=sys.stderr)
        except (ValueError, PermissionError, OSError) as exc:
            print(f"error: {exc}", file=sys.stderr)
        return 2

    return wrapped


def add_console_commands(sub: argparse._SubParsersAction) -> None:
    """Register `sentinel console {user,token,serve}` on the top-level subparsers."""
    con = sub.add_parser("console", help="operator console: accounts, tokens, serve over a store")
    csub = con.add_subparsers(dest="console_cmd", required=True)

    def ops_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument("--ops-db", default=DEFAULT_OPS_DB,
                       help="the console's own SQLite file (default $SENTINEL_CONSOLE_OPS_DB or %(default)s)")

    def password_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument("--password-file", help="read the password from this file's first line "
                       "(else stdin when it is not a terminal, else a prompt)")

    user = csub.add_parser("user", help="console accounts").add_subparsers(dest="user_cmd", required=True)
    add = user.add_parser("add", help="add an account")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=ROLES)
    password_arg(add)
    ops_arg(add)
    add.set_defaults(func=_run(cmd_user_add))
    ls = user.add_parser("list", help="list accounts")
    ops_arg(ls)
    ls.set_defaults(func=_run(cmd_user_list))
    pw = user.add_parser("passwd", help="set an account's password")
    pw.add_argument("name")
    password_arg(pw)
    ops_arg(pw)
    pw.set_defaults(func=_run(cmd_user_passwd))
    role = user.add_parser("role", help="change an account's role")
    role.add_argument("name")
    role.add_argument("role", choices=ROLES)
    ops_arg(role)
    role.set_defaults(func=_run(cmd_user_role))
    dis = user.add_parser("disable", help="disable an account and revoke its tokens (--enable to undo)")
    dis.add_argument("name")
    dis.add_argument("--enable", action="store_true")
    ops_arg(dis)
    dis.set_defaults(func=_run(cmd_user_disable))

    token = csub.add_parser("token", help="API tokens for machines").add_subparsers(dest="token_cmd", required=True)
    tadd = token.add_parser("add", help="issue a token (printed once on stdout)")
    tadd.add_argument("--user", required=True)
    tadd.add_argument("--name", required=True, help="what uses it, e.g. wallboard-3")
    tadd.add_argument("--role", choices=ROLES, help="at most the user's role (default: the user's)")
    tadd.add_argument("--ttl", default="90d", help="lifetime, e.g. 30d, 12h (default %(default)s)")
    ops_arg(tadd)
    tadd.set_defaults(func=_run(cmd_token_add))
    tls = token.add_parser("list", help="live tokens (never their secrets)")
    tls.add_argument("--user")
    ops_arg(tls)
    tls.set_defaults(func=_run(cmd_token_list))
    trv = token.add_parser("revoke", help="revoke a token by id")
    trv.add_argument("id")
    ops_arg(trv)
    trv.set_defaults(func=_run(cmd_token_revoke))

    serve = csub.add_parser("serve", help="serve the console over a store (read-only for alerts)")
    serve.add_argument("--db", required=True, help="the processor's SQLite store")
    serve.add_argument("--catalog", required=True)
    serve.add_argument("--listen", default="127.0.0.1:8080", help="HOST:PORT (default %(default)s)")
    serve.add_argument("--rules-file", help="the processor's rules file: lets engineers change it from the console")
    serve.add_argument("--rules", nargs="+", help="further rule files the processor loads (read only)")
    serve.add_argument("--secure-cookie", action="store_true", help="mark the session cookie Secure (behind TLS)")
    ops_arg(serve)
    serve.set_defaults(func=_run(cmd_serve))
