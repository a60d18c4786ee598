"""Can field X of app A map to field Y of app B, in which directions, and if not, why?

SPEC §5 type rules: same type ↔ same type; date ↔ datetime; boolean ↔ choice with a value
table; anything → text one way only; text → number/date never; a list ↔ a single field
(the single field holds the primary value); address ↔ text via a formatted string. A
read-only field can only be read. Every "no" comes with a sentence the user can act on.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.model import FieldSpec, FieldType

T = FieldType

TEXTUAL = frozenset({T.TEXT, T.LONG_TEXT})
CHOICE = frozenset({T.SINGLE_CHOICE, T.MULTI_CHOICE})

TYPE_WORDS = {
    T.TEXT: "text",
    T.LONG_TEXT: "long text",
    T.EMAIL: "email",
    T.PHONE: "phone",
    T.URL: "web address",
    T.NUMBER: "number",
    T.DATE: "date",
    T.DATETIME: "date and time",
    T.BOOLEAN: "yes/no",
    T.SINGLE_CHOICE: "choice",
    T.MULTI_CHOICE: "multiple choice",
    T.ADDRESS: "address",
}


@dataclass(frozen=True, slots=True)
class Compatibility:
    a_to_b: bool
    b_to_a: bool
    reason: str = ""
    """Why a direction (or both) is impossible; empty when both work."""
    needs_values: bool = False
    """The mapping needs a value table (choice ↔ choice, boolean ↔ choice)."""

    @property
    def possible(self) -> bool:
        return self.a_to_b or self.b_to_a


def _flow(source: FieldSpec, target: FieldSpec) -> tuple[bool, str, bool]:
    """Can values of ``source`` be written into ``target`` (types only)?"""
    s, t = source.type, target.type
    if s == t:
        return True, "", s in CHOICE
    if s in TEXTUAL and t in TEXTUAL:
        return True, "", False
    if {s, t} == {T.DATE, T.DATETIME}:
        return True, "", False
    if {s, t} <= {T.BOOLEAN, T.SINGLE_CHOICE}:
        return True, "", True
    if s == T.SINGLE_CHOICE and t == T.MULTI_CHOICE:
        return True, "", True
    if (s == T.ADDRESS and t in TEXTUAL) or (s in TEXTUAL and t == T.ADDRESS):
        return True, "", False
    if t in TEXTUAL:
        return True, "", False  # anything can be written as text
    return False, f"{TYPE_WORDS[s]} vs {TYPE_WORDS[t]}", False


def compatibility(
    a: FieldSpec,
    b: FieldSpec,
    *,
    app_a: str = "app A",
    app_b: str = "app B",
    taken: frozenset[str] = frozenset(),
) -> Compatibility:
    """Directions in which ``a`` (a field of A) and ``b`` (of B) can be mapped.

    ``taken`` holds "a:KEY" / "b:KEY" of fields already in another mapping.
    """
    for side, spec, app in (("a", a, app_a), ("b", b, app_b)):
        if f"{side}:{spec.key}" in taken:
            return Compatibility(False, False, f"{spec.label} in {app} is already mapped.")
    if a.type == T.MULTI_CHOICE and b.type == T.MULTI_CHOICE:
        pass
    elif (a.multi and b.type in CHOICE) or (b.multi and a.type in CHOICE):
        return Compatibility(False, False, "A list field cannot map to a choice field.")
    to_b, why_b, values_b = _flow(a, b)
    to_a, _why_a, values_a = _flow(b, a)
    reasons = []
    if not to_b and not to_a:
        return Compatibility(
            False,
            False,
            f"Field {a.label} is not compatible with field {b.label}: {why_b}.",
        )
    if not to_b:
        reasons.append(f"{TYPE_WORDS[a.type]} cannot be written into {TYPE_WORDS[b.type]}")
    if not to_a:
        reasons.append(f"{TYPE_WORDS[b.type]} cannot be written into {TYPE_WORDS[a.type]}")
    if to_b and not b.writable:
        to_b = False
        reasons.append(f"{b.label} is read-only in {app_b}")
    if to_a and not a.writable:
        to_a = False
        reasons.append(f"{a.label} is read-only in {app_a}")
    reason = "; ".join(reasons)
    if reason:
        reason = reason[0].upper() + reason[1:] + "."
    if not to_b and not to_a:
        return Compatibility(False, False, reason)
    return Compatibility(to_b, to_a, reason, needs_values=values_a or values_b)
