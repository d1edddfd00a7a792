"""The documents dealtrail reads and writes, and their generated artefacts.

The JSON Schemas (of events, import lines, command outputs and exports) and
docs/events.md; ``python -m cli.generate`` or ``dealtrail schemas write``
writes them, and a test fails when they are stale. The export formats are
defined here as models; ``engine.exporting`` fills them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import cache, cached_property
from typing import Annotated, Any, Literal, Union, cast

import orjson
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    create_model,
)

from engine.events import CATALOGUE, Event, Role, event_type_name
from engine.projections.accounts import AccountNeglect
from engine.projections.audit import Audit
from engine.projections.backtest import RuleBacktest
from engine.projections.deal_state import DealState
from engine.projections.gaps import FollowUpGaps
from engine.projections.replay import Replay
from engine.projections.stakeholders import StakeholderInvolvement
from engine.projections.summary import FLAGS, DealSummary

SCHEMA_BASE = "https://dealtrail.invalid/schemas/"
DRAFT = "https://json-schema.org/draft/2020-12/schema"

# A discriminated union of every catalogue event, built from the tuple.
AnyEvent: Any = Annotated[Union[CATALOGUE], Field(discriminator="type")]  # noqa: UP007


def _document(name: str, schema: dict[str, Any]) -> str:
    schema = {"$schema": DRAFT, "$id": SCHEMA_BASE + name, **schema}
    return (
        orjson.dumps(schema, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()
        + "\n"
    )


def _model_schema(model: type[BaseModel], title: str) -> dict[str, Any]:
    schema = model.model_json_schema(mode="serialization")
    schema["title"] = title
    return schema


_POSITION = {
    "position": {
        "type": "integer",
        "description": "The store position the output was computed at.",
    }
}
_FLAGS = {
    "flags": {
        "type": "array",
        "items": {"enum": list(FLAGS)},
        "description": "The warnings the deal shows at the evaluation time.",
    }
}

# Command outputs: each document is the model plus what the command adds.
OUTPUTS: tuple[tuple[str, type[BaseModel], str, dict[str, Any]], ...] = (
    (
        "deal-state.schema.json",
        DealState,
        "dealtrail deal state (deal show)",
        _POSITION,
    ),
    ("gaps.schema.json", FollowUpGaps, "dealtrail follow-up gaps (gaps)", _POSITION),
    (
        "stakeholders.schema.json",
        StakeholderInvolvement,
        "dealtrail stakeholder involvement (stakeholders)",
        _POSITION,
    ),
    (
        "deal-summary.schema.json",
        DealSummary,
        "dealtrail deal summary (one of deal list's deals)",
        _FLAGS,
    ),
)


def _output_schema(
    model: type[BaseModel], title: str, added: dict[str, Any]
) -> dict[str, Any]:
    schema = _model_schema(model, title)
    schema["properties"] = schema.get("properties", {}) | added
    schema["required"] = sorted({*schema.get("required", []), *added})
    return schema


IMPORT_LINE = "import-line.schema.json"


def import_line_schema() -> dict[str, Any]:
    """The native line as ``import`` reads it: an event without recorded_at."""
    schema = _without_recorded_at(TypeAdapter(AnyEvent).json_schema(mode="validation"))
    schema["title"] = "dealtrail import line (one event of the native format)"
    return schema


def _without_recorded_at(schema: dict[str, Any]) -> dict[str, Any]:
    """Drop recorded_at from the events defined in ``schema``: the store sets
    it, so an import line may not carry it (extra fields are refused)."""
    for cls in CATALOGUE:
        properties = schema["$defs"][cls.__name__]["properties"]
        del properties["recorded_at"]
    return schema


# -- exports -----------------------------------------------------------------


class _Strict(BaseModel):
    # Exports write every field, defaults too: the schemas require them all.
    model_config = ConfigDict(
        frozen=True, extra="forbid", json_schema_serialization_defaults_required=True
    )


class EventItem(_Strict):
    """One stored event: the line that imports it, and where the store put it."""

    deal: str = Field(description="The deal's key.")
    version: int = Field(ge=1, description="Its place in the deal's sequence.")
    recorded_at: AwareDatetime = Field(description="When the store accepted it.")
    event: AnyEvent = Field(
        description="The event as a line that import reads back (no recorded_at)."
    )


Flag = cast(Any, Literal)[FLAGS]


class DealItem(_Strict):
    deal: str = Field(description="The deal's key.")
    flags: list[Flag] = Field(  # type: ignore[valid-type]
        description="The warnings the deal shows at evaluated_at."
    )
    summary: DealSummary


class GapsItem(_Strict):
    deal: str = Field(description="The deal's key.")
    gaps: FollowUpGaps


class StakeholdersItem(_Strict):
    deal: str = Field(description="The deal's key.")
    stakeholders: StakeholderInvolvement


class AuditItem(_Strict):
    deal: str = Field(description="The deal's key.")
    audit: Audit


class ReplayItem(_Strict):
    deal: str = Field(description="The deal's key.")
    replay: Replay


class DealsContext(_Strict):
    evaluated_at: AwareDatetime = Field(description="When the flags are judged.")


class AccountsContext(_Strict):
    evaluated_at: AwareDatetime = Field(description="When neglect is judged.")
    timezone: str = Field(description="The zone days since a touch are counted in.")
    neglect_calendar_days: int = Field(description="Days without a touch = neglect.")
    neglected_count: int = Field(description="Neglected accounts, of all accounts.")


class BacktestContext(_Strict):
    deals_considered: int = Field(description="Closed deals the rules ran over.")
    open_excluded: int = Field(description="Open deals, left out.")
    before_since_excluded: int = Field(description="Deals closed before since.")


_DIGEST = r"^[0-9a-f]{64}$"


class DealChainHead(_Strict):
    """The deal's chain head when the export was made (see docs/security.md)."""

    deal: str = Field(description="The deal's key.")
    version: int = Field(ge=1, description="The deal's last chained position.")
    digest: str = Field(
        pattern=_DIGEST, description="That event's chain digest (BLAKE2b-256, hex)."
    )


