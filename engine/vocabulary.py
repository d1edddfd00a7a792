"""The closed vocabularies of the event catalogue.

Kept apart from the events so the command line can offer them as choices
without loading the validation machinery.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Channel", "Direction", "Outcome", "Role"]


class Role(StrEnum):
    """What a stakeholder is to the deal."""

    DECISION_MAKER = "decision_maker"
    ECONOMIC_BUYER = "economic_buyer"
    CHAMPION = "champion"
    INFLUENCER = "influencer"
    TECHNICAL_EVALUATOR = "technical_evaluator"
    USER = "user"
    PROCUREMENT = "procurement"
    LEGAL = "legal"
    GATEKEEPER = "gatekeeper"
    BLOCKER = "blocker"
    OTHER = "other"


class Channel(StrEnum):
    EMAIL = "email"
    CALL = "call"
    MEETING = "meeting"
    DEMO = "demo"
    MESSAGE = "message"
    PROPOSAL = "proposal"
    SOCIAL = "social"
    EVENT = "event"
    OTHER = "other"


class Direction(StrEnum):
    """Who started the touch: the rep (outbound), the buyer (inbound), or
    neither side facing the other (internal, e.g. a deal review)."""

    OUTBOUND = "outbound"
    INBOUND = "inbound"
    INTERNAL = "internal"


class Outcome(StrEnum):
    CONNECTED = "connected"
    NO_ANSWER = "no_answer"
    VOICEMAIL = "voicemail"
    BOUNCED = "bounced"
    REPLIED = "replied"
    OTHER = "other"
