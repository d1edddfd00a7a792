"""A process that records touches on one deal until it is done or killed.

    python -m tests.harness.writer STORE_URL DEAL COUNT

It opens DEAL and records touches with ids t00000, t00001, ... one command
at a time, so a killed writer leaves the ids 0..k-1, each once. Run again,
it records the same facts, which the store recognises as already recorded.
"""

from __future__ import annotations

import sys

from engine.application import DealTrail
from tests.factories import opened, touch


def main(url: str, deal: str, count: int) -> None:
    with DealTrail(url) as app:
        app.record(opened(deal, account=f"{deal}-account"))
        for i in range(count):
            app.record(
                touch(
                    f"t{i:05d}",
                    deal,
                    occurred_at=f"2026-03-{2 + i % 20:02d}T10:{i % 60:02d}:00+01:00",
                )
            )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