class StoreChainHead(_Strict):
    """The store's chain head when the export was made: one digest over every
    chained deal's head, in deal id order (see docs/security.md)."""

    deals: int = Field(ge=1, description="The chained deals it covers.")
    digest: str = Field(pattern=_DIGEST, description="BLAKE2b-256, hex.")


class _Head(_Strict):
    position: int = Field(
        ge=0,
        description="The store position the export began at: the head of the "
        "event log (the events export holds exactly the events up to it).",
    )
    rules_hash: str = Field(description="SHA-256 of the rule set applied.")
    rules_version: str = Field(description="The rule set's version label.")
    chain: DealChainHead | StoreChainHead | None = Field(
        description="The chain head at the position: the deal's for an export "
        "of one deal, else the store's; `dealtrail verify --at POSITION` "
        "(with --deal KEY for a deal's) prints the same head while the store "
        "is untouched. Null when no event up to the position is chained."
    )


# The filters an export can record in its query, with their types.
_FILTERS: dict[str, tuple[Any, str]] = {
    "deal": (str | None, "Only this deal."),
    "status": (Literal["open", "won", "lost"] | None, "Only deals with this status."),
    "owner": (str | None, "Only deals this rep owns."),
    "account": (str | None, "Only deals of this account."),
    "lost": (bool, "Only lost deals."),
    "neglected": (bool, "Only accounts the rules call neglected."),
    "since": (date | None, "Only deals closed on or after this date."),
    "as_of": (AwareDatetime | None, "Only what had happened by this time."),
    "as_known_at": (AwareDatetime | None, "Only what was known at this time."),
    "at": (AwareDatetime | None, "The evaluation time asked for."),
}
_SELECT = ("status", "owner", "account")


def _const(value: str) -> Any:
    return cast(Any, Literal)[value]


