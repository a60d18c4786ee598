"""Every facade call that opens the two apps closes them again (``Service.opened``).

Closing is not a formality: the CardDAV app saves its mirror of the address book on close,
so a path that forgets it reads the whole book again next time; and every app holds an
HTTP session or a file until then.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from app.connectors import registry
from app.model import Side
from app.rules.model import Action, ActionKind, Join, RuleDraft
from app.service import Service
from tests.dav import USER, DavServer

CARD = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:bea\r\nFN:Bea Bo\r\nEMAIL:bea@x.com\r\nEND:VCARD\r\n"


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    svc = Service()  # PAIRSYNC_HOME (conftest): the apps keep their caches there too
    yield svc
    svc.close()


def _mirrors(service: Service) -> list[Path]:
    return sorted((Path(service.paths.data) / "cache").glob("carddav-*.json"))


def test_reading_fields_saves_the_carddav_mirror(
    radicale: DavServer, tmp_path: Path, service: Service
) -> None:
    book = radicale.new_book()
    radicale.put(f"{book}bea.vcf", CARD)
    folder = tmp_path / "cards"
    folder.mkdir()
    service.add_account("vcard-folder", "Phone", {"path": str(folder)})
    service.add_account(
        "carddav",
        "Server",
        {"url": radicale.url, "username": USER, "addressbook": book},
        secret=radicale.auth[1],  # type: ignore[index]
    )
    service.create_connection("main", "Phone", "Server", _options())
    for mirror in _mirrors(service):
        mirror.unlink()
    service.fields("main")
    assert _mirrors(service), "the CardDAV app was opened and never closed: no mirror saved"


def _options() -> Any:
    from app.service import ConnectionSettings

    return ConnectionSettings()


class _Counting:
    """Wraps the registry's builders: counts apps opened and apps closed (real apps inside)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.opened = 0
        self.closed = 0
        for kind, spec in list(registry.KINDS.items()):
            monkeypatch.setitem(registry.KINDS, kind, replace(spec, build=self._wrap(spec.build)))

    def _wrap(self, build: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            app = build(*args, **kwargs)
            self.opened += 1
            close = app.close

            def closing() -> None:
                self.closed += 1
                close()

            app.close = closing
            return app

        return counted


def test_every_path_closes_what_it_opens(
    tmp_path: Path, service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("First Name,Last Name,Email,Tier\nAnn,Lee,ann@x.com,Gold\n", encoding="utf-8")
    b.write_text("First Name,Last Name,Email,Level\n", encoding="utf-8")
    service.add_account("csv", "A", {"path": str(a)})
    service.add_account("csv", "B", {"path": str(b)})
    service.create_connection("main", "A", "B", _options())
    counting = _Counting(monkeypatch)
    service.mappings("main")
    service.fields("main")
    service.mapping_choices("main", "a", "col:Tier")
    view = service.add_mapping("main", "col:Tier", "col:Level")
    service.toggle_mapping("main", view.key, False)
    draft = RuleDraft(Side.A, Join.ALL, [], [Action(ActionKind.ADD_SEGMENT, "Leads")])
    rule = service.add_rule("main", draft)
    service.set_rule("main", rule.id, enabled=False)
    service.set_rule("main", rule.id, enabled=True)
    service.update_connection("main", direction="a-to-b")
    service.rules("main")
    service.check_account("A")
    service.preview("main")
    service.sync(["main"])
    assert counting.opened > 0
    assert counting.closed == counting.opened


def test_a_sync_reads_its_two_accounts_once(tmp_path: Path, service: Service) -> None:
    """A run reads the connection's accounts once, for its apps and for their locks (it
    read each twice before), all on the plain connection the sync runs on."""
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "bea.vcf").write_text(CARD)
    service.add_account("vcard-folder", "A", {"path": str(a)})
    service.add_account("vcard-folder", "B", {"path": str(b)})
    service.create_connection("main", "A", "B", _options())
    statements: list[str] = []
    service._store.db.connection().set_trace_callback(statements.append)
    [report] = service.sync(["main"])
    assert report.status == "ok" and report.created["b"] == 1
    # (The rolling backup's fingerprint reads the whole table after the run: not these.)
    reads = [s for s in statements if "FROM accounts WHERE id" in s]
    assert sorted(reads) == [
        "SELECT id, name, kind, settings, has_secret FROM accounts WHERE id = 1",
        "SELECT id, name, kind, settings, has_secret FROM accounts WHERE id = 2",
    ]
