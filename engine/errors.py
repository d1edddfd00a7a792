"""The project's own error types; the CLI turns them into one-line messages."""

from __future__ import annotations

# How much of a value a message quotes (docs/security.md, "Hostile input").
QUOTED = 60


def quoted(value: object) -> str:
    """A value as a message quotes it: its repr, on one line, clipped, so that
    a huge or multi-line value cannot flood or forge the output."""
    text = repr(value)
    return text if len(text) <= QUOTED else text[: QUOTED - 4] + "...'"


class DealtrailError(Exception):
    """Base class of every error the application reports to its users."""


class InputError(DealtrailError):
    """Input that does not validate: a bad field, line or option value."""


class DomainError(DealtrailError):
    """A command that the deal's history does not allow."""


class UnknownDealError(DomainError):
    def __init__(self, deal: str) -> None:
        super().__init__(f"unknown deal {quoted(deal)}; open it first")
        self.deal = deal


class StoreError(DealtrailError):
    """The store cannot be reached or used."""


class ConflictError(StoreError):
    """Concurrent writers kept conflicting beyond the retry budget."""


class ImportRefused(InputError):
    """An import with bad lines or refused events; nothing was written."""

    def __init__(self, problems: list[str], count: int, what: str) -> None:
        plural = "s" if count != 1 else ""
        super().__init__(f"{count} {what}{plural}; nothing was imported")
        self.problems = problems
        self.count = count
