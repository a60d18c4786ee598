"""HubSpot CRM contacts as a Pairsync app.

Reading
  ``list_versions`` pages through every contact (100 a page) with the properties behind the
  fields a sync uses (``narrow_reads``), so the records it saw are kept and ``fetch`` of
  those ids costs no request (beyond one opt-out lookup per 100 addresses); other
  ids are read in batches of 100 (``batch/read``: ids that are gone or archived are simply
  absent — that is how a deletion is confirmed). A version is ``updatedAt`` plus a digest
  of the contact's lists (list membership does not move ``updatedAt``).
  ``changes(cursor)`` is the incremental path: a CRM search on ``lastmodifieddate`` ≥ the
  cursor, ascending; a search pages through at most 10,000 results, so at the cap it starts
  again from the last timestamp it saw, and de-duplicates by id. The cursor stays a minute
  behind the newest change (search indexes with a delay), and once a day (or without a
  cursor) the feed is a full listing (``complete``), which finds archived contacts.

Writing
  ``batch/create`` and ``batch/update``, 100 inputs a call, each input tagged with its op id
  (``objectWriteTraceId``) so per-input errors of a 207 multi-status land on the right
  contact. A value HubSpot rejects (an option that does not exist, a bad number or email) is
  left out and the rest of the contact is written again without it; that field is reported.
  A create HubSpot answers with 409 "Contact already exists. Existing ID: N" binds to N
  (HubSpot's email is unique): its empty properties are filled, nothing is duplicated.
  HubSpot has no conditional write: an ``expected_version`` is checked against this run's
  read when it is fresh (a minute), else by reading the contact again just before writing.

Segments
  Contact lists (``lists.py``): static lists are segments Pairsync edits, dynamic ones are
  read only.

Unsubscribes
  The subscription status is HubSpot's "opted out of all email": from the
  communication-preferences API where the token has its scopes, else from the read-only
  ``hs_email_optout`` (see ``optouts.py``). Opt-outs are written through that API after the
  contact's own write; a "subscribe" is refused for that contact, as is an opt-out without
  the scope (the sentence names it).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.connectors.base import ChangeSet, ReadHint
from app.connectors.hubspot.api import (
    BATCH,
    DEFAULT_BASE,
    PAGE,
    SEARCH_PAGE,
    HubSpotApi,
    HubSpotError,
    MissingScopes,
)
from app.connectors.hubspot.lists import Lists
from app.connectors.hubspot.optouts import NEVER_RESUBSCRIBE, NO_EMAIL, OptOuts, combine
from app.connectors.hubspot.records import Translation, to_properties, to_record, version_of
from app.connectors.hubspot.results import (
    adding,
    field_of,
    first_error,
    property_names,
    reason,
    trace_of,
)
from app.connectors.hubspot.schema import ContactSchema, build_schema
from app.errors import AuthExpired, Conflict, NotFound, Rejected, Unavailable
from app.model import (
    OPT_OUT_FIELD,
    AppInfo,
    Capabilities,
    Create,
    FieldSpec,
    Record,
    Schema,
    Unreadable,
    Update,
    WriteOp,
    WriteResult,
    email_key,
    parse_subscription,
    record_emails,
)

CONTACTS = "/crm/v3/objects/contacts"
FRESH = 60.0
"""Seconds a read stays good enough to check an ``expected_version`` against."""
LAG_MS = 60_000
"""The change cursor stays this far behind the newest change seen (search index delay)."""
FULL_EVERY_MS = 24 * 3600 * 1000
URL_BUDGET = 1800
"""Longest ``properties=`` list sent in a URL; beyond it, records are read by POST."""
EXISTING = re.compile(r"Existing ID:\s*(\d+)")


@dataclass
class _Raw:
    """What we last read or wrote of one contact."""

    data: dict[str, Any]
    at: float
    props: dict[str, str] = field(default_factory=dict)


class HubSpotApp:
    """Connector for one HubSpot account (a private-app or service-key access token)."""

    def __init__(
        self,
        token: str,
        *,
        api_base: str = DEFAULT_BASE,
        name: str = "HubSpot",
        rate_limit: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        kwargs: dict[str, Any] = {"sleep": sleep}
        if rate_limit:
            kwargs["limit"] = rate_limit
        self.api = HubSpotApi(token, api_base, **kwargs)
        self.info = AppInfo(
            kind="hubspot",
            name=name,
            aliases=("hubspot crm", "hub spot"),
            auth="token",
            capabilities=Capabilities(
                segments=True,
                change_feed=True,
                chooses_ids=False,
                batch_size=BATCH,
                subscription=True,
            ),
        )
        self._schema: ContactSchema | None = None
        self.lists = Lists(self.api)
        self._seen: dict[str, _Raw] = {}
        self._bound: dict[str, dict[str, Any]] = {}
        """Creates answered by a 409, bound to the existing contact (op id -> result)."""
        self._clock = time.monotonic
        self.optouts = OptOuts(self.api)
        self._hint: ReadHint | None = None
        self._tag = ""

    def narrow_reads(self, hint: ReadHint) -> None:
        """Ask HubSpot only for the properties behind the fields a sync uses (a portal has
        hundreds; reading them all costs bytes and, past a URL's length, a request per
        page), and for opt-outs only when the subscription status is used."""
        self._hint = hint
        self._tag = hint.tag

    def _read_properties(self) -> list[str]:
        hint = self._hint
        if hint is None:
            return self.contact_schema().read_properties()
        return self.contact_schema().read_properties(hint.fields, status=hint.subscription)

    # --- account ------------------------------------------------------------------------------

    def check(self) -> None:
        """Prove the token and its scopes with one small read of each kind Pairsync needs —
        the contact properties, one contact, the lists — and two writes that change nothing
        (an empty batch update, a member added to list 0, which does not exist): HubSpot
        checks scopes before the request, so a token without a write scope is refused now
        with the scope named (:class:`MissingScopes`), not at the first sync's first write.
        Any other refusal of those two is what they are meant to get (if HubSpot checked the
        body first, the probe would prove nothing and the first write would name the scope)."""
        self.contact_schema()
        self.api.call("GET", CONTACTS, query={"limit": 1, "properties": "email"})
        self.lists.load(refresh=True)
        for method, path, body in (
            ("POST", f"{CONTACTS}/batch/update", {"inputs": []}),
            ("PUT", "/crm/v3/lists/0/memberships/add", []),
        ):
            try:
                self.api.call(method, path, body=body)
            except MissingScopes:
                raise
            except (HubSpotError, AuthExpired):
                pass  # the refusal the probe expects (or one it cannot judge): no scope named

    def close(self) -> None:
        self.api.close()

    # --- schema -------------------------------------------------------------------------------

    def contact_schema(self) -> ContactSchema:
        if self._schema is None:
            _, data = self.api.call("GET", "/crm/v3/properties/contacts")
            self._schema = build_schema(data.get("results", []))
        return self._schema

    def fields(self) -> tuple[FieldSpec, ...]:
        return self.contact_schema().fields

    def schema(self) -> Schema:
        lists = self.lists.load()
        return Schema(self.fields(), tuple(sorted(x.name for x in lists.values())))

    def prepare(self) -> None:
        self.contact_schema()

    # --- reading ------------------------------------------------------------------------------

    def _record(self, data: dict[str, Any]) -> Record | Unreadable:
        rid = str(data.get("id", ""))
        try:
            rec = to_record(data, self.contact_schema(), self.lists.segments(rid), self._tag)
        except (KeyError, TypeError, ValueError) as err:
            return Unreadable(
                rid,
                str(data.get("updatedAt", "")),
                f"HubSpot sent a contact Pairsync cannot read ({type(err).__name__}).",
                json.dumps(data)[:500],
            )
        self._seen[rid] = _Raw(data, self._clock(), dict(data.get("properties") or {}))
        emails = record_emails(rec)
        if emails:
            rec.subscribed = combine(self.optouts.known(emails[0]), rec.subscribed)
        return rec

    def _with_status(self, items: list[Record | Unreadable]) -> list[Record | Unreadable]:
        """The records' subscription status from the communication-preferences API (one
        batch read per 100 addresses; nothing more without the scope)."""
        if self._hint is not None and not self._hint.subscription:
            return items
        firsts = {r.id: record_emails(r)[:1] for r in items if isinstance(r, Record)}
        self.optouts.read(e for found in firsts.values() for e in found)
        for r in items:
            if isinstance(r, Record) and firsts.get(r.id):
                r.subscribed = combine(self.optouts.known(firsts[r.id][0]), r.subscribed)
        return items

    def _listing(self) -> list[Record | Unreadable]:
        """Every contact, 100 a page, with the properties behind the fields."""
        self.contact_schema()
        self.lists.members(refresh=True)
        props = self._read_properties()
        joined = ",".join(props)
        by_post = len(joined) > URL_BUDGET
        query = {"limit": PAGE, "properties": "lastmodifieddate" if by_post else joined}
        out: list[Record | Unreadable] = []
        self._seen.clear()
        for page in self.api.pages(CONTACTS, query):
            if by_post:
                out.extend(self._read_ids([str(d["id"]) for d in page]))
            else:
                out.extend(self._record(d) for d in page)
        return out

    def list_versions(self) -> dict[str, str]:
        return {item.id: item.version for item in self._listing()}

    def fetch(self, ids: Sequence[str]) -> list[Record | Unreadable]:
        out: list[Record | Unreadable] = []
        todo: list[str] = []
        for rid in ids:
            raw = self._seen.get(rid)
            if raw is not None:
                out.append(self._record(raw.data))
            else:
                todo.append(rid)
        out.extend(self._read_ids(todo))
        order = {rid: i for i, rid in enumerate(ids)}
        return self._with_status(sorted(out, key=lambda r: order.get(r.id, len(order))))

    def _read_ids(self, ids: Sequence[str]) -> list[Record | Unreadable]:
        """Batch read (100 a call); ids HubSpot no longer has (or archived) are absent."""
        props = self._read_properties()
        out: list[Record | Unreadable] = []
        for start in range(0, len(ids), BATCH):
            chunk = [i for i in ids[start : start + BATCH] if i.isdigit()]
            if not chunk:
                continue
            _, data = self.api.call(
                "POST",
                f"{CONTACTS}/batch/read",
                body={"inputs": [{"id": i} for i in chunk], "properties": props},
            )
            out.extend(self._record(d) for d in data.get("results", []))
        return out

    def find_by_email(self, emails: Iterable[str]) -> list[Record]:
        wanted = sorted({email_key(e) for e in emails if e.strip()})
        props = self._read_properties()
        found: dict[str, Record] = {}
        for start in range(0, len(wanted), 100):
            chunk = wanted[start : start + 100]
            body = {
                "filterGroups": [
                    {"filters": [{"propertyName": "email", "operator": "IN", "values": chunk}]}
                ],
                "properties": props,
                "limit": SEARCH_PAGE,
            }
            for page, _ in self.api.search(body):
                for d in page:
                    rec = self._record(d)
                    if isinstance(rec, Record):
                        found[rec.id] = rec
        keys = set(wanted)
        self._with_status(list(found.values()))
        return [
            r
            for r in found.values()
            if any(email_key(e.value) in keys for e in r.fields.get("emails", ()) or ())  # type: ignore[union-attr]
        ]

    # --- change feed --------------------------------------------------------------------------

    def changes(self, cursor: str | None) -> ChangeSet | None:
        """What changed since ``cursor`` (see the module docstring)."""
        now_ms = int(time.time() * 1000)
        since, full_at = _parse_cursor(cursor)
        if since is None or full_at is None or now_ms - full_at > FULL_EVERY_MS:
            records = self._listing()
            newest = max(
                (_stamp(self._seen[r.id].data) for r in records if r.id in self._seen),
                default=LAG_MS,  # no contact yet: the next search starts at 0
            )
            return _by_version(records, _cursor(max(0, newest - LAG_MS), now_ms), complete=True)
        self.lists.members(refresh=True)
        props = self._read_properties()
        seen: dict[str, Record | Unreadable] = {}
        start = since
        newest = since
        while True:
            body = {
                "filterGroups": [
                    {
                        "filters": [
                            {
                                "propertyName": "lastmodifieddate",
                                "operator": "GTE",
                                "value": str(start),
                            }
                        ]
                    }
                ],
                "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
                "properties": props,
                "limit": SEARCH_PAGE,
            }
            capped = False
            count = 0
            for page, offset in self.api.search(body):
                count = offset + len(page)
                for d in page:
                    seen[str(d["id"])] = self._record(d)
                    newest = max(newest, _stamp(d))
                capped = count + SEARCH_PAGE > self.api.search_cap and len(page) == SEARCH_PAGE
            if not capped:
                break
            if newest <= start:
                # More than a whole search's worth of contacts share one timestamp: the
                # search cannot get past them; read everything instead.
                records = self._listing()
                return _by_version(
                    records, _cursor(max(0, newest - LAG_MS), full_at), complete=True
                )
            start = newest
        return _by_version(
            list(seen.values()), _cursor(max(since, newest - LAG_MS), full_at), complete=False
        )

    # --- writing ------------------------------------------------------------------------------

    def write(self, ops: Sequence[WriteOp]) -> list[WriteResult]:
        if len(ops) > BATCH:
            raise ValueError(f"batch of {len(ops)} exceeds {BATCH}")
        results: dict[str, WriteResult] = {}
        updates = [op for op in ops if isinstance(op, Update)]
        creates = [op for op in ops if isinstance(op, Create)]
        if updates:
            self._write_updates(updates, results)
        if creates:
            self._write_creates(creates, results)
        wanted = {
            op.op_id: str(op.fields[OPT_OUT_FIELD]) for op in ops if OPT_OUT_FIELD in op.fields
        }
        if wanted:
            self._write_opt_outs(wanted, results)
        return [results[op.op_id] for op in ops]

    def _write_opt_outs(self, wanted: dict[str, str], results: dict[str, WriteResult]) -> None:
        """Opt the written contacts out that the ops ask to (``"subscribed": "false"``), in
        one call per 100; a "subscribe" is refused. A contact that failed keeps its error."""
        todo: dict[str, str] = {}
        for op_id, value in wanted.items():
            res = results[op_id]
            rec = res.record
            if rec is None:
                continue
            if parse_subscription(value) is not False:
                if rec.subscribed is not True:
                    results[op_id] = adding(res, Rejected(NEVER_RESUBSCRIBE, field=OPT_OUT_FIELD))
                continue
            if rec.subscribed is False:
                continue  # already opted out
            emails = record_emails(rec)
            if not emails:
                results[op_id] = adding(res, Rejected(NO_EMAIL, field=OPT_OUT_FIELD))
                continue
            todo[op_id] = emails[0]
        if not todo:
            return
        failed = self.optouts.unsubscribe(list(todo.values()))
        # HubSpot sets hs_email_optout, which moves updatedAt: read the contacts again so
        # their versions are the ones the next read will see.
        done = [op_id for op_id, email in todo.items() if email.strip() not in failed]
        self._read_ids([r.id for op_id in done if (r := results[op_id].record) is not None])
        for op_id, email in todo.items():
            res = results[op_id]
            if email.strip() in failed:
                results[op_id] = adding(res, failed[email.strip()])
                continue
            assert res.record is not None
            raw = self._seen.get(res.record.id)
            fresh = self._record(raw.data) if raw is not None else res.record
            if isinstance(fresh, Record):
                fresh.subscribed = False
                results[op_id] = WriteResult(op_id, record=fresh, error=res.error)

    def _translate(self, fields: Any, create: bool) -> Translation:
        schema = self.contact_schema()
        values = dict(fields)
        values.pop(OPT_OUT_FIELD, None)  # written by _write_opt_outs, after the contact
        return to_properties(values, schema, create=create)

    def _current_versions(self, ids: list[str]) -> dict[str, str]:
        """Versions of contacts as HubSpot has them now: this run's read when it is fresh,
        else read again (HubSpot has no conditional write to do this for us).

        The re-read is a CRM search by id: searches have their own per-second limit and do
        not spend the ten-second budget the writes need (a long run under a tight limit
        would otherwise pay one extra request per 100 updates). A contact the search does
        not return (archived, or not yet indexed) is read by id."""
        now = self._clock()
        stale = [i for i in ids if i not in self._seen or now - self._seen[i].at > FRESH]
        stale = [i for i in stale if i.isdigit()]
        for i in stale:
            self._seen.pop(i, None)
        if stale:
            props = self._read_properties()
            for start in range(0, len(stale), 100):
                chunk = stale[start : start + 100]
                body = {
                    "filterGroups": [
                        {"filters": [
                            {"propertyName": "hs_object_id", "operator": "IN", "values": chunk}
                        ]}
                    ],
                    "properties": props,
                    "limit": 100,
                }  # fmt: skip
                for page, _ in self.api.search(body):
                    for d in page:
                        self._record(d)
            missing = [i for i in stale if i not in self._seen]
            if missing:
                self._read_ids(missing)
        return {
            i: version_of(self._seen[i].data, self.lists.segments(i), self._tag)
            for i in ids
            if i in self._seen
        }

    def _write_updates(self, ops: list[Update], results: dict[str, WriteResult]) -> None:
        checked = [op.record_id for op in ops if op.expected_version is not None]
        current = self._current_versions(checked) if checked else {}
        todo: list[Update] = []
        for op in ops:
            if op.expected_version is None:
                todo.append(op)
            elif op.record_id not in current:
                results[op.op_id] = WriteResult(
                    op.op_id, error=NotFound("The contact no longer exists in HubSpot.")
                )
            elif current[op.record_id] != op.expected_version:
                results[op.op_id] = WriteResult(
                    op.op_id,
                    error=Conflict("The contact changed in HubSpot while syncing; it is retried."),
                )
            else:
                todo.append(op)
        problems: dict[str, list[Rejected]] = {}
        inputs: list[dict[str, Any]] = []
        for op in todo:
            t = self._translate(op.fields, create=False)
            problems[op.op_id] = list(t.problems)
            if t.properties:
                inputs.append(
                    {"id": op.record_id, "properties": t.properties, "objectWriteTraceId": op.op_id}
                )
        written, errors = self._send_batch("update", inputs, problems)
        for op in todo:
            if op.op_id in errors:
                results[op.op_id] = WriteResult(op.op_id, error=errors[op.op_id])
        ok = [op for op in todo if op.op_id not in errors]
        seg_problems = self.lists.apply(
            [(op.op_id, op.record_id, op.add_segments, op.remove_segments) for op in ok]
        )
        need_read = [op.record_id for op in ok if op.record_id not in self._seen]
        if need_read:
            self._read_ids(need_read)
        for op in ok:
            data = written.get(op.op_id)
            raw = self._seen.get(op.record_id)
            if raw is None:
                results[op.op_id] = WriteResult(
                    op.op_id, error=NotFound("The contact no longer exists in HubSpot.")
                )
                continue
            if data is not None:
                merged = dict(raw.props)
                merged.update(data["sent"])
                merged.update(
                    {
                        k: v
                        for k, v in (data["result"].get("properties") or {}).items()
                        if v is not None and k not in data["sent"]
                    }
                )
                new = {**data["result"], "properties": merged}
                raw = _Raw(new, self._clock(), merged)
                self._seen[op.record_id] = raw
            rec = self._record(raw.data)
            issues = problems.get(op.op_id, []) + seg_problems.get(op.op_id, [])
            results[op.op_id] = WriteResult(
                op.op_id,
                record=rec if isinstance(rec, Record) else None,
                error=first_error(issues),
            )

    def _write_creates(self, ops: list[Create], results: dict[str, WriteResult]) -> None:
        problems: dict[str, list[Rejected]] = {}
        inputs: list[dict[str, Any]] = []
        for op in ops:
            t = self._translate(op.fields, create=True)
            problems[op.op_id] = list(t.problems)
            inputs.append({"properties": t.properties, "objectWriteTraceId": op.op_id})
        created: dict[str, dict[str, Any]] = {}
        errors: dict[str, Exception] = {}
        pending = inputs
        while pending:
            try:
                done, errs = self._send_batch("create", pending, problems)
            except _Exists as exists:
                op_id = self._bind_existing(exists.contact_id, pending, problems)
                if op_id is None:
                    # The email is taken by a contact we cannot match to an input: write
                    # the inputs one by one so each gets its own answer.
                    if len(pending) == 1:
                        errors[pending[0]["objectWriteTraceId"]] = Rejected(
                            f"HubSpot already has this email on contact {exists.contact_id}.",
                            field="emails",
                        )
                        break
                    for single in pending:
                        try:
                            d, e = self._send_batch("create", [single], problems)
                            created.update(d)
                            errors.update(e)
                        except _Exists as again:
                            oid = self._bind_existing(again.contact_id, [single], problems)
                            if oid is not None:
                                created[oid] = self._bound[oid]
                            else:
                                errors[single["objectWriteTraceId"]] = Rejected(
                                    f"HubSpot already has this email on contact "
                                    f"{again.contact_id}.",
                                    field="emails",
                                )
                    break
                created[op_id] = self._bound[op_id]
                pending = [i for i in pending if i["objectWriteTraceId"] != op_id]
                continue
            created.update(done)
            errors.update(errs)
            break
        for op_id, err in errors.items():
            results[op_id] = WriteResult(op_id, error=err)
        ok = [op for op in ops if op.op_id in created]
        for op in ok:
            data = created[op.op_id]
            rid = str(data["result"]["id"])
            props = {**(data["result"].get("properties") or {})}
            props.update(data["sent"])
            new = {**data["result"], "properties": props}
            self._seen[rid] = _Raw(new, self._clock(), props)
        seg_problems = self.lists.apply(
            [
                (op.op_id, str(created[op.op_id]["result"]["id"]), op.segments, frozenset())
                for op in ok
            ]
        )
        for op in ok:
            rid = str(created[op.op_id]["result"]["id"])
            rec = self._record(self._seen[rid].data)
            issues = problems.get(op.op_id, []) + seg_problems.get(op.op_id, [])
            results[op.op_id] = WriteResult(
                op.op_id, record=rec if isinstance(rec, Record) else None, error=first_error(issues)
            )
        for op in ops:
            results.setdefault(
                op.op_id,
                WriteResult(
                    op.op_id, error=Unavailable("HubSpot did not answer for this contact.")
                ),
            )

    def _bind_existing(
        self,
        contact_id: str,
        pending: list[dict[str, Any]],
        problems: dict[str, list[Rejected]],
    ) -> str | None:
        """A 409 on create: the input whose email HubSpot already has binds to that contact;
        the contact's empty properties are filled from the input. The op id, or None."""
        found = self._read_ids([contact_id])
        raw = self._seen.get(contact_id)
        if not found or raw is None:
            return None
        existing = email_key(str(raw.props.get("email") or ""))
        match = next(
            (
                i
                for i in pending
                if email_key(str(i["properties"].get("email") or "")) == existing and existing
            ),
            None,
        )
        if match is None:
            return None
        fill = {k: v for k, v in match["properties"].items() if v and not raw.props.get(k)}
        result = raw.data
        sent: dict[str, str] = {}
        if fill:
            done, _errs = self._send_batch(
                "update",
                [
                    {
                        "id": contact_id,
                        "properties": fill,
                        "objectWriteTraceId": match["objectWriteTraceId"],
                    }
                ],
                problems,
            )
            if match["objectWriteTraceId"] in done:
                result = done[match["objectWriteTraceId"]]["result"]
                sent = done[match["objectWriteTraceId"]]["sent"]
            result = {**result, "properties": {**raw.props, **(result.get("properties") or {})}}
        self._bound[match["objectWriteTraceId"]] = {"result": result, "sent": sent}
        return str(match["objectWriteTraceId"])

    def _send_batch(
        self,
        action: str,
        inputs: list[dict[str, Any]],
        problems: dict[str, list[Rejected]],
    ) -> tuple[dict[str, dict[str, Any]], dict[str, Exception]]:
        """One batch call (split when HubSpot refuses it whole for one bad input).

        Returns op id -> {"result": contact JSON, "sent": properties written}, and op id ->
        error for inputs that failed entirely. Properties HubSpot rejects are dropped from
        their input, which is sent again; the field goes into ``problems``.
        """
        done: dict[str, dict[str, Any]] = {}
        failed: dict[str, Exception] = {}
        if not inputs:
            return done, failed
        by_trace = {str(i["objectWriteTraceId"]): i for i in inputs}
        try:
            _, data = self.api.call("POST", f"{CONTACTS}/batch/{action}", body={"inputs": inputs})
        except HubSpotError as err:
            if err.status == 409 and action == "create":
                m = EXISTING.search(err.message)
                if m:
                    raise _Exists(m[1]) from None
            if err.status in (400, 409) and len(inputs) > 1:
                half = len(inputs) // 2
                for part in (inputs[:half], inputs[half:]):
                    d, f = self._send_batch(action, part, problems)
                    done.update(d)
                    failed.update(f)
                return done, failed
            if err.status == 400:
                names = property_names(err.body)
                item = inputs[0]
                return self._retry_without(action, item, names, err.message, problems)
            failed[str(inputs[0]["objectWriteTraceId"])] = Rejected(
                f"HubSpot refused the contact: {err.message}", raw=err.message[:500]
            )
            return done, failed
        for res in data.get("results", []):
            trace = trace_of(res, inputs)
            if trace is not None:
                done[trace] = {"result": res, "sent": dict(by_trace[trace]["properties"])}
        retry: list[tuple[dict[str, Any], list[str], str]] = []
        for error in data.get("errors", []):
            ctx = error.get("context") or {}
            traces = ctx.get("objectWriteTraceId") or []
            category = error.get("category", "")
            message = str(error.get("message", ""))
            if category == "OBJECT_NOT_FOUND":
                for rid in ctx.get("ids") or []:
                    for i in inputs:
                        if str(i.get("id")) == str(rid):
                            failed[str(i["objectWriteTraceId"])] = NotFound(
                                "The contact no longer exists in HubSpot."
                            )
                continue
            for trace in traces:
                found = by_trace.get(str(trace))
                if found is None:
                    continue
                if category == "VALIDATION_ERROR":
                    retry.append((found, list(ctx.get("propertyName") or []), message))
                elif category == "CONFLICT":
                    m = EXISTING.search(message)
                    failed[str(trace)] = Rejected(
                        "Another HubSpot contact already has this email"
                        + (f" (contact {m[1]})." if m else "."),
                        field="emails",
                        raw=message[:500],
                    )
                else:
                    failed[str(trace)] = Rejected(
                        f"HubSpot refused the contact: {message}", raw=message[:500]
                    )
        for item, names, message in retry:
            d, f = self._retry_without(action, item, names, message, problems)
            done.update(d)
            failed.update(f)
        for trace in by_trace:
            if trace not in done and trace not in failed:
                failed[trace] = Unavailable("HubSpot did not answer for this contact.")
        return done, failed

    def _retry_without(
        self,
        action: str,
        item: dict[str, Any],
        names: list[str],
        message: str,
        problems: dict[str, list[Rejected]],
    ) -> tuple[dict[str, dict[str, Any]], dict[str, Exception]]:
        """Send one input again without the properties HubSpot rejected."""
        trace = str(item["objectWriteTraceId"])
        schema = self.contact_schema()
        bad = [n for n in names if n in item["properties"]]
        if not bad:
            return {}, {
                trace: Rejected(f"HubSpot refused the contact: {message}", raw=message[:500])
            }
        for name in bad:
            problems.setdefault(trace, []).append(
                Rejected(
                    f"HubSpot refused the value “{item['properties'][name]}” for "
                    f"{schema.properties[name].label if name in schema.properties else name}: "
                    f"{reason(message, name)}",
                    field=field_of(name, schema),
                    raw=message[:500],
                )
            )
        rest = {k: v for k, v in item["properties"].items() if k not in bad}
        if action == "update" and not rest:
            # Nothing left to write: the contact is as it was (re-read it for the record).
            rid = str(item["id"])
            self._read_ids([rid])
            raw = self._seen.get(rid)
            if raw is None:
                return {}, {trace: NotFound("The contact no longer exists in HubSpot.")}
            return {trace: {"result": raw.data, "sent": {}}}, {}
        if action == "create" and not any(rest.get(k) for k in ("email", "firstname", "lastname")):
            return {}, {trace: problems[trace].pop()}
        return self._send_batch(action, [{**item, "properties": rest}], problems)


def _by_version(items: list[Record | Unreadable], cursor: str, *, complete: bool) -> ChangeSet:
    """Changed contacts by id and version: the engine fetches only those it lacks, and the
    fetch (from what was just read, no request) adds their opt-out status in one batch."""
    return ChangeSet(
        records=[u for u in items if isinstance(u, Unreadable)],
        versions={r.id: r.version for r in items if isinstance(r, Record)},
        cursor=cursor,
        complete=complete,
    )


class _Exists(Exception):
    def __init__(self, contact_id: str) -> None:
        super().__init__(contact_id)
        self.contact_id = contact_id


def _stamp(data: dict[str, Any]) -> int:
    from datetime import datetime

    text = str(
        data.get("updatedAt") or (data.get("properties") or {}).get("lastmodifieddate") or ""
    )
    if text.isdigit():
        return int(text)
    try:
        return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return 0


def _cursor(since_ms: int, full_ms: int) -> str:
    return f"hs1:{since_ms}:{full_ms}"


def _parse_cursor(cursor: str | None) -> tuple[int | None, int | None]:
    if not cursor or not cursor.startswith("hs1:"):
        return None, None
    try:
        _, since, full = cursor.split(":")
        return int(since), int(full)
    except ValueError:
        return None, None
