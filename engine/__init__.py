"""dealtrail's core: events, the Deal aggregate, stores and projections."""

__version__ = "0.1.0"
