"""How events become stored bytes and back.

The stored state of an event is its own pydantic JSON (the native line object
plus ``recorded_at``), written with ``model_dump_json`` and read straight back
with ``model_validate_json``: no intermediate dicts, which is what keeps full
replays fast. The stored topic is the event's ``type``, not a module path, so
moving code never orphans stored events.

With encryption at rest on (engine/privacy.py), personal fields are sealed on
the way in and opened on the way out; without it, nothing changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from uuid import UUID

import orjson
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import (
    Cipher,
    Compressor,
    JSONTranscoder,
    Mapper,
    MapperDeserialisationError,
    StoredEvent,
)

from engine.errors import StoreError
from engine.events import EVENT_TYPES, Event

if TYPE_CHECKING:
    from engine.privacy import Privacy


@dataclass(frozen=True, slots=True)
class Recorded:
    """A stored event with its place in its deal's sequence (the envelope the
    event store needs around a catalogue event)."""

    originator_id: UUID
    originator_version: int
    event: Event

    @property
    def timestamp(self) -> datetime:
        recorded = self.event.recorded_at
        assert recorded is not None, "stored events always carry recorded_at"
        return recorded


class EventMapper(Mapper[UUID]):
    """Maps catalogue events to stored events using the models' own JSON."""

    # Set when a master key is configured (engine.privacy.attach).
    privacy: Privacy | None = None
    # Set when an encrypted store is opened without its key: why events
    # cannot be read or written (its stored bytes still can, e.g. by verify).
    sealed: str | None = None

    def __init__(
        self, compressor: Compressor | None = None, cipher: Cipher | None = None
    ) -> None:
        # The transcoder is unused: events serialise themselves.
        super().__init__(JSONTranscoder(), compressor=compressor, cipher=cipher)

    def to_stored_event(self, domain_event: DomainEventProtocol[UUID]) -> StoredEvent:
        assert isinstance(domain_event, Recorded)
        event = domain_event.event
        if self.sealed is not None:
            raise StoreError(self.sealed)
        if self.privacy is None:
            state = event.__pydantic_serializer__.to_json(event, exclude_none=True)
        else:
            state = self.privacy.seal(event)
        if self.compressor:
            state = self.compressor.compress(state)
        if self.cipher:
            state = self.cipher.encrypt(state)
        return StoredEvent(
            originator_id=domain_event.originator_id,
            originator_version=domain_event.originator_version,
            topic=domain_event.event.type,
            state=state,
        )

    def to_domain_event(self, stored_event: StoredEvent) -> Recorded:
        oid = stored_event.originator_id
        return Recorded(
            originator_id=oid if isinstance(oid, UUID) else UUID(oid),
            originator_version=stored_event.originator_version,
            event=self.decode(stored_event.topic, stored_event.state),
        )

    def deal_of(self, topic: str, state: bytes) -> str:
        """The deal key of a stored payload, without decoding the event."""
        if self.cipher:
            state = self.cipher.decrypt(state)
        if self.compressor:
            state = self.compressor.decompress(state)
        deal = orjson.loads(state)["deal"]
        assert isinstance(deal, str)
        return deal

    def decode(self, topic: str, state: bytes) -> Event:
        """Decode one stored payload into its catalogue event."""
        try:
            cls = EVENT_TYPES[topic]
        except KeyError:
            msg = f"stored event has unknown topic {topic!r}"
            raise MapperDeserialisationError(msg) from None
        if self.sealed is not None:
            raise StoreError(self.sealed)
        if self.cipher:
            state = self.cipher.decrypt(state)
        if self.compressor:
            state = self.compressor.decompress(state)
        if self.privacy is not None:
            return self.privacy.open(cls, state)
        return cls.model_validate_json(state)
