"""Field mappings of a connection: list, pair, toggle, remove, and what may be paired.

Every call here opens the two apps (their fields decide what a mapping can do) through
``opened``, so they are closed again however the call ends.
"""

from __future__ import annotations

import json

from app.errors import ConfigError
from app.mapping.compat import compatibility
from app.mapping.config import (
    CustomMapping,
    MappingConfig,
    MappingView,
    add_custom,
    effective_direction,
    parse_values,
    remove_custom,
    toggle,
)
from app.mapping.fields import Direction
from app.model import Schema, Side
from app.rules import edit as rule_edit
from app.service.connections import Connections
from app.service.core import Apps, _mapping_config, _rules
from app.service.types import (
    AppFields,
    ConnectionFields,
    FieldChoice,
    FieldInfo,
    MappingChoices,
    MappingInfo,
)
from app.store.rows import ConnectionRow


def _mapping_info(view: MappingView) -> MappingInfo:
    return MappingInfo(
        key=view.key,
        kind=view.kind,
        label=view.label,
        a=tuple(view.fields_a),
        b=tuple(view.fields_b),
        direction=view.direction.value,
        effective=view.effective.value if view.effective else None,
        enabled=view.enabled,
        active=view.active,
        reason=view.reason,
        values={k: dict(v) for k, v in view.values.items()},
    )


class Mappings(Connections):
    """Which field of one app goes to which field of the other, and how."""

    def mappings(self, name: str) -> list[MappingInfo]:
        conn = self._connections.connection(name)
        with self.opened(conn) as apps:
            return [_mapping_info(v) for v in self._views(conn, apps)]

    def fields(self, name: str) -> ConnectionFields:
        """Both apps' fields and segments, for picking custom mappings and rules."""
        out: dict[Side, AppFields] = {}
        with self.opened(name) as apps:
            for side, app in apps.items():
                schema = app.schema()
                out[side] = AppFields(
                    app.info.name,
                    tuple(FieldInfo.of(f) for f in schema.fields),
                    tuple(schema.segments),
                )
        return ConnectionFields(out[Side.A], out[Side.B])

    def add_mapping(
        self,
        name: str,
        a_field: str,
        b_field: str,
        *,
        direction: str = "two-way",
        values: str = "",
        values_back: str = "",
        pick_label: str = "",
    ) -> MappingInfo:
        conn = self._connections.connection(name)
        own = Direction.parse(direction)
        custom = CustomMapping(
            a_field,
            b_field,
            own,
            parse_values(values),
            parse_values(values_back),
            pick_label.strip().casefold(),
        )
        with self.opened(conn) as apps:
            config = add_custom(
                _mapping_config(conn),
                self._views(conn, apps),
                Schema(apps[Side.A].fields()),
                Schema(apps[Side.B].fields()),
                custom,
                Direction.parse(conn.direction),
                app_a=apps[Side.A].info.name,
                app_b=apps[Side.B].info.name,
            )
            self._check_rules_allow(conn, apps, config)
            self._save_mappings(conn, config)
            conn = self._connections.connection(name)
            return next(_mapping_info(v) for v in self._views(conn, apps) if v.key == custom.key)

    def toggle_mapping(self, name: str, key: str, on: bool) -> None:
        conn = self._connections.connection(name)
        with self.opened(conn) as apps:
            config = toggle(_mapping_config(conn), self._views(conn, apps), key, on)
            if on:
                self._check_rules_allow(conn, apps, config)
        self._save_mappings(conn, config)

    def _check_rules_allow(self, conn: ConnectionRow, apps: Apps, config: MappingConfig) -> None:
        """A mapping may not write a field an enabled rule sets (SPEC §3)."""
        clash = rule_edit.rule_clash(
            _rules(conn), self._views(conn, apps, config=config), Direction.parse(conn.direction)
        )
        if clash:
            raise ConfigError(clash)

    def remove_mapping(self, name: str, key: str) -> None:
        conn = self._connections.connection(name)
        self._save_mappings(conn, remove_custom(_mapping_config(conn), key))

    def _save_mappings(self, conn: ConnectionRow, config: MappingConfig) -> None:
        data = json.loads(conn.config or "{}")
        data["mappings"] = config.to_json()
        self._connections.update_connection(conn.name, config=json.dumps(data))

    def mapping_choices(self, name: str, side: str, key: str) -> MappingChoices:
        """For "Add custom mapping": the field picked on ``side`` and, for every field of the
        other app, whether the pair can be mapped now and, if not, why (SPEC §5) — the same
        checks ``add_mapping`` makes, so what the editor offers is what it accepts."""
        conn = self._connections.connection(name)
        try:
            picked_side = Side(side)
        except ValueError:
            raise ConfigError("A side is a or b.") from None
        with self.opened(conn) as apps:
            schemas = {s: Schema(app.fields()) for s, app in apps.items()}
            names = {s: app.info.name for s, app in apps.items()}
            picked = schemas[picked_side].get(key)
            if picked is None:
                raise ConfigError(f"{names[picked_side]} has no field {key!r}.")
            views = self._views(conn, apps)
        taken = frozenset(
            {f"a:{k}" for v in views if v.enabled for k in v.fields_a}
            | {f"b:{k}" for v in views if v.enabled for k in v.fields_b}
        )
        direction = Direction.parse(conn.direction)
        other = picked_side.other
        out: list[FieldChoice] = []
        for spec in schemas[other].fields:
            a, b = (picked, spec) if picked_side is Side.A else (spec, picked)
            compat = compatibility(a, b, app_a=names[Side.A], app_b=names[Side.B], taken=taken)
            # The same computation ``add_mapping`` makes (one function decides a mapping's
            # effective direction), so what the editor offers is what it accepts.
            flow, _why = effective_direction(
                direction,
                Direction.TWO_WAY,
                [a],
                [b],
                app_a=names[Side.A],
                app_b=names[Side.B],
                type_into_a=compat.b_to_a,
                type_into_b=compat.a_to_b,
            )
            into_b = flow is not None and flow.writes(Side.B)
            into_a = flow is not None and flow.writes(Side.A)
            possible, reason = compat.possible, compat.reason
            if possible and not (into_a or into_b):
                possible = False
                reason = (
                    f"The connection is {direction.value} and these fields can only flow the "
                    "other way."
                )
            out.append(
                FieldChoice(
                    FieldInfo.of(spec),
                    possible=possible,
                    a_to_b=into_b,
                    b_to_a=into_a,
                    reason=reason,
                    needs_values=compat.needs_values,
                )
            )
        return MappingChoices(picked_side.value, FieldInfo.of(picked), tuple(out))
