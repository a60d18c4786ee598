"""What a sync reads of each app's records: the ``ReadHint`` the service hands to apps that
can read less (``NarrowsReads``, e.g. HubSpot, which is asked for properties by name).

A field is needed when a mapping pairs it, when a rule looks at it (on the rule's source)
or sets it (on its target), or when matching uses it: emails bind contacts, names find a
contact that came back under another id. The subscription status is needed when the
connection syncs unsubscribes or a rule looks at it.
"""

from __future__ import annotations

from collections.abc import Iterable

from app.connectors.base import ReadHint
from app.mapping.fields import FieldMapping
from app.model import ConnectionSettings, Side
from app.rules.model import ActionKind, FilterKind, Rule, mirror

IDENTITY = frozenset({"emails", "email", "full_name", "given_name", "family_name"})
"""Read always: what matching and ``Reader.find_moved`` compare."""


def read_hint(
    side: Side,
    mappings: Iterable[FieldMapping],
    rules: Iterable[Rule],
    settings: ConnectionSettings,
) -> ReadHint:
    fields = set(IDENTITY)
    for m in mappings:
        fields.update(m.fields_of(side))
    subscription = settings.unsubscribes
    for rule in rules:
        if not rule.enabled:
            continue
        for r in (rule, mirror(rule)) if rule.other_way else (rule,):
            for f in r.filters:
                if r.source is side and f.kind is FilterKind.FIELD and f.field:
                    fields.add(f.field)
                if r.source is side and f.kind is FilterKind.SUBSCRIPTION:
                    subscription = True
            for a in r.actions:
                if r.target is side and a.kind is ActionKind.SET_FIELD and a.field:
                    fields.add(a.field)
    return ReadHint(frozenset(fields), subscription)
