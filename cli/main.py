"""The ``dealtrail`` command line: parse, call the application, render.

stdout carries data only; messages go to stderr. Errors are one line on
stderr with exit code 1 (2 for usage errors, as Click does).
"""

from __future__ import annotations

import functools
import re
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from engine.store import DEFAULT_STORE
from engine.vocabulary import Channel, Direction, Outcome, Role

if TYPE_CHECKING:
    from engine.application import DealTrail
    from engine.events import Event
    from engine.rules import RuleSet

F = TypeVar("F", bound=Callable[..., Any])

FORMATS = click.Choice(["table", "json"])


class Group(click.Group):
    """A group that turns the project's errors into one-line messages, and
    loads the commands that live in modules of their own when first needed."""

    def __init__(
        self, *args: Any, lazy_commands: dict[str, str] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        # Command name -> "module:attribute".
        self.lazy_commands = lazy_commands or {}

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = self.lazy_commands.get(cmd_name)
        if target is not None and cmd_name not in self.commands:
            import importlib

            module, _, attribute = target.partition(":")
            command = getattr(importlib.import_module(module), attribute)
            assert isinstance(command, click.Command)
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        from engine.errors import DealtrailError

        try:
            return super().invoke(ctx)
        except DealtrailError as e:
            click.echo(f"error: {e}", err=True)
            ctx.exit(1)

    def list_commands(self, ctx: click.Context) -> list[str]:
        # Keep the order commands are declared in: the workflow order.
        return list(dict.fromkeys([*self.commands, *self.lazy_commands]))


class State:
    """What the group passes its commands: the store, opened on first use."""

    def __init__(self, store: str) -> None:
        self.store = store
        self._app: DealTrail | None = None

    def app(self, *, create: bool = False, keyless: bool = False) -> DealTrail:
        """The store; ``keyless`` opens an encrypted one without its key, for
        commands that read only stored bytes (verify, doctor)."""
        if self._app is None:
            from engine.application import DealTrail
            from engine.errors import StoreError
            from engine.store import create_private_file, parse_store_url

            config = parse_store_url(self.store)
            path = config.sqlite_path
            if path is not None and not path.exists():
                if not create:
                    raise StoreError(
                        f"no store at {path}; run 'dealtrail init' or "
                        "'dealtrail import FILE' first (or pass --store)"
                    )
                create_private_file(path)
            warn_of_exposed_key_file()
            self._app = DealTrail(self.store, keyless=keyless)
        return self._app

    @contextmanager
    def writing(self, *, dry_run: bool = False) -> Iterator[DealTrail]:
        """The store to write to; one this command creates is removed again
        if the command fails, and a dry run never creates one."""
        from engine.store import parse_store_url

        path = parse_store_url(self.store).sqlite_path
        if path is None or path.exists():
            yield self.app()
            return
        if dry_run:
            from engine.application import DealTrail

            warn_of_exposed_key_file()
            with (
                tempfile.TemporaryDirectory() as scratch,
                DealTrail(f"sqlite:///{scratch}/dry-run.db") as app,
            ):
                yield app
            return
        try:
            yield self.app(create=True)
        except BaseException:
            self.close()
            for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                leftover.unlink(missing_ok=True)
            raise

    def close(self) -> None:
        if self._app is not None:
            self._app.close()
            self._app = None


pass_state = click.make_pass_decorator(State)


def warn_of_exposed_key_file() -> None:
    """Warn, on stderr, when the master key file is not private to its owner."""
    import os

    from engine.privacy import exposed_key_file

    problem = exposed_key_file(os.environ)
    if problem is not None:
        click.echo(f"warning: {problem}", err=True)


@click.group(
    cls=Group,
    context_settings={"help_option_names": ["-h", "--help"]},
    lazy_commands={
        "export": "cli.export:export",
        "schemas": "cli.export:schemas",
        "report": "cli.report:report",
        "doctor": "cli.doctor:doctor",
        "verify": "cli.verify:verify",
        "forget": "cli.privacy:forget",
    },
)
@click.option(
    "--store",
    envvar="DEALTRAIL_STORE",
    default=DEFAULT_STORE,
    show_default=True,
    metavar="URL",
    help="sqlite:///file.db or postgresql://user[:pw]@host[:port]/db "
    "(env DEALTRAIL_STORE).",
)
@click.version_option(package_name="dealtrail")
@click.pass_context
def cli(ctx: click.Context, store: str) -> None:
    """Record, replay and audit what happened on every deal.

    Every touchpoint, stakeholder change and stage change is an immutable
    event; timelines and analyses are rebuilt from them.
    """
    ctx.obj = State(store)


# Helpers


# Longer than any ISO 8601 time: refused before parsing, quoted clipped.
_LONGEST_TIME = 64


def parse_time(value: str | None, option: str) -> datetime | None:
    """Parse an aware ISO 8601 time given on the command line."""
    if value is None:
        return None
    from pydantic import TypeAdapter, ValidationError

    from engine.errors import InputError
    from engine.events import Timestamp

    if len(value) > _LONGEST_TIME:
        raise InputError(f"{option}: {not_a_time(value)}")
    try:
        parsed: datetime = TypeAdapter(Timestamp).validate_python(value)
    except ValidationError as e:
        error = e.errors(include_url=False)[0]
        problem = unparsed(error) or error["msg"].removeprefix("Value error, ")
        raise InputError(f"{option}: {problem}") from None
    return parsed


def not_a_time(value: object) -> str:
    from engine.errors import quoted

    return (
        f"{quoted(value)} is not a time; write ISO 8601 with an offset, "
        "e.g. 2026-03-02T10:00:00+01:00"
    )


def not_a_date(value: object) -> str:
    from engine.errors import quoted

    return f"{quoted(value)} is not a date (YYYY-MM-DD)"


def unparsed(error: Any) -> str | None:
    """Pydantic's words for a time or date it could not parse, in ours."""
    kind = str(error["type"])
    if kind.startswith("datetime_"):
        return not_a_time(error["input"])
    if kind.startswith("date_"):
        return not_a_date(error["input"])
    return None


def parse_date(value: str | None, option: str) -> date | None:
    """Parse a YYYY-MM-DD date given on the command line."""
    if value is None:
        return None
    from engine.errors import InputError

    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InputError(f"{option}: {not_a_date(value)}") from None


def build_event(cls: type[Event], names: dict[str, str], **fields: Any) -> Event:
    """Validate command-line values into an event, or raise InputError that
    names the offending option or argument as the user typed it."""
    from pydantic import ValidationError

    from engine.errors import InputError
    from engine.importing.native import describe_validation_error

    try:
        return cls.model_validate({k: v for k, v in fields.items() if v is not None})
    except ValidationError as e:
        field, problem = describe_validation_error(e)
        words = unparsed(e.errors(include_url=False)[0])
        if words is not None:
            more = e.error_count() - 1
            problem = words + (f" (and {plural(more, 'more problem')})" if more else "")
        if field == "(line)":
            # A rule across fields: name the options as the user types them.
            spelled = re.sub(
                r"\b[a-z_]+\b",
                lambda m: names.get(m[0], m[0]) if m[0] in cls.model_fields else m[0],
                problem,
            )
            raise InputError(spelled) from None
        top = field.split(".")[0]
        raise InputError(f"{names.get(top, field)}: {problem}") from None


def _spellings(command: click.Command) -> dict[str, str]:
    """Event field -> how the command line spells it (``--due``, ``CONTACT``)."""
    names = {"occurred_at": "--at", "deal": "KEY"}
    for param in command.params:
        if param.name is None:
            continue
        if isinstance(param, click.Option):
            names.setdefault(param.name, param.opts[0])
        else:
            names.setdefault(param.name, param.human_readable_name)
    return names


def plural(count: int, noun: str) -> str:
    """``1 deal``, ``2 deals``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def echo_json(data: Any) -> None:
    import orjson

    sys.stdout.buffer.write(
        orjson.dumps(data, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n"
    )
    sys.stdout.flush()


def recording(
    name: str, event_type: str, group: click.Group | None = None
) -> Callable[[F], F]:
    """Declare a command that records one ``event_type`` event on deal KEY.

    The decorated function receives the command's own options and returns
    the event's fields; this adds KEY, --at, --logged-at and --actor.
    """

    def decorate(fields_of: F) -> F:
        @(group or cli).command(name, help=fields_of.__doc__)
        @click.argument("key", metavar="KEY")
        @click.option(
            "--at",
            metavar="TIME",
            help="When it happened (ISO 8601 with offset; default now).",
        )
        @click.option(
            "--logged-at",
            metavar="TIME",
            help="When it was first logged, if earlier than now (e.g. in a CRM).",
        )
        @click.option(
            "--actor",
            envvar="DEALTRAIL_ACTOR",
            metavar="NAME",
            help="Who is recording it (env DEALTRAIL_ACTOR).",
        )
        @functools.wraps(fields_of)
        @pass_state
        def command(
            state: State,
            /,
            key: str,
            at: str | None,
            logged_at: str | None,
            actor: str | None,
            **options: Any,
        ) -> None:
            from engine.events import EVENT_TYPES

            now = datetime.now(UTC)
            event = build_event(
                EVENT_TYPES[event_type],
                _spellings(click.get_current_context().command),
                deal=key,
                occurred_at=now if at is None else at,
                # Recording live is logging: keep the time, so lag shows.
                logged_at=now if logged_at is None else logged_at,
                actor=actor,
                source="cli",
                **fields_of(**options),
            )
            with state.writing() as app:
                stored = app.record(event)
            if stored is None:
                click.echo(
                    f"{event_type} on {key} is already recorded; nothing changed",
                    err=True,
                )
            else:
                click.echo(f"recorded {event_type} on {key}", err=True)

        return command  # type: ignore[return-value]

    return decorate


def _choice(values: type[Any]) -> click.Choice[str]:
    return click.Choice([v.value for v in values])


# Store


@cli.command()
@pass_state
def init(state: State) -> None:
    """Create the store (tables, and the SQLite file) if it does not exist.

    With DEALTRAIL_KEY or DEALTRAIL_KEY_FILE set, encryption at rest is
    turned on for the store (as its first write with a key would).

    Example: dealtrail --store sqlite:///pipeline.db init
    """
    app = state.app(create=True)
    app.start_encryption()
    click.echo(f"store ready: {app.config.display} ({app.position()} events)", err=True)


IMPORT_FORMATS = ("native", "csv", "salesforce")


@cli.command("import")
@click.argument("sources", nargs=-1, required=True, metavar="SOURCE...")
@click.option(
    "--from",
    "source_format",
    type=click.Choice(IMPORT_FORMATS),
    help="Input format. By default a folder is a Salesforce data export, a "
    "*.csv file is CSV touchpoints and anything else native lines.",
)
@click.option(
    "--encoding",
    default="utf-8",
    show_default=True,
    help="Text encoding of CSV input (a UTF-8 BOM is always accepted), e.g. cp1252.",
)
@click.option(
    "--timezone",
    metavar="TZ",
    help="IANA time zone for CSV times that carry no offset, e.g. Europe/Paris.",
)
@click.option(
    "--loss-reason-field",
    metavar="COLUMN",
    help="Salesforce: the Opportunity column holding the loss reason "
    "(default LossReason), e.g. Loss_Reason__c.",
)
@click.option("--dry-run", is_flag=True, help="Validate and report; write nothing.")
@pass_state
def import_(
    state: State,
    sources: tuple[str, ...],
    source_format: str | None,
    encoding: str,
    timezone: str | None,
    loss_reason_field: str | None,
    dry_run: bool,
) -> None:
    """Import history: native line files (one JSON event per line; '-' for
    stdin), CSV touchpoints, or a Salesforce data export folder.

    Every line is checked first; any bad line means nothing is written.
    Re-importing the same events adds nothing.

    Example: dealtrail import examples/*.jsonl
    """
    from engine.errors import ImportRefused

    formats = {name: source_format or _guess_format(name) for name in sources}
    _check_import_options(formats, encoding, timezone, loss_reason_field)
    reading = ImportReading(encoding, _zone(timezone), loss_reason_field)
    progress = _progress_printer("events")
    try:
        with ExitStack() as stack, state.writing(dry_run=dry_run) as app:
            items = (
                item
                for name in sources
                for item in reading.items(name, formats[name], stack)
            )
            try:
                result = app.import_items(items, dry_run=dry_run, progress=progress)
            finally:
                if progress is not None:
                    click.echo("", err=True)  # end the progress line
    except ImportRefused as refused:
        for problem in refused.problems:
            click.echo(problem, err=True)
        if refused.count > len(refused.problems):
            click.echo(
                f"... and {refused.count - len(refused.problems)} more", err=True
            )
        raise
    verb = "would import" if dry_run else "imported"
    kinds = ", ".join(f"{n} {t}" for t, n in sorted(result.recorded.items()))
    skipped = ", ".join(f"{n} {why}" for why, n in sorted(reading.skipped.items()))
    kept = ", ".join(f"{n} {why}" for why, n in sorted(result.kept.items()))
    noted = ", ".join(f"{n} {why}" for why, n in sorted(reading.notes.items()))
    total = result.total_recorded
    click.echo(
        f"{verb} {total} event{'' if total == 1 else 's'}"
        + (f" ({kinds})" if kinds else "")
        + f" on {len(result.new_deals)} new and {len(result.existing_deals)}"
        f" existing deals; {result.unchanged} already recorded"
        + (f"; kept as first recorded: {kept}" if kept else "")
        + (f"; noted: {noted}" if noted else "")
        + (
            f"; skipped {reading.skipped.total()} "
            f"row{'' if reading.skipped.total() == 1 else 's'} ({skipped})"
            if skipped
            else ""
        ),
        err=True,
    )


def _check_import_options(
    formats: dict[str, str],
    encoding: str,
    timezone: str | None,
    loss_reason_field: str | None,
) -> None:
    """Refuse an option that would be silently ignored by a source's format."""
    import codecs

    from click.core import ParameterSource

    from engine.errors import InputError

    given = click.get_current_context().get_parameter_source("encoding")
    try:
        utf8 = codecs.lookup(encoding).name == "utf-8"
    except LookupError:
        utf8 = False
    for name, form in formats.items():
        if form == "native" and given is not ParameterSource.DEFAULT and not utf8:
            raise InputError(
                f"--encoding applies to CSV files and Salesforce exports; {name} "
                "is read as native lines, which are UTF-8"
            )
        if form == "native" and timezone is not None:
            raise InputError(
                f"--timezone applies to CSV files and Salesforce exports; {name} "
                "is read as native lines, whose times carry their offset"
            )
        if form != "salesforce" and loss_reason_field is not None:
            raise InputError(
                f"--loss-reason-field applies to Salesforce exports; {name} is "
                f"read as {'CSV touchpoints' if form == 'csv' else 'native lines'}"
            )


def _guess_format(name: str) -> str:
    if name != "-" and Path(name).is_dir():
        return "salesforce"
    return "csv" if name.lower().endswith(".csv") else "native"


def _zone(name: str | None) -> Any:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from engine.errors import InputError

    if name is None:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InputError(f"--timezone: unknown time zone {name[:60]!r}") from None


@dataclass(frozen=True)
class ImportReading:
    """How to read each import source, whatever its format."""

    encoding: str
    zone: Any
    loss_reason_field: str | None
    # Rows that became no event, by reason (Salesforce exports).
    skipped: Counter[str] = field(default_factory=Counter)
    # Rows imported with something left out, by what (Salesforce exports).
    notes: Counter[str] = field(default_factory=Counter)

    def items(self, name: str, source_format: str, stack: ExitStack) -> Iterator[Any]:
        if source_format == "salesforce":
            from engine.importing.salesforce import Bundle

            bundle = Bundle(
                Path(name),
                encoding=self.encoding,
                timezone=self.zone,
                loss_reason_field=self.loss_reason_field,
            )
            yield from bundle.items()
            self.skipped.update(bundle.skipped)
            self.notes.update(bundle.notes)
            return
        label = "<stdin>" if name == "-" else name
        stream = stack.enter_context(_open_input(name))
        if source_format == "csv":
            from engine.importing.csv_format import read_csv

            yield from read_csv(
                stream, label, encoding=self.encoding, timezone=self.zone
            )
        else:
            from engine.importing.native import iter_lines

            yield from iter_lines(stream, label)


@contextmanager
def _open_input(name: str) -> Iterator[Any]:
    from engine.errors import InputError

    if name == "-":
        yield sys.stdin.buffer
        return
    try:
        stream = open(name, "rb")  # noqa: SIM115 - closed below
    except OSError as e:
        raise InputError(f"{name}: {e.strerror}") from None
    with stream:
        yield stream


# Deals


@cli.group(cls=Group)
def deal() -> None:
    """List deals and show one."""


as_of_option = click.option(
    "--as-of", metavar="TIME", help="Only what had happened by TIME."
)
as_known_at_option = click.option(
    "--as-known-at", metavar="TIME", help="Only what was known at TIME."
)


def analysis_options(f: F) -> F:
    """--as-of, --as-known-at, --at, --rules and --format for one-deal views."""
    for option in reversed(
        [
            click.argument("key", metavar="KEY"),
            as_of_option,
            as_known_at_option,
            click.option(
                "--at",
                metavar="TIME",
                help="Evaluation time: open obligations breach by then "
                "(default --as-of, else now).",
            ),
            rules_option,
            click.option(
                "--format", "fmt", type=FORMATS, default="table", show_default=True
            ),
        ]
    ):
        f = option(f)
    return f


rules_option = click.option(
    "--rules",
    "rules_file",
    type=click.Path(dir_okay=False),
    envvar="DEALTRAIL_RULES",
    help="A rules TOML file overriding the built-in thresholds (env DEALTRAIL_RULES).",
)


def lost_deal_options(f: F) -> F:
    """The --lost filters and the evaluation options of a loss audit."""
    options = [
        click.option(
            "--since", metavar="DATE", help="With --lost: closed on or after DATE."
        ),
        click.option("--owner", help="With --lost: only this rep's deals."),
        click.option("--account", help="With --lost: only this account's deals."),
        click.option(
            "--at",
            metavar="TIME",
            help="Evaluation time (default: the close of a closed deal, else now).",
        ),
        as_known_at_option,
        rules_option,
    ]
    for option in reversed(options):
        f = option(f)
    return f


def check_lost_selection(
    key: str | None,
    lost_only: bool,
    *,
    lost_filters: bool,
    at: str | None,
    each: str,
) -> None:
    """A deal KEY or --lost, with the options that go with the one given.

    ``each`` says what --lost does with each deal, for the --at message.
    """
    from engine.errors import InputError

    if (key is None) == (not lost_only):
        raise InputError("give a deal KEY or --lost, not both and not neither")
    if key is not None and lost_filters:
        raise InputError("--since, --owner and --account go with --lost")
    if key is None and at is not None:
        raise InputError(f"--at goes with a deal KEY; --lost {each} at its close")


def load_rules(path: str | None) -> RuleSet:
    from engine.rules import load_rules as load

    return load(Path(path) if path else None)


def run_analysis(
    state: State,
    projection: Callable[..., Any],
    key: str,
    as_of: str | None,
    as_known_at: str | None,
    at: str | None,
    rules_file: str | None,
) -> Any:
    return state.app().analyse(
        key,
        projection,
        rules=load_rules(rules_file),
        at=parse_time(at, "--at"),
        as_of=parse_time(as_of, "--as-of"),
        as_known_at=parse_time(as_known_at, "--as-known-at"),
    )


def echo_analysis(analysis: Any, fmt: str, render_table: Callable[[Any], str]) -> None:
    if fmt == "json":
        echo_json(
            analysis.result.model_dump(mode="json") | {"position": analysis.position}
        )
    else:
        click.echo(render_table(analysis.result))


@deal.command("list")
@click.option("--status", type=click.Choice(["open", "won", "lost"]))
@click.option("--owner", help="Only deals this rep owns.")
@click.option("--account", help="Only deals of this account.")
@click.option(
    "--flag",
    "flags",
    multiple=True,
    type=click.Choice(["breach", "rubber-stamp", "dark", "pushy"]),
    help="Only deals showing this warning (repeatable: all must show).",
)
@click.option(
    "--at", metavar="TIME", help="Evaluation time for the flags (default now)."
)
@rules_option
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
@pass_state
def deal_list(
    state: State,
    status: str | None,
    owner: str | None,
    account: str | None,
    flags: tuple[str, ...],
    at: str | None,
    rules_file: str | None,
    fmt: str,
) -> None:
    """List deals with their stage, status and warnings, from the views.

    Example: dealtrail deal list --status open --flag breach --format json
    """
    from cli import render

    rules = load_rules(rules_file)
    evaluated_at = parse_time(at, "--at") or datetime.now(UTC)
    app = state.app()
    analysis = app.summaries(rules, status=status, owner=owner, account=account)
    listed = [(summary, summary.flags_at(evaluated_at)) for summary in analysis.result]
    listed = [(s, f) for s, f in listed if set(flags) <= set(f)]
    if fmt == "json":
        echo_json(
            {
                "deals": [s.model_dump(mode="json") | {"flags": f} for s, f in listed],
                "evaluated_at": evaluated_at.isoformat(),
                "position": analysis.position,
                "rules_hash": rules.rules_hash,
                "rules_version": rules.version,
            }
        )
    else:
        click.echo(render.summary_table(listed))


@deal.command("show")
@analysis_options
@pass_state
def deal_show(state: State, /, fmt: str, **query: Any) -> None:
    """Show deal KEY's state: stage, status, stakeholders, next step, promises.

    Example: dealtrail deal show ACME-2026-01 --as-of 2026-03-01T00:00:00Z
    """
    from cli import render
    from engine.projections.deal_state import deal_state

    echo_analysis(run_analysis(state, deal_state, **query), fmt, render.deal_state_text)


@cli.command()
@analysis_options
@pass_state
def gaps(state: State, /, fmt: str, **query: Any) -> None:
    """Show deal KEY's follow-up gaps: obligations, promises, streaks, dark periods.

    Example: dealtrail gaps ACME-2026-01 --at 2026-03-20T18:00:00Z --format json
    """
    from cli import render
    from engine.projections.gaps import follow_up_gaps

    echo_analysis(run_analysis(state, follow_up_gaps, **query), fmt, render.gaps_text)


@cli.command()
@analysis_options
@pass_state
def stakeholders(state: State, /, fmt: str, **query: Any) -> None:
    """Show who was involved in deal KEY, when, in what role, and the risks.

    Example: dealtrail stakeholders ACME-2026-01
    """
    from cli import render
    from engine.projections.stakeholders import stakeholder_involvement

    echo_analysis(
        run_analysis(state, stakeholder_involvement, **query),
        fmt,
        render.stakeholders_text,
    )


@cli.command()
@click.argument("key", metavar="[KEY]", required=False)
@click.option("--lost", "lost_only", is_flag=True, help="Audit every lost deal.")
@lost_deal_options
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "markdown"]),
    default="table",
    show_default=True,
    help="markdown is a report to paste into a document.",
)
@pass_state
def audit(
    state: State,
    key: str | None,
    lost_only: bool,
    since: str | None,
    owner: str | None,
    account: str | None,
    at: str | None,
    as_known_at: str | None,
    rules_file: str | None,
    fmt: str,
) -> None:
    """Audit deal KEY, or every lost deal: what went wrong, when, and the lesson.

    Every finding has a rule, a severity, the time it first became visible,
    the events that support it and a sentence a coach can read aloud. An
    open deal gets a pre-mortem as of the evaluation time.

    Examples: dealtrail audit --lost --since 2026-01-01 --format markdown;
    dealtrail audit ACME-2026-01 --format json
    """
    from cli import render

    check_lost_selection(
        key,
        lost_only,
        lost_filters=bool(since or owner or account),
        at=at,
        each="audits each",
    )
    rules = load_rules(rules_file)
    app = state.app()
    known = parse_time(as_known_at, "--as-known-at")
    if key is not None:
        one = app.audit(key, rules, at=parse_time(at, "--at"), as_known_at=known)
        audits, position = [one.result], one.position
    else:
        many = app.audits(
            rules,
            since=parse_date(since, "--since"),
            owner=owner,
            account=account,
            as_known_at=known,
        )
        audits, position = many.result, many.position
    if fmt == "json":
        documents = [a.model_dump(mode="json") for a in audits]
        if key is not None:
            echo_json(documents[0] | {"position": position})
        else:
            echo_json({"audits": documents, "position": position})
    elif fmt == "markdown":
        click.echo(render.audits_markdown(audits), nl=False)
    else:
        click.echo(render.audits_text(audits))


@cli.command()
@click.argument("key", metavar="KEY")
@click.option("--until", metavar="TIME", help="Stop the walk at TIME.")
@as_known_at_option
@click.option(
    "--interactive",
    is_flag=True,
    help="Step with Enter or n, back with p, quit with q (when stdin is a terminal).",
)
@rules_option
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
@pass_state
def replay(
    state: State,
    key: str,
    until: str | None,
    as_known_at: str | None,
    interactive: bool,
    rules_file: str | None,
    fmt: str,
) -> None:
    """Replay deal KEY step by step for a coaching session.

    Each step shows the event, what changed in the deal, the findings that
    became visible or were cleared, and the coaching notes pinned to it.

    Example: dealtrail replay ACME-2026-01 --interactive
    """
    from cli import render

    analysis = state.app().replay(
        key,
        load_rules(rules_file),
        until=parse_time(until, "--until"),
        as_known_at=parse_time(as_known_at, "--as-known-at"),
    )
    walk = analysis.result
    if fmt == "json":
        echo_json(walk.model_dump(mode="json") | {"position": analysis.position})
        return
    pages = [render.replay_step_text(step) for step in walk.steps]
    if not (interactive and sys.stdin.isatty()):
        click.echo(render.replay_header(walk))
        for page in pages:
            click.echo()
            click.echo(page)
        return
    _step_through(render.replay_header(walk), pages)


def _step_through(header: str, pages: list[str]) -> None:
    """Show one page at a time: Enter or n forward, p back, q quits."""
    click.echo(header)
    index = 0
    while pages:
        click.echo()
        click.echo(f"-- step {index + 1} of {len(pages)} --")
        click.echo(pages[index])
        answer = (
            click.prompt(
                "[Enter] next, p previous, q quit",
                default="",
                show_default=False,
                prompt_suffix=" ",
            )
            .strip()
            .lower()
        )
        if answer == "q":
            return
        if answer == "p":
            index = max(0, index - 1)
        elif index == len(pages) - 1:
            click.echo("(end of the timeline)")
            return
        else:
            index += 1


@cli.command()
@click.option(
    "--neglected", is_flag=True, help="Only accounts the rules call neglected."
)
@click.option("--at", metavar="TIME", help="Evaluation time (default now).")
@rules_option
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
@pass_state
def accounts(
    state: State, neglected: bool, at: str | None, rules_file: str | None, fmt: str
) -> None:
    """Show each account's won deals, last touch and days since: neglect.

    Example: dealtrail accounts --neglected
    """
    from cli import render

    analysis = state.app().accounts(load_rules(rules_file), at=parse_time(at, "--at"))
    report = analysis.result
    if neglected:
        report = report.model_copy(
            update={"accounts": [a for a in report.accounts if a.neglected]}
        )
    if fmt == "json":
        echo_json(report.model_dump(mode="json") | {"position": analysis.position})
    else:
        click.echo(render.accounts_text(report))


@cli.command()
@rules_option
@click.option("--since", metavar="DATE", help="Only deals closed on or after DATE.")
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
@pass_state
def backtest(state: State, rules_file: str | None, since: str | None, fmt: str) -> None:
    """Run the rules over every closed deal: which warnings predict a loss.

    Per rule: on how many lost and won deals it fired, its precision for
    predicting a loss, and the median lead time before the close.

    Example: dealtrail backtest --rules team.toml --format json
    """
    from cli import render

    analysis = state.app().backtest(
        load_rules(rules_file), since=parse_date(since, "--since")
    )
    if fmt == "json":
        echo_json(
            analysis.result.model_dump(mode="json") | {"position": analysis.position}
        )
    else:
        click.echo(render.backtest_text(analysis.result))


@cli.group(cls=Group)
def projections() -> None:
    """Inspect, rebuild and follow the materialised views."""


@projections.command("status")
@rules_option
@pass_state
def projections_status(state: State, rules_file: str | None) -> None:
    """Show how far the views are behind the event log.

    Example: dealtrail projections status
    """
    rules = load_rules(rules_file)
    status = state.app().view_status()
    click.echo(
        f"position {status.position} of {status.head} (lag {status.lag}); "
        f"rules {status.rules_hash or 'none'} "
        f"({views_rules(status.rules_hash, rules.rules_hash)})"
    )


def views_rules(built: str | None, given: str) -> str:
    """Whether the views were built with the rules given."""
    if built is None:
        return "views not built yet"
    return "current" if built == given else "other rules"


@projections.command("rebuild")
@rules_option
@click.option("--batch-size", default=1000, show_default=True, type=click.IntRange(1))
@pass_state
def projections_rebuild(state: State, rules_file: str | None, batch_size: int) -> None:
    """Rebuild the views from the start of the event log: one ordered scan,
    then any events recorded meanwhile in batches.

    Example: dealtrail projections rebuild --rules team.toml
    """
    progress = _progress_printer()
    status = state.app().update_views(
        load_rules(rules_file), rebuild=True, batch_size=batch_size, progress=progress
    )
    if progress is not None:
        click.echo("", err=True)  # end the progress line
    click.echo(f"rebuilt views to position {status.position}", err=True)


@projections.command("follow")
@rules_option
@click.option(
    "--poll",
    default=1.0,
    show_default=True,
    type=float,
    help="Seconds between polls (SQLite).",
)
@pass_state
def projections_follow(state: State, rules_file: str | None, poll: float) -> None:
    """Keep the views current as events arrive, until interrupted (Ctrl-C).

    Example: dealtrail --store postgresql://app@db/crm projections follow
    """
    import threading

    stop = threading.Event()
    rules = load_rules(rules_file)
    click.echo("following the event log; Ctrl-C to stop", err=True)
    try:
        state.app().follow_views(
            rules, stop, poll_seconds=poll, progress=_progress_printer()
        )
    except KeyboardInterrupt:
        stop.set()
    click.echo(f"stopped at position {state.app().view_status().position}", err=True)


def _progress_printer(unit: str = "position") -> Callable[[int, int], None] | None:
    """Progress on stderr, only when it is a terminal."""
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int) -> None:
        if unit == "position":
            click.echo(f"\rposition {done} of {total}", err=True, nl=False)
        elif total:
            click.echo(f"\r{done} of {total} {unit} decided", err=True, nl=False)
        else:
            click.echo(f"\r{done} {unit} read", err=True, nl=False)

    return show


# Recording commands, in the order a deal lives them.


@recording("open", "DealOpened")
@click.option("--name", required=True, help="The deal's name.")
@click.option("--account", required=True, help="The buying organisation.")
@click.option("--owner", required=True, help="The rep who owns the deal.")
@click.option("--stage", required=True, help="The pipeline stage it starts in.")
@click.option("--amount", help="Expected value.")
@click.option("--currency", help="ISO 4217 code, e.g. EUR.")
@click.option("--expected-close", metavar="DATE", help="Expected close date.")
@click.option("--timezone", metavar="TZ", help="IANA time zone, e.g. Europe/Paris.")
def open_(**options: Any) -> dict[str, Any]:
    """Open deal KEY.

    Example: dealtrail open ACME-1 --name "ACME renewal" --account ACME
    --owner sam --stage discovery --timezone Europe/Paris
    """
    return options


@recording("update", "DealUpdated")
@click.option("--name")
@click.option("--owner")
@click.option("--amount")
@click.option("--currency")
@click.option("--expected-close", metavar="DATE", help="A new close date (a slip).")
def update(**options: Any) -> dict[str, Any]:
    """Change headline facts of deal KEY.

    Example: dealtrail update ACME-1 --expected-close 2026-07-31
    """
    return options


@recording("stage", "StageChanged")
@click.argument("stage")
def stage(stage: str) -> dict[str, Any]:
    """Move deal KEY to STAGE.

    Example: dealtrail stage ACME-1 proposal
    """
    return {"stage": stage}


@recording("log", "TouchpointLogged")
@click.option(
    "--channel", type=_choice(Channel), required=True, help="How the sides met."
)
@click.option(
    "--direction", type=_choice(Direction), required=True, help="Who reached out."
)
@click.option(
    "--with",
    "participants",
    multiple=True,
    metavar="CONTACT",
    help="A buyer-side contact on the touch (repeatable).",
)
@click.option(
    "--id", "touchpoint", help="Touchpoint id (default: derived from the touch)."
)
@click.option("--rep", help="The seller-side person.")
@click.option("--summary", help="What was said or done.")
@click.option("--outcome", type=_choice(Outcome))
@click.option("--duration", "duration_minutes", type=int, help="Minutes.")
def log(**options: Any) -> dict[str, Any]:
    """Log a touchpoint on deal KEY.

    Example: dealtrail log ACME-1 --channel call --direction outbound
    --with dana@acme.example --outcome no_answer --at 2026-03-02T10:00:00+01:00
    """
    options["participants"] = list(options["participants"])
    return options


@cli.group(cls=Group)
def stakeholder() -> None:
    """Record who is involved on the buyer side."""


@recording("add", "StakeholderJoined", group=stakeholder)
@click.argument("contact")
@click.option("--role", type=_choice(Role), required=True)
@click.option("--name", help="The person's name.")
@click.option("--title", help="Their job title.")
def stakeholder_add(**options: Any) -> dict[str, Any]:
    """Add CONTACT (email or CRM id) to deal KEY with a role.

    Example: dealtrail stakeholder add ACME-1 dana@acme.example --role champion
    """
    return options


@recording("role", "StakeholderRoleChanged", group=stakeholder)
@click.argument("contact")
@click.argument("role", type=_choice(Role))
def stakeholder_role(**options: Any) -> dict[str, Any]:
    """Change the ROLE of CONTACT on deal KEY.

    Example: dealtrail stakeholder role ACME-1 dana@acme.example decision_maker
    """
    return options


@recording("leave", "StakeholderLeft", group=stakeholder)
@click.argument("contact")
@click.option("--reason")
def stakeholder_leave(**options: Any) -> dict[str, Any]:
    """Record that CONTACT is no longer involved in deal KEY.

    Example: dealtrail stakeholder leave ACME-1 dana@acme.example --reason "left ACME"
    """
    return options


@recording("note", "StakeholderPriorityNoted", group=stakeholder)
@click.argument("contact")
@click.argument("priority")
def stakeholder_note(**options: Any) -> dict[str, Any]:
    """Note what CONTACT is measured on (their PRIORITY or KPI).

    Example: dealtrail stakeholder note ACME-1 dana@acme.example "cut churn by 5%"
    """
    return options


@cli.group("next-step", cls=Group)
def next_step() -> None:
    """Set or clear the deal's agreed next step."""


@recording("set", "NextStepSet", group=next_step)
@click.argument("description")
@click.option("--due", required=True, metavar="DATE", help="When it is due.")
@click.option("--owner", help="Who owns it.")
def next_step_set(**options: Any) -> dict[str, Any]:
    """Set the next step of deal KEY to DESCRIPTION.

    Example: dealtrail next-step set ACME-1 "Security review call" --due 2026-03-10
    """
    return options


@recording("clear", "NextStepCleared", group=next_step)
@click.option("--reason")
def next_step_clear(**options: Any) -> dict[str, Any]:
    """Clear the next step of deal KEY.

    Example: dealtrail next-step clear ACME-1 --reason done
    """
    return options


@recording("promise", "FollowUpPromised")
@click.option("--due", required=True, metavar="DATE", help="The promised date.")
@click.option("--promise", help="What was promised.")
def promise(**options: Any) -> dict[str, Any]:
    """Record a follow-up the rep promised the buyer on deal KEY.

    Example: dealtrail promise ACME-1 --due 2026-03-04 --promise "pricing options"
    """
    return options


@recording("request", "FollowUpRequested")
@click.option("--by", required=True, metavar="CONTACT", help="Who asked.")
@click.option(
    "--not-before", required=True, metavar="TIME", help="Contact them at or after."
)
@click.option("--note")
def request(**options: Any) -> dict[str, Any]:
    """Record that the buyer asked to be contacted at or after a time.

    Example: dealtrail request ACME-1 --by dana@acme.example
    --not-before 2026-03-16T09:00:00+01:00
    """
    return options


@recording("coach", "CoachingNoteAdded")
@click.argument("note")
@click.option("--author", required=True, help="The coach.")
@click.option("--about", metavar="TOUCHPOINT", help="Pin the note to a touchpoint.")
def coach(**options: Any) -> dict[str, Any]:
    """Add a coaching NOTE to deal KEY.

    Example: dealtrail coach ACME-1 "Name a deadline next time" --author kim --about t03
    """
    return options


@recording("won", "DealWon")
@click.option("--amount", help="The final amount.")
@click.option("--note")
def won(**options: Any) -> dict[str, Any]:
    """Record that deal KEY was won.

    Example: dealtrail won ACME-1 --amount 48000
    """
    return options


@recording("lost", "DealLost")
@click.option("--reason", required=True, help="Why it was lost.")
@click.option("--competitor", help="Who won it instead.")
@click.option("--note")
def lost(**options: Any) -> dict[str, Any]:
    """Record that deal KEY was lost, and why.

    Example: dealtrail lost ACME-1 --reason "chose a competitor" --competitor Initech
    """
    return options


@recording("reopen", "DealReopened")
@click.option("--reason")
def reopen(**options: Any) -> dict[str, Any]:
    """Reopen closed deal KEY.

    Example: dealtrail reopen ACME-1 --reason "budget came back"
    """
    return options


@recording("correct", "TouchpointCorrected")
@click.argument("touchpoint")
@click.option(
    "--occurred-at",
    "touchpoint_occurred_at",
    metavar="TIME",
    help="When the touchpoint really happened.",
)
@click.option("--channel", type=_choice(Channel))
@click.option("--direction", type=_choice(Direction))
@click.option(
    "--with",
    "participants",
    multiple=True,
    metavar="CONTACT",
    help="The full corrected participant list (repeatable).",
)
@click.option("--rep")
@click.option("--summary")
@click.option("--outcome", type=_choice(Outcome))
@click.option("--duration", "duration_minutes", type=int, help="Minutes.")
def correct(**options: Any) -> dict[str, Any]:
    """Correct fields of TOUCHPOINT on deal KEY; only the options given change.

    Example: dealtrail correct ACME-1 t03 --channel meeting
    """
    options["participants"] = list(options["participants"]) or None
    return options


@recording("retract", "TouchpointRetracted")
@click.argument("touchpoint")
@click.option("--reason", required=True, help="Why it no longer counts.")
def retract(**options: Any) -> dict[str, Any]:
    """Retract TOUCHPOINT on deal KEY (it was logged in error).

    Example: dealtrail retract ACME-1 t07 --reason "logged on the wrong deal"
    """
    return options


# Reading


@cli.command()
@click.argument("key", metavar="KEY")
@as_of_option
@as_known_at_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "jsonl"]),
    default="table",
    show_default=True,
    help="jsonl prints native lines, in recording order, that 'import' reads back.",
)
@pass_state
def timeline(
    state: State, key: str, as_of: str | None, as_known_at: str | None, fmt: str
) -> None:
    """Show deal KEY's events in the order they happened.

    Example: dealtrail timeline ACME-1 --as-known-at 2026-03-05T18:00:00Z
    """
    from cli import render
    from engine.importing.native import dump_line

    entries = state.app().timeline(
        key,
        as_of=parse_time(as_of, "--as-of"),
        as_known_at=parse_time(as_known_at, "--as-known-at"),
        recording_order=fmt == "jsonl",
    )
    if fmt == "json":
        echo_json(
            {
                "deal": key,
                "events": [
                    r.event.model_dump(mode="json", exclude_none=True) for r in entries
                ],
            }
        )
    elif fmt == "jsonl":
        out = sys.stdout.buffer
        for r in entries:
            out.write(dump_line(r.event))
        out.flush()
    else:
        click.echo(render.timeline_table(entries))


def main() -> None:
    cli(prog_name="dealtrail")