@dataclass(frozen=True)
class ExportFormat:
    """One export kind: its items, its filters and what its head adds."""

    kind: str
    about: str
    item: type[BaseModel]
    filters: tuple[str, ...]
    context: type[BaseModel] | None = None

    @property
    def document_name(self) -> str:
        return f"export-{self.kind}.schema.json"

    @property
    def line_name(self) -> str:
        return f"export-{self.kind}.line.schema.json"

    @cached_property
    def query(self) -> type[BaseModel]:
        fields: dict[str, Any] = {
            name: (
                _FILTERS[name][0],
                Field(
                    False if _FILTERS[name][0] is bool else None,
                    description=_FILTERS[name][1],
                ),
            )
            for name in self.filters
        }
        return create_model(
            f"{self._name}Query",
            __base__=_Strict,
            __doc__="The filters the export was asked for (null or false: unset).",
            **fields,
        )

    @cached_property
    def head(self) -> type[BaseModel]:
        """What every document of the kind carries (all but ``$schema``)."""
        bases = (_Head,) if self.context is None else (_Head, self.context)
        return create_model(
            f"{self._name}Head",
            __base__=bases,
            kind=(_const(self.kind), Field(description="The export kind.")),
            query=(self.query, ...),
        )

    @cached_property
    def document(self) -> type[BaseModel]:
        """The JSON export: the head, and every item in ``items``."""
        return create_model(
            f"{self._name}Document",
            __base__=self.head,
            __doc__=self.about,
            schema_id=self._schema_field(self.document_name),
            items=(list[self.item], ...),  # type: ignore[name-defined]
        )

    @cached_property
    def line(self) -> type[BaseModel]:
        """One NDJSON line: the head and one item, side by side."""
        clash = set(self.head.model_fields) & set(self.item.model_fields)
        if clash:
            raise TypeError(f"{self.kind} items would hide head fields {clash}")
        return create_model(
            f"{self._name}Line",
            __base__=(self.head, self.item),
            __doc__=self.about,
            schema_id=self._schema_field(self.line_name),
        )

    @property
    def _name(self) -> str:
        return f"{self.kind.title()}Export"

    @staticmethod
    def _schema_field(name: str) -> Any:
        return (
            _const(SCHEMA_BASE + name),
            Field(
                alias="$schema",
                title="$schema",
                description="The $id of this document's schema.",
            ),
        )


EXPORTS: dict[str, ExportFormat] = {
    f.kind: f
    for f in (
        ExportFormat(
            "events",
            "Stored events in store order (one deal's in its sequence order).",
            EventItem,
            ("deal", "as_of", "as_known_at"),
        ),
        ExportFormat(
            "deals",
            "Every deal's summary from the views, with its warnings.",
            DealItem,
            (*_SELECT, "at"),
            DealsContext,
        ),
        ExportFormat(
            "gaps",
            "Each deal's follow-up gaps.",
            GapsItem,
            ("deal", *_SELECT, "as_of", "as_known_at", "at"),
        ),
        ExportFormat(
            "stakeholders",
            "Each deal's stakeholder involvement.",
            StakeholdersItem,
            ("deal", *_SELECT, "as_of", "as_known_at", "at"),
        ),
        ExportFormat(
            "audit",
            "Each deal's loss audit (a pre-mortem for an open deal).",
            AuditItem,
            ("deal", "lost", *_SELECT, "since", "as_known_at", "at"),
        ),
        ExportFormat(
            "replay",
            "Each deal's coaching replay, step by step.",
            ReplayItem,
            ("deal", *_SELECT, "as_of", "as_known_at"),
        ),
        ExportFormat(
            "accounts",
            "Each account's won deals, last touch and neglect.",
            AccountNeglect,
            ("neglected", "at"),
            AccountsContext,
        ),
        ExportFormat(
            "backtest",
            "Per rule: how well its warnings predicted a loss.",
            RuleBacktest,
            ("since",),
            BacktestContext,
        ),
    )
}


def _export_schemas() -> dict[str, dict[str, Any]]:
    schemas = {}
    for f in EXPORTS.values():
        for name, model, form in (
            (f.document_name, f.document, "JSON document"),
            (f.line_name, f.line, "NDJSON line"),
        ):
            schema = _model_schema(model, f"dealtrail export {f.kind} ({form})")
            if f.item is EventItem:
                schema = _without_recorded_at(schema)
            schemas[name] = schema
    return schemas


def schema_documents() -> dict[str, str]:
    """File name -> content of every generated schema."""
    return dict(_schema_documents())


