"""``pairsync``: the headless front end. Scripts and the GUI rely on these names.

Exit codes: 0 ok · 1 some contacts failed · 2 usage or configuration error · 3 authorization
needed · 4 stopped by the mass-change guard. Every error is one clear line on stderr; the
traceback of an unexpected error goes to the log file, never to the terminal.
"""

from __future__ import annotations

import argparse
import errno
import gc
import json
import logging
import logging.handlers
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from app.errors import AuthExpired, ConfigError, PairsyncError
from app.printable import has_control_characters, shown
from app.sign_in import plain

if TYPE_CHECKING:
    from app.service import (
        AccountInfo,
        AppEntry,
        ConnectionFields,
        MappingInfo,
        RuleInfo,
        Service,
    )

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_AUTH, EXIT_GUARD, EXIT_UNAVAILABLE = 0, 1, 2, 3, 4, 5

log = logging.getLogger("pairsync")


class UsageError(Exception):
    pass


class Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")


def _key_value(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    return key.strip(), value


def _on_off(text: str) -> bool:
    lowered = text.lower()
    if lowered not in ("on", "off"):
        raise argparse.ArgumentTypeError(f"expected on or off, got {text!r}")
    return lowered == "on"


class _VersionAction(argparse.Action):
    """``--version``, with the version read only when asked for (``app.__version__``)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(
            option_strings,
            dest=argparse.SUPPRESS,
            default=argparse.SUPPRESS,
            nargs=0,
            help="show program's version number and exit",
        )

    def __call__(self, parser: argparse.ArgumentParser, *_args: Any, **_kwargs: Any) -> None:
        from app import __version__

        print(f"pairsync {__version__}")  # on stdout, as argparse's own version action
        parser.exit()


def build_parser() -> Parser:
    p = Parser(prog="pairsync", description="Keep the contacts of two apps in sync.")
    p.add_argument("--version", action=_VersionAction)
    p.add_argument("--home", metavar="DIR", help="keep all of Pairsync's files in DIR")
    p.add_argument(
        "--allow-insecure-keyring",
        action="store_true",
        help="accept a plaintext keyring backend (secrets readable by anyone with your files)",
    )
    p.add_argument(
        "--background",
        action="store_true",
        help="desktop app: start in the tray without opening the window (start at login)",
    )
    sub = p.add_subparsers(dest="command", parser_class=Parser)

    acc = sub.add_parser("account", help="connected accounts").add_subparsers(
        dest="action", required=True, parser_class=Parser
    )
    add = acc.add_parser("add", help="add an account")
    add.add_argument("kind", help="the app (pairsync account kinds lists them and their settings)")
    add.add_argument("name")
    add.add_argument(
        "--set", dest="settings", action="append", type=_key_value, default=[], metavar="KEY=VALUE"
    )
    add.add_argument(
        "--secret-env",
        metavar="VAR",
        help="read the password or token from this environment variable",
    )
    add.add_argument(
        "--no-browser",
        action="store_true",
        help="apps signed in through the browser (google): print the sign-in address "
        "instead of opening a browser, then wait for the sign-in",
    )
    add.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="how long to wait for the browser sign-in (default 300)",
    )
    kinds = acc.add_parser("kinds", help="the apps an account can be, and what adding one needs")
    kinds.add_argument("--json", action="store_true")
    lst = acc.add_parser("list", help="list accounts")
    lst.add_argument("--json", action="store_true")
    rem = acc.add_parser("remove", help="forget an account (its app's data is not touched)")
    rem.add_argument("name")
    rea = acc.add_parser(
        "reauth",
        help="sign in again: a new password or token, or moved settings (connections are kept)",
    )
    rea.add_argument("name")
    rea.add_argument(
        "--set", dest="settings", action="append", type=_key_value, default=[], metavar="KEY=VALUE"
    )
    rea.add_argument("--secret-env", metavar="VAR", help="the new password or token's variable")
    rea.add_argument(
        "--no-browser",
        action="store_true",
        help="apps signed in through the browser (google): print the address instead",
    )
    rea.add_argument("--timeout", type=float, default=None, metavar="SECONDS")

    con = sub.add_parser("connection", help="connections between two accounts").add_subparsers(
        dest="action", required=True, parser_class=Parser
    )
    cre = con.add_parser("create", help="connect two accounts")
    cre.add_argument("name")
    cre.add_argument("--a", required=True, metavar="ACCOUNT")
    cre.add_argument("--b", required=True, metavar="ACCOUNT")
    cre.add_argument("--direction", choices=["two-way", "a-to-b", "b-to-a"], default="two-way")
    cre.add_argument("--winner", choices=["a", "b"], default="a")
    cre.add_argument("--avoid-duplicates", type=_on_off, default=True, metavar="on|off")
    cre.add_argument("--unsubscribes", type=_on_off, default=False, metavar="on|off")
    cre.add_argument(
        "--unsubscribe-opt-out",
        type=_on_off,
        default=False,
        metavar="on|off",
        help="with --unsubscribes: also set the other app's own opt-out, where it has one",
    )
    cre.add_argument("--trash", type=_on_off, default=False, metavar="on|off")
    cre.add_argument("--propagate-clears", type=_on_off, default=True, metavar="on|off")
    cre.add_argument(
        "--guard-threshold",
        type=int,
        default=500,
        metavar="N",
        help="stop a run that would write more than N contacts (not the first run)",
    )
    cre.add_argument(
        "--phone-region",
        default="",
        metavar="CC",
        help="country for phone numbers written without +, e.g. GB",
    )
    st = con.add_parser("set", help="change a connection's settings (never touches contacts)")
    st.add_argument("name")
    st.add_argument("--direction", choices=["two-way", "a-to-b", "b-to-a"])
    st.add_argument("--winner", choices=["a", "b"])
    for flag in (
        "avoid-duplicates",
        "unsubscribes",
        "unsubscribe-opt-out",
        "trash",
        "propagate-clears",
    ):
        st.add_argument(f"--{flag}", type=_on_off, metavar="on|off")
    st.add_argument("--guard-threshold", type=int, metavar="N")
    st.add_argument("--phone-region", metavar="CC")
    st.add_argument(
        "--interval",
        type=int,
        metavar="MIN",
        help="while the desktop app runs, sync every MIN minutes (1-60)",
    )
    rl = con.add_parser("rules", help="list a connection's IF/THEN rules and what they match")
    rl.add_argument("name")
    rl.add_argument("--json", action="store_true")
    rule = con.add_parser("rule", help="add, remove, move or switch IF/THEN rules")
    rsub = rule.add_subparsers(dest="rule_action", required=True, parser_class=Parser)
    radd = rsub.add_parser(
        "add",
        help="add a rule",
        description="IF a contact of the source app passes the filters THEN it is created or "
        "updated in the other app, and the actions are applied there.",
    )
    radd.add_argument("name")
    radd.add_argument("--source", choices=["a", "b"], required=True)
    join = radd.add_mutually_exclusive_group()
    join.add_argument("--all", dest="join", action="store_const", const="all", default="all")
    join.add_argument("--any", dest="join", action="store_const", const="any")
    radd.add_argument(
        "--if",
        dest="filters",
        action="append",
        default=[],
        metavar='"FIELD OP VALUE"',
        help="e.g. 'organization contains Acme', 'birthday > 1990-01-01', 'notes is empty', "
        "'segment has Customers', 'subscription is unsubscribed'",
    )
    radd.add_argument("--if-segment", action="append", default=[], metavar="NAME")
    radd.add_argument("--if-not-segment", action="append", default=[], metavar="NAME")
    radd.add_argument(
        "--only-existing",
        action="store_true",
        help="update contacts that already exist in the other app; never create",
    )
    radd.add_argument("--then-add-segment", action="append", default=[], metavar="NAME")
    radd.add_argument("--then-remove-segment", action="append", default=[], metavar="NAME")
    radd.add_argument("--then-set", action="append", default=[], metavar="FIELD=VALUE")
    radd.add_argument("--undo", type=_on_off, default=True, metavar="on|off")
    radd.add_argument("--other-way", type=_on_off, default=False, metavar="on|off")
    radd.add_argument("--position", type=int, metavar="N", help="1 = top (default: last)")
    rrem = rsub.add_parser("remove", help="remove a rule (contacts are never touched)")
    rrem.add_argument("name")
    rrem.add_argument("rule", help="its number in the list, or its id")
    rmov = rsub.add_parser("move", help="move a rule (the higher rule wins a contradiction)")
    rmov.add_argument("name")
    rmov.add_argument("rule")
    rmov.add_argument("position", type=int)
    for verb in ("enable", "disable"):
        rv = rsub.add_parser(verb, help=f"{verb} a rule")
        rv.add_argument("name")
        rv.add_argument("rule")
    rset = rsub.add_parser("set", help="flip a rule's Undo or Other-way-around toggle")
    rset.add_argument("name")
    rset.add_argument("rule")
    rset.add_argument("--undo", type=_on_off, metavar="on|off")
    rset.add_argument("--other-way", type=_on_off, metavar="on|off")
    cl = con.add_parser("list", help="list connections")
    cl.add_argument("--json", action="store_true")
    show = con.add_parser("show", help="show one connection")
    show.add_argument("name")
    show.add_argument("--json", action="store_true")
    ren = con.add_parser("rename", help="give a connection another name (nothing else changes)")
    ren.add_argument("name")
    ren.add_argument("new_name")
    exp = con.add_parser("export", help="print a connection as JSON")
    exp.add_argument("name")
    imp = con.add_parser("import", help="create a connection from exported JSON")
    imp.add_argument("file", help="file name, or - for standard input")
    imp.add_argument("--name", help="give the imported connection another name")
    maps = con.add_parser("mappings", help="list a connection's field mappings")
    maps.add_argument("name")
    maps.add_argument("--json", action="store_true")
    flds = con.add_parser("fields", help="list both apps' fields (keys for custom mappings)")
    flds.add_argument("name")
    flds.add_argument("--json", action="store_true")
    mp = con.add_parser("map", help="add a custom mapping between two fields")
    mp.add_argument("name")
    mp.add_argument("--a-field", required=True, metavar="KEY")
    mp.add_argument("--b-field", required=True, metavar="KEY")
    mp.add_argument("--direction", choices=["two-way", "a-to-b", "b-to-a"], default="two-way")
    mp.add_argument(
        "--values",
        default="",
        metavar="A=B,...",
        help="value table from A to B; an empty target (Bronze=) leaves B unchanged",
    )
    mp.add_argument(
        "--values-back",
        default="",
        metavar="B=A,...",
        help="value table from B to A (default: the reverse of --values)",
    )
    mp.add_argument(
        "--pick-label",
        default="",
        metavar="LABEL",
        help="list → single field: hold the value with this label (e.g. mobile)",
    )
    tg = con.add_parser("toggle", help="turn a mapping on or off")
    tg.add_argument("name")
    tg.add_argument("mapping")
    tg.add_argument("state", type=_on_off, metavar="on|off")
    um = con.add_parser("unmap", help="remove a custom mapping")
    um.add_argument("name")
    um.add_argument("mapping")
    for verb, text in (
        ("pause", "stop syncing"),
        ("resume", "sync again"),
        ("delete", "forget the connection (never touches the apps' contacts)"),
    ):
        one = con.add_parser(verb, help=text)
        one.add_argument("name")

    syn = sub.add_parser("sync", help="sync connections now")
    syn.add_argument("names", nargs="*", metavar="NAME")
    syn.add_argument("--dry-run", action="store_true", help="show what would change, write nothing")
    syn.add_argument("--yes", action="store_true", help="go past the mass-change guard")
    syn.add_argument("--json", action="store_true")

    hea = sub.add_parser(
        "health",
        help="what synced, what did not, and why; retry or ignore failed contacts",
        description="Without an action: the report. `retry ID…` (or `retry all`) makes failed "
        "contacts due at the next run; `ignore ID…` stops listing and retrying them until the "
        "contact changes; `unignore ID…` undoes that. IDs are the #numbers of the Failed list.",
    )
    hea.add_argument("name")
    hea.add_argument("action", nargs="?", choices=["retry", "ignore", "unignore"])
    hea.add_argument("ids", nargs="*", metavar="ID")
    hea.add_argument("--json", action="store_true")

    cfl = sub.add_parser(
        "conflicts",
        help="fields both apps changed (last 30 days); use the other value of one",
        description="Without an action: the conflicts, newest first, with their #numbers. "
        "`use-other ID` writes the value that lost to both apps, as a run you can undo.",
    )
    cfl.add_argument("name")
    cfl.add_argument("action", nargs="?", choices=["use-other"])
    cfl.add_argument("id", nargs="?", type=int, metavar="ID")
    cfl.add_argument("--json", action="store_true")

    act = sub.add_parser(
        "activity",
        help="the runs, newest first; with a run's number, the field changes it wrote",
        description="What the window's Activity tab shows: without RUN the last runs with "
        "their counts; with RUN (a #number) every field the run changed, before → after.",
    )
    act.add_argument("name")
    act.add_argument("run", nargs="?", type=int, metavar="RUN")
    act.add_argument("--json", action="store_true")

    und = sub.add_parser(
        "undo", help="put back what a run wrote, in both apps (never deletes a contact)"
    )
    und.add_argument("name")
    und.add_argument("run", type=int, help="the run's number (pairsync health NAME --json)")
    und.add_argument("--contact", metavar="SIDE:ID", help="only this contact: a:ID or b:ID")
    und.add_argument("--json", action="store_true")

    res = sub.add_parser(
        "restore",
        help="put back a backup of Pairsync's database (close the desktop app first)",
    )
    res.add_argument("backup", nargs="?", help="a backup's file name (default: the newest)")
    res.add_argument("--list", action="store_true", help="list the backups, restore nothing")
    res.add_argument(
        "--fresh",
        action="store_true",
        help="move the database aside and start again with an empty one",
    )
    return p


def _print_json(data: Any) -> None:
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str)
    # JSON escapes C0 controls itself; the C1 ones and direction marks are escaped here too
    print(text if text.isascii() else "".join(_json_char(ch) for ch in text))


def _json_char(ch: str) -> str:
    return f"\\u{ord(ch):04x}" if ch > "\x7f" and has_control_characters(ch) else ch


def _setup_logging(logs_dir: str) -> None:
    from app.service import PrivateLogFile

    os.makedirs(logs_dir, mode=0o700, exist_ok=True)
    handler = PrivateLogFile(
        os.path.join(logs_dir, "pairsync.log"), maxBytes=2_000_000, backupCount=3, encoding="utf-8"
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers = [
        h for h in root.handlers if not isinstance(h, logging.handlers.RotatingFileHandler)
    ]
    root.addHandler(handler)
    root.setLevel(logging.INFO)


RUN_GC_THRESHOLD = 10_000
"""Objects made between two young-generation collections during a command (Python's default:
700). A sync keeps what it reads alive until it ends (records, plan, results), so at the
default the collector walks the growing heap again and again for almost no garbage: about a
second of a 10,000-contact first sync (1,054 collections; 45 at this threshold). Cycles are
still collected, a little later."""


_ran_command = False


def ran_a_command() -> bool:
    """Whether ``main`` ran a command in this process (not the desktop app, nor its sync
    worker): ``app.__main__`` then ends the process without the interpreter's teardown."""
    return _ran_command


def run(argv: Sequence[str]) -> int:
    global _ran_command
    parser = build_parser()
    args = parser.parse_args(list(argv))
    if args.home:
        # Everything that finds Pairsync's folders by itself (connector caches, the desktop
        # app's settings) follows --home exactly as it follows PAIRSYNC_HOME.
        os.environ["PAIRSYNC_HOME"] = os.path.abspath(os.path.expanduser(args.home))
    if args.command is None:
        return _no_command(parser, args)
    _ran_command = True
    if args.command == "restore":
        return _restore(args)  # works while the database cannot be opened
    if args.command == "account" and args.action == "list":
        return _account_list(args)  # a plain read: no store, engine or keyring to load
    if args.command == "account" and args.action == "kinds":
        return _account_kinds(args)  # the registry only
    # Imports and set-up make many objects and free almost none: the collector would walk
    # them all several times for nothing (a tenth of a cron run's start-up).
    collecting = gc.isenabled()
    gc.disable()
    try:
        from app.service import Service, logs_folder

        # The log file first: what goes wrong opening the database is logged too.
        _setup_logging(str(logs_folder(args.home)))
        service = Service(args.home, allow_insecure_keyring=args.allow_insecure_keyring)
    finally:
        if collecting:
            gc.enable()
    # Everything a run needs is imported and set up now: the collector never has to walk
    # those objects again during the run (a no-change run allocates a lot and triggers it).
    gc.freeze()
    threshold = gc.get_threshold()
    gc.set_threshold(max(threshold[0], RUN_GC_THRESHOLD), *threshold[1:])
    try:
        return _dispatch(service, args)
    finally:
        gc.set_threshold(*threshold)
        service.close()


def _account_list(args: argparse.Namespace) -> int:
    from app.service import list_accounts, logs_folder

    _setup_logging(str(logs_folder(args.home)))
    accounts = list_accounts(args.home, allow_insecure_keyring=args.allow_insecure_keyring)
    if args.json:
        _print_json([a.as_json() for a in accounts])
    elif not accounts:
        print("No accounts yet. Add one with: pairsync account add KIND NAME --set path=...")
    else:
        for a in accounts:
            where = a.settings.get("path", "")
            print(f"{shown(a.name)}\t{shown(a.kind)}\t{shown(where)}")
    return EXIT_OK


def _account_kinds(args: argparse.Namespace) -> int:
    """``account kinds``: each app and the ``account add`` line its sign-in form asks for
    (the same declaration the window's account page is drawn from)."""
    from app.service import app_list

    entries = [e for e in app_list() if e.available]
    if args.json:
        _print_json([{"kind": e.kind, "name": e.name, "add": _add_line(e)} for e in entries])
        return EXIT_OK
    for e in entries:
        print(f"{e.kind} ({e.name}): {e.description}".rstrip(": "))
        print(f"  {_add_line(e)}")
        secret = e.form.secret
        if e.form.browser:
            print("  Signs in through your browser (--no-browser prints the address).")
        elif secret is not None:
            what = plain(secret.label).lower()
            print(f"  VAR names the environment variable holding the {what}.")
            if secret.help_url:
                print(f"  Where to find it: {secret.help_url}")
    return EXIT_OK


def _add_line(entry: AppEntry) -> str:
    """``pairsync account add KIND NAME --set key=VALUE … [--secret-env VAR]``."""
    parts = [f"pairsync account add {entry.kind} NAME"]
    for f in entry.form.settings:
        option = f"--set {f.key}={plain(f.label).upper().replace(' ', '-')}"
        parts.append(option if f.required else f"[{option}]")
    if entry.form.secret is not None and not entry.form.browser:
        parts.append("--secret-env VAR")
    return " ".join(parts)


def _no_command(parser: Parser, args: argparse.Namespace) -> int:
    """No command: open the desktop app; without a display (or without Qt's libraries),
    show the commands instead and say why."""
    from app.ui import display_available

    if not display_available():
        parser.print_help()
        print(
            "\npairsync: no display found (DISPLAY and WAYLAND_DISPLAY are not set), so the "
            "desktop app cannot open; the commands above work without one.",
            file=sys.stderr,
        )
        return EXIT_OK
    try:
        from app.ui.main import main as gui_main
    except ImportError as err:
        parser.print_help()
        print(
            f"\npairsync: the desktop app cannot start ({err}); the commands above work "
            "without it.",
            file=sys.stderr,
        )
        return EXIT_OK
    return int(
        gui_main(
            home=args.home,
            allow_insecure_keyring=args.allow_insecure_keyring,
            background=args.background,
        )
    )


def _add_signed_in(service: Service, args: argparse.Namespace) -> AccountInfo:
    """``account add google NAME``: sign in through the browser (or, with --no-browser,
    print the address as one line on stdout) and wait for the redirect."""

    return service.add_account_signed_in(
        args.kind,
        args.name,
        dict(args.settings),
        open_browser=not args.no_browser,
        on_url=_sign_in_url_printer(args.no_browser),
        timeout=args.timeout,
    )


def _sign_in_url_printer(no_browser: bool) -> Callable[[str], None]:
    """With --no-browser the consent address is the one line on stdout; otherwise a hint on
    stderr in case no browser opens."""

    def show(url: str) -> None:
        if no_browser:
            print(f"Open this address to sign in: {url}", flush=True)
        else:
            print(
                "Opening your browser to sign in; if it does not open, visit:\n" + url,
                file=sys.stderr,
                flush=True,
            )

    return show


def _dispatch(service: Service, args: argparse.Namespace) -> int:
    from app.secrets import secret_from_env

    if args.command == "account":
        if args.action == "add":
            if service.signs_in_with_browser(args.kind) and not args.secret_env:
                acc = _add_signed_in(service, args)
            else:
                secret = secret_from_env(args.secret_env) if args.secret_env else None
                acc = service.add_account(args.kind, args.name, dict(args.settings), secret)
            print(f"Added {acc.kind} account {acc.name!r}.")
        elif args.action == "list":
            return _account_list(args)
        elif args.action == "remove":
            service.remove_account(args.name)
            print(f"Removed account {args.name!r}.")
        elif args.action == "reauth":
            kind = service.account(args.name).kind
            if service.signs_in_with_browser(kind) and not args.secret_env:
                names = service.reauthorize_signed_in(
                    args.name,
                    open_browser=not args.no_browser,
                    on_url=_sign_in_url_printer(args.no_browser),
                    timeout=args.timeout,
                )
            else:
                secret = secret_from_env(args.secret_env) if args.secret_env else None
                names = service.reauthorize(args.name, secret=secret, settings=dict(args.settings))
            using = f" Connections using it: {', '.join(names)}." if names else ""
            print(shown(f"Signed in to {args.name!r} again.{using}"))
        return EXIT_OK

    if args.command == "connection":
        return _connection(service, args)

    if args.command == "sync":
        return _sync(service, args)

    if args.command == "health":
        return _health(service, args)

    if args.command == "conflicts":
        return _conflicts(service, args)

    if args.command == "undo":
        return _undo(service, args)

    if args.command == "activity":
        return _activity(service, args)
    raise UsageError(f"unknown command {args.command}")


def _connection(service: Service, args: argparse.Namespace) -> int:
    from app.service import ConnectionSettings

    action = args.action
    if action == "create":
        settings = ConnectionSettings(
            direction=args.direction,
            winner=args.winner,
            avoid_duplicates=args.avoid_duplicates,
            unsubscribes=args.unsubscribes,
            unsubscribe_opt_out=args.unsubscribe_opt_out,
            trash=args.trash,
            propagate_clears=args.propagate_clears,
            guard_max_writes=args.guard_threshold,
            phone_region=args.phone_region,
        )
        conn = service.create_connection(args.name, args.a, args.b, settings)
        print(
            shown(
                f"Created connection {conn.name!r}: {conn.a.account} ⇄ {conn.b.account} "
                f"({conn.settings.direction}). Preview it with: "
                f"pairsync sync {conn.name} --dry-run"
            )
        )
    elif action == "set":
        changes = {
            key: getattr(args, attr)
            for key, attr in (
                ("direction", "direction"),
                ("winner", "winner"),
                ("avoid_duplicates", "avoid_duplicates"),
                ("unsubscribes", "unsubscribes"),
                ("unsubscribe_opt_out", "unsubscribe_opt_out"),
                ("trash", "trash"),
                ("propagate_clears", "propagate_clears"),
                ("guard_max_writes", "guard_threshold"),
                ("phone_region", "phone_region"),
                ("interval_minutes", "interval"),
            )
            if getattr(args, attr) is not None
        }
        if not changes:
            raise UsageError("Nothing to change: give at least one setting, e.g. --trash on.")
        service.update_connection(args.name, **changes)
        print(f"Updated {args.name!r}: " + ", ".join(f"{k}={v}" for k, v in changes.items()))
    elif action == "rules":
        _print_rules(service.rules(args.name), args.json)
    elif action == "rule":
        return _rule(service, args)
    elif action == "list":
        conns = service.list_connections()
        if args.json:
            _print_json([c.as_json() for c in conns])
        elif not conns:
            print(
                "No connections yet. Create one with: "
                "pairsync connection create NAME --a ACCOUNT --b ACCOUNT"
            )
        else:
            for c in conns:
                state = "paused" if c.paused else (c.last_run.status if c.last_run else "never run")
                print(
                    f"{shown(c.name)}\t{shown(c.a.account)} {_arrow(c.settings.direction)} "
                    f"{shown(c.b.account)}\t{shown(state)}"
                )
    elif action == "show":
        shown_conn = service.show_connection(args.name).as_json()
        if args.json:
            _print_json(shown_conn)
        else:
            for key, value in shown_conn.items():
                text = json.dumps(value, ensure_ascii=False) if isinstance(value, dict) else value
                print(f"{key}: {shown(text)}")
    elif action == "rename":
        service.rename_connection(args.name, args.new_name)
        print(f"Renamed {args.name!r} to {args.new_name.strip()!r}.")
    elif action == "export":
        _print_json(service.export_connection(args.name))
    elif action == "import":
        from app.service import parse_export

        if args.file == "-":
            imported = service.import_connection(parse_export(sys.stdin.read(), "-"), args.name)
        else:  # the window's File ▸ Import connection… reads a file the same way
            imported = service.import_connection_file(args.file, args.name)
        print(f"Imported connection {imported.name!r}.")
    elif action == "mappings":
        _print_mappings(service.mappings(args.name), args.json)
    elif action == "fields":
        _print_fields(service.fields(args.name), args.json)
    elif action == "map":
        view = service.add_mapping(
            args.name,
            args.a_field,
            args.b_field,
            direction=args.direction,
            values=args.values,
            values_back=args.values_back,
            pick_label=args.pick_label,
        )
        note = f" — {view.reason}" if view.reason else ""
        print(shown(f"Added mapping {view.key} ({view.effective or 'inactive'}){note}."))
    elif action == "toggle":
        service.toggle_mapping(args.name, args.mapping, args.state)
        print(shown(f"Mapping {args.mapping} is now {'on' if args.state else 'off'}."))
    elif action == "unmap":
        service.remove_mapping(args.name, args.mapping)
        print(shown(f"Removed mapping {args.mapping}."))
    elif action in ("pause", "resume"):
        service.set_paused(args.name, action == "pause")
        print(f"{'Paused' if action == 'pause' else 'Resumed'} {args.name!r}.")
    elif action == "delete":
        service.delete_connection(args.name)
        print(f"Deleted connection {args.name!r}. No contact was changed in either app.")
    return EXIT_OK


def _rule(service: Service, args: argparse.Namespace) -> int:
    from app.model import Side
    from app.service import (
        Action,
        ActionKind,
        Filter,
        FilterKind,
        Join,
        Op,
        RuleDraft,
        parse_filter,
        parse_set,
    )

    verb = args.rule_action
    if verb == "add":
        filters = [parse_filter(text) for text in args.filters]
        filters += [Filter(FilterKind.SEGMENT, Op.HAS, n) for n in args.if_segment]
        filters += [Filter(FilterKind.SEGMENT, Op.HAS_NOT, n) for n in args.if_not_segment]
        if args.only_existing:
            filters.append(Filter(FilterKind.EXISTS, Op.EXISTS))
        actions = [Action(ActionKind.ADD_SEGMENT, n) for n in args.then_add_segment]
        actions += [Action(ActionKind.REMOVE_SEGMENT, n) for n in args.then_remove_segment]
        actions += [parse_set(text) for text in args.then_set]
        draft = RuleDraft(
            Side(args.source), Join(args.join), filters, actions, args.undo, args.other_way
        )
        view = service.add_rule(args.name, draft, args.position)
        print(shown(f"Added rule {view.position} ({view.id}): {view.sentence}."))
        print(f"It {_matches(view.count)}.")
        if view.ignored:
            print(shown(f"Note: it is ignored ({view.ignored})."))
    elif verb == "remove":
        service.remove_rule(args.name, args.rule)
        print(shown(f"Removed rule {args.rule}. No contact was changed."))
    elif verb == "move":
        service.move_rule(args.name, args.rule, args.position)
        print(shown(f"Moved rule {args.rule} to position {args.position}."))
    elif verb in ("enable", "disable"):
        service.set_rule(args.name, args.rule, enabled=verb == "enable")
        print(shown(f"Rule {args.rule} is now {'on' if verb == 'enable' else 'off'}."))
    elif verb == "set":
        if args.undo is None and args.other_way is None:
            raise UsageError("Nothing to change: give --undo on|off or --other-way on|off.")
        view = service.set_rule(args.name, args.rule, undo=args.undo, other_way=args.other_way)
        print(
            f"Rule {view.position}: undo {'on' if view.undo else 'off'}, "
            f"other way around {'on' if view.other_way else 'off'}."
        )
    return EXIT_OK


def _print_rules(views: list[RuleInfo], as_json: bool) -> None:
    if as_json:
        _print_json([v.as_json() for v in views])
        return
    if not views:
        print("No rules: nothing is synced. Add one with: pairsync connection rule add NAME ...")
    for v in views:
        state = "on" if v.enabled else "off"
        toggles = f"undo {'on' if v.undo_effective else 'off'}"
        toggles += f", other way {'on' if v.other_way else 'off'}"
        print(f"{v.position}. [{state}] {shown(v.sentence)}")
        print(f"   {toggles}; {_matches(v.count)}  (id {v.id})")
        if v.mirror is not None:
            print(f"   other way: {shown(v.mirror.sentence)} — matches {_or_dash(v.mirror.count)}")
        if v.ignored:
            print(f"   ignored: {shown(v.ignored)}")
        if v.undo_note:
            print(f"   {shown(v.undo_note)}")


def _print_mappings(views: list[MappingInfo], as_json: bool) -> None:
    if as_json:
        _print_json([v.as_json() for v in views])
        return
    for v in views:
        state = "on " if v.enabled else "off"
        arrow = _arrow(v.effective) if v.effective else "×"
        line = f"[{state}] {v.key}  ({v.kind}) {'+'.join(v.a)} {arrow} {'+'.join(v.b)}"
        if v.reason:
            line += f"  — {v.reason}"
        print(shown(line))


def _print_fields(data: ConnectionFields, as_json: bool) -> None:
    if as_json:
        _print_json(data.as_json())
        return
    for side in ("a", "b"):
        app = data.side(side)
        print(f"{side.upper()}: {shown(app.app)}")
        for f in app.fields:
            flags = [f.type, *(["list"] if f.multi else [])]
            flags += [] if f.writable else ["read-only"]
            print(f"  {shown(f.key):<28} {shown(f.label)} ({', '.join(flags)})")


def _arrow(direction: str) -> str:
    return {"two-way": "⇄", "a-to-b": "→", "b-to-a": "←"}.get(direction, "?")


def _sync(service: Service, args: argparse.Namespace) -> int:
    interactive = sys.stderr.isatty() and not args.json

    def progress(phase: str, done: int, total: int) -> None:
        if interactive:
            tail = f" {done}/{total}" if total else ""
            print(f"\r{shown(phase)}{tail}\033[K", end="", file=sys.stderr, flush=True)

    reports = service.sync(args.names, dry_run=args.dry_run, confirm=args.yes, progress=progress)
    if interactive:
        print("\r\033[K", end="", file=sys.stderr)
    if args.json:
        _print_json([r.as_json() for r in reports])
    else:
        if not reports:
            print("No connections to sync.")
        for r in reports:
            print(shown(_summary(r)))
    code = EXIT_OK
    statuses = {r.status for r in reports}
    if "guard" in statuses:
        code = EXIT_GUARD
    elif "auth" in statuses:
        code = EXIT_AUTH
    elif "unavailable" in statuses:
        code = EXIT_UNAVAILABLE  # the run could not happen: a folder missing, a server down
    elif "failed" in statuses:
        code = EXIT_FAILED
    for r in reports:
        if r.status in ("guard", "auth", "unavailable") or (r.status == "failed" and r.message):
            print(shown(f"{r.connection}: {r.message}"), file=sys.stderr)
    return code


def _summary(r: Any) -> str:
    if r.status == "paused":
        return f"{r.connection}: paused."
    if r.status == "busy":
        return f"{r.connection}: skipped. {r.message}"
    create, update = ("would create", "would update") if r.dry_run else ("created", "updated")
    parts = [
        f"{create} {r.created['a']} in A, {r.created['b']} in B",
        f"{update} {r.updated['a']} in A, {r.updated['b']} in B",
    ]
    if r.matched:
        parts.append(f"matched {r.matched}")
    for label, n in (
        ("failed", r.failed),
        ("conflict" if r.conflicts == 1 else "conflicts", r.conflicts),
        ("rule conflict" if r.rule_conflicts == 1 else "rule conflicts", r.rule_conflicts),
        ("excluded", r.excluded),
        ("duplicate" if r.duplicates == 1 else "duplicates", r.duplicates),
        ("deleted on the other side", r.deleted_other_side),
        ("not fitting", getattr(r, "not_fitting", 0)),
    ):
        if n:
            parts.append(f"{n} {label}")
    prefix = f"{r.connection} ({'dry run' if r.dry_run else r.status})"
    return f"{prefix}: {'; '.join(parts)}."


def _health(service: Service, args: argparse.Namespace) -> int:
    if args.action is not None:
        return _health_action(service, args)
    if args.ids:
        raise UsageError(f"pairsync health: unexpected {args.ids[0]!r} (retry|ignore|unignore ID)")
    data = service.health(args.name)
    if args.json:
        _print_json(data.to_json())
        return EXIT_OK
    c = data.counts
    print(
        f"{shown(data.connection)}{' (paused)' if data.paused else ''}: {c.in_sync} in sync, "
        f"{c.excluded} excluded, {_count(c.duplicates, 'duplicate')}, {c.failed} failed, "
        f"{c.deleted_other_side} deleted on the other side."
    )
    if data.failed:
        print("\nFailed:")
        for failure in data.failed:
            fields = f" [{', '.join(failure.fields)}]" if failure.fields else ""
            print(
                shown(
                    f"  {failure.side.upper()} {failure.name}: {failure.reason}{fields}"
                    f"  (#{failure.id})"
                )
            )
    for title, contacts in (("Excluded", data.excluded), ("Duplicates", data.duplicates)):
        if contacts:
            print(f"\n{title}:")
            for item in contacts:
                print(shown(f"  {item.side.upper()} {item.name}: {item.reason}"))
    if data.not_fitting:
        print("\nNot fitting (the rest of each contact is in sync):")
        for nf in data.not_fitting:
            values = ", ".join(nf.values)
            print(shown(f"  {nf.side.upper()} {nf.name}: {nf.field}: {values}"))
    if data.conflicts:
        print("\nConflicts:")
        for conflict in data.conflicts[:50]:
            print(
                shown(
                    f"  {conflict.field}: A={conflict.value_a!r} B={conflict.value_b!r} → "
                    f"{conflict.winner.upper()} won  (#{conflict.id})"
                )
            )
    if data.rule_conflicts:
        print("\nRule conflicts:")
        for rc in data.rule_conflicts[:50]:
            print(shown(f"  {rc.side.upper()}: {rc.message}"))
    return EXIT_OK


def _health_action(service: Service, args: argparse.Namespace) -> int:
    """``health NAME retry|ignore|unignore ID…``: what the Health tab's Retry and Ignore do."""
    verb = args.action
    if verb == "retry" and args.ids == ["all"]:
        n = service.retry_failures(args.name)
        print(shown(f"{args.name}: {_count(n, 'failed contact')} will be retried at the next run."))
        return EXIT_OK
    if not args.ids:
        raise UsageError(f"pairsync health: {verb} needs the #numbers of failed contacts")
    try:
        ids = [int(i.lstrip("#")) for i in args.ids]
    except ValueError:
        raise UsageError(
            f"pairsync health: {verb} takes the #numbers shown under Failed, not {args.ids!r}"
        ) from None
    if verb == "retry":
        n = service.retry_failures(args.name, ids)
        done = "will be retried at the next run"
    else:
        n = service.ignore_failures(args.name, ids, ignored=verb == "ignore")
        if verb == "ignore":
            done = "ignored until it changes" if n == 1 else "ignored until they change"
        else:
            done = "listed and retried again"
    if n < len(set(ids)):
        raise ConfigError(
            f"{args.name} has no failed contact with some of these numbers: "
            f"{', '.join(f'#{i}' for i in ids)} (see: pairsync health {args.name})."
        )
    print(shown(f"{args.name}: {_count(n, 'failed contact')} {done}."))
    return EXIT_OK


def _conflicts(service: Service, args: argparse.Namespace) -> int:
    """``conflicts NAME`` lists them; ``conflicts NAME use-other ID`` writes the losing value
    to both apps, as a journaled run (what the Health tab's "Use the other value" does)."""
    if args.action == "use-other":
        if args.id is None:
            raise UsageError("pairsync conflicts: use-other needs a conflict's #number")
        report = service.use_other_value(args.name, args.id)
        return _print_undo_report(args, report, f"{args.name}: conflict #{args.id}")
    if args.id is not None:
        raise UsageError("pairsync conflicts: a number goes after use-other")
    rows = service.conflicts(args.name)
    if args.json:
        _print_json([_conflict_json(c) for c in rows])
        return EXIT_OK
    if not rows:
        print(shown(f"{args.name}: no conflicts in the last 30 days."))
    for c in rows:
        who = c.name or f"pair {c.binding_id}"
        if c.is_rule:
            print(shown(f"#{c.id}  {c.at:%Y-%m-%d %H:%M}  {who}: rule conflict: {c.value_a}"))
            continue
        state = "  (other value used)" if c.resolved_run_id is not None else ""
        print(
            shown(
                f"#{c.id}  {c.at:%Y-%m-%d %H:%M}  {who}  {c.field}: A={c.value_a!r} "
                f"B={c.value_b!r} → {c.winner.upper()} won{state}"
            )
        )
    return EXIT_OK


def _conflict_json(c: Any) -> dict[str, Any]:
    return {
        "id": c.id,
        "name": c.name,
        "field": c.field,
        "value_a": c.value_a,
        "value_b": c.value_b,
        "winner": c.winner,
        "at": c.at.isoformat(),
        "rule": c.is_rule,
        "resolved_run_id": c.resolved_run_id,
    }


def _matches(count: int | None) -> str:
    """What a rule matches now; nothing is counted before the first sync."""
    if count is None:
        return "matches — (counted after the first sync)"
    return f"matches {_count(count, 'contact')} now"


def _or_dash(count: int | None) -> str:
    return "—" if count is None else str(count)


def _count(n: int, noun: str) -> str:
    """``1 contact``, ``2 contacts``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _activity(service: Service, args: argparse.Namespace) -> int:
    """``activity NAME``: the runs (dry runs left out); ``activity NAME RUN``: the field
    changes of one run, in the order they were written (the Activity tab's two lists)."""
    if args.run is None:
        runs = service.runs_page(args.name, limit=50)
        if args.json:
            _print_json([_run_json(r) for r in runs])
            return EXIT_OK
        if not runs:
            print(f"{args.name}: no runs yet.")
        numbers = {r.id: r.run_no for r in runs}
        for r in runs:
            what = r.kind
            if r.undo_of is not None:
                what += f" of #{numbers.get(r.undo_of, '?')}"
            created, updated, failed = (r.total(k) for k in ("created", "updated", "failed"))
            note = f"  {r.message}" if r.message else ""
            print(
                shown(
                    f"#{r.run_no}  {r.started_at:%Y-%m-%d %H:%M}  {what}  {r.status}: "
                    f"{created} created, {updated} updated, {failed} failed{note}"
                )
            )
        return EXIT_OK
    run_id = service.run_id(args.name, args.run)
    changes = []
    after: int | None = None
    while True:
        page = service.journal_page(args.name, run_id, after=after, limit=500)
        changes += page
        if len(page) < 500:
            break
        after = page[-1].id
    if args.json:
        _print_json(
            [
                {
                    "side": j.side,
                    "record_id": j.record_id,
                    "name": j.name,
                    "action": j.action,
                    "field": j.field,
                    "before": j.before,
                    "after": j.after,
                }
                for j in changes
            ]
        )
        return EXIT_OK
    if not changes:
        print(f"{args.name}: run {args.run} changed no field.")
    for j in changes:
        who = j.name or j.record_id
        print(shown(f"  {j.side.upper()} {who}  {j.action} {j.field}: {j.before!r} → {j.after!r}"))
    return EXIT_OK


def _run_json(r: Any) -> dict[str, Any]:
    return {
        "run": r.run_no,
        "kind": r.kind,
        "undo_of": r.undo_of,
        "status": r.status,
        "started_at": r.started_at.isoformat(),
        "finished_at": None if r.finished_at is None else r.finished_at.isoformat(),
        "counts": r.counts,
        "message": r.message,
    }


def _undo(service: Service, args: argparse.Namespace) -> int:
    """Undo a run as a journaled run of its own; contacts it created are kept and put in
    "Pairsync Trash"; fields changed since are left alone and listed."""
    record = None
    if args.contact:
        side, _, rid = args.contact.partition(":")
        if side not in ("a", "b") or not rid:
            raise UsageError("pairsync undo: --contact takes a:ID or b:ID")
        record = (side, rid)
    report = service.undo_run(args.name, service.run_id(args.name, args.run), record=record)
    return _print_undo_report(args, report, f"{args.name}: undo of run {args.run}")


def _print_undo_report(args: argparse.Namespace, report: Any, head: str) -> int:
    if args.json:
        _print_json(report.as_json())
    else:
        print(shown(f"{head}: {report.message}"))
        for item in report.skipped:
            who = item["name"] or item["record_id"]
            side = item["side"].upper()
            print(shown(f"  left alone: {side} {who} {item['field']}: {item['reason']}"))
        for item in report.errors:
            print(shown(f"  not written: {item['side'].upper()} {item['name']}: {item['message']}"))
    if report.status == "auth":
        return EXIT_AUTH
    return EXIT_OK if report.status == "ok" else EXIT_FAILED


def _os_error(err: OSError) -> str:
    """A file error as one sentence: which file, and what the system said."""
    where = f" {err.filename}" if err.filename else ""
    if err.errno == errno.ENOSPC:
        return f"The disk is full: could not write{where}. Free some space and try again."
    if err.errno == errno.EROFS:
        return f"Could not write{where}: the disk is read-only."
    reason = (err.strerror or type(err).__name__).rstrip(".")
    return f"Could not use{where}: {reason}."


def _restore(args: argparse.Namespace) -> int:
    from app.service import database_backups, restore_database

    if args.list:
        backups = database_backups(args.home)
        if not backups:
            print("No backups of Pairsync's database yet.")
        for b in backups:
            print(f"{b.path.name}  {b.made_at:%Y-%m-%d %H:%M} UTC  {b.size:,} bytes")
        return EXIT_OK
    if args.fresh and args.backup:
        raise UsageError("pairsync restore: give a backup or --fresh, not both")
    done = restore_database(args.home, args.backup, fresh=args.fresh)
    kept = f" The previous file was kept as {done.kept_as}." if done.kept_as else ""
    if done.backup is None:
        print(f"Started again with an empty database.{kept}")
    else:
        print(
            f"Restored Pairsync's database from {done.backup.path} "
            f"({done.backup.made_at:%Y-%m-%d %H:%M} UTC).{kept}"
        )
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["_sync-worker"]:
        # The desktop app's sync worker, in an installer-built app that has no ``-m``.
        from app import sync_worker

        return sync_worker.main(args[1:])
    # No traceback ever reaches the terminal: not from a log file that cannot be written
    # (a full disk), nor from logging before the log file is set up.
    logging.raiseExceptions = False
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.NullHandler())
    try:
        return run(args)
    except UsageError as err:
        print(shown(err), file=sys.stderr)
        return EXIT_USAGE
    except AuthExpired as err:
        print(f"pairsync: {shown(err)}", file=sys.stderr)
        return EXIT_AUTH
    except ConfigError as err:
        print(f"pairsync: {shown(err)}", file=sys.stderr)
        return EXIT_USAGE
    except PairsyncError as err:
        print(f"pairsync: {shown(err)}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(
            "pairsync: interrupted; the next run picks up where this one stopped.", file=sys.stderr
        )
        return 130
    except OSError as err:
        log.exception("file error")
        print(f"pairsync: {shown(_os_error(err))}", file=sys.stderr)
        return EXIT_USAGE
    except RecursionError:
        log.exception("nested too deeply")
        print("pairsync: the input is nested too deeply to be read.", file=sys.stderr)
        return EXIT_USAGE
    except Exception as err:
        log.exception("unexpected error")
        print(
            shown(
                f"pairsync: unexpected error: {type(err).__name__}: {err} (details in the log file)"
            ),
            file=sys.stderr,
        )
        return EXIT_FAILED


if __name__ == "__main__":
    raise SystemExit(main())