@cache
def _schema_documents() -> dict[str, str]:
    event_schema = TypeAdapter(AnyEvent).json_schema(mode="validation")
    event_schema["title"] = "dealtrail event (one native line, or a stored event)"
    timeline = {
        "title": "dealtrail timeline (timeline --format json)",
        "type": "object",
        "required": ["deal", "events"],
        "additionalProperties": False,
        "properties": {
            "deal": {"type": "string"},
            "events": {"type": "array", "items": {"$ref": "event.schema.json"}},
        },
    }
    schemas = {
        "event.schema.json": event_schema,
        IMPORT_LINE: import_line_schema(),
        "timeline.schema.json": timeline,
        **{
            name: _output_schema(model, title, added)
            for name, model, title, added in OUTPUTS
        },
        **_export_schemas(),
    }
    return {name: _document(name, schema) for name, schema in schemas.items()}


def schema_files() -> dict[str, str]:
    """Project path (schemas/NAME) -> content of every generated schema."""
    return {f"schemas/{name}": text for name, text in schema_documents().items()}


def _type_of(prop: dict[str, Any], defs: dict[str, Any]) -> str:
    if "anyOf" in prop:
        kinds = [_type_of(p, defs) for p in prop["anyOf"] if p.get("type") != "null"]
        return " or ".join(dict.fromkeys(kinds))
    if "$ref" in prop:
        target = defs[prop["$ref"].rsplit("/", 1)[-1]]
        return _type_of(target, defs)
    if prop.get("enum") == [r.value for r in Role]:
        return "a role (see Roles)"
    if "enum" in prop:
        return "one of " + ", ".join(f"`{v}`" for v in prop["enum"])
    if "const" in prop:
        return f"`{prop['const']}`"
    kind = prop.get("type", "any")
    if kind == "array":
        return f"list of {_type_of(prop.get('items', {}), defs)}"
    fmt = prop.get("format")
    names = {"date-time": "timestamp with offset", "date": "date (YYYY-MM-DD)"}
    if fmt in names:
        return names[fmt]
    if kind == "string" and "pattern" in prop and fmt is None:
        return "string"
    names = {"number": "decimal", "integer": "integer", "string": "text"}
    return names.get(kind, str(kind))


def events_markdown() -> str:
    """docs/events.md: the one public list of events, fields and roles."""
    out = [
        "# Event catalogue",
        "",
        "<!-- Generated by `python -m cli.generate` from engine/events.py; "
        "do not edit by hand. -->",
        "",
        "Every event is one JSON object per line in the native format, with",
        '`"type"` naming the event. All events share the common fields; each',
        "adds its own. Timestamps need a UTC offset (`Z` or `+01:00`): a naive",
        "timestamp is rejected. Unknown fields are rejected.",
        "",
        "## Common fields",
        "",
    ]
    out += _field_table(Event, include_type=False)
    out += ["", "## Roles", "", "A stakeholder's role is one of:", ""]
    out += [f"- `{role.value}`" for role in Role]
    for cls in CATALOGUE:
        out += ["", f"## {event_type_name(cls)}", ""]
        if cls.__doc__:
            out += [" ".join(cls.__doc__.split()), ""]
        own = _field_table(cls, include_type=False, skip=set(Event.model_fields))
        out += own if len(own) > 2 else ["No fields beyond the common ones."]
    return "\n".join(out) + "\n"


def _field_table(
    cls: type[Event], *, include_type: bool, skip: set[str] | None = None
) -> list[str]:
    schema = cls.model_json_schema()
    defs = schema.get("$defs", {})
    required = set(schema.get("required", []))
    rows = ["| field | type | required | meaning |", "|---|---|---|---|"]
    for name, prop in schema["properties"].items():
        if (skip and name in skip) or (name == "type" and not include_type):
            continue
        parts = [prop, *prop.get("anyOf", [])]
        limits = [p["maxLength"] for p in parts if "maxLength" in p]
        items = [p for p in parts if p.get("type") == "array"]
        limit = f" (at most {limits[0]} characters)" if limits else ""
        if items and "maxItems" in items[0]:
            each = items[0].get("items", {}).get("maxLength")
            of = f" of at most {each} characters" if each else ""
            limit = f" (at most {items[0]['maxItems']} items{of})"
        described = [p["description"] for p in parts if "description" in p]
        meaning = (described[0] if described else "").replace("|", "\\|") + limit
        needed = "yes" if name in required else "no"
        rows.append(
            f"| `{name}` | {_type_of(prop, defs)} | {needed} | {meaning.strip()} |"
        )
    return rows
