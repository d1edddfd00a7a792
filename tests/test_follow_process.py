"""`dealtrail projections follow` as a real process, stopped with Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from engine.application import DealTrail
from tests.factories import opened, touch


def test_follow_keeps_views_current_until_interrupted(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/s.db"
    with DealTrail(url) as app:
        app.record(opened())
    env = os.environ | {"DEALTRAIL_STORE": url}
    follower = subprocess.Popen(
        [sys.executable, "-m", "cli", "projections", "follow", "--poll", "0.05"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert follower.stderr is not None
        assert follower.stderr.readline() == "following the event log; Ctrl-C to stop\n"
        with DealTrail(url) as app:
            app.record(touch("t1"))
            deadline = time.monotonic() + 20
            while app.view_status().lag and time.monotonic() < deadline:
                time.sleep(0.05)
            assert app.view_status().position == 2
    finally:
        follower.send_signal(signal.SIGINT)
        _, rest = follower.communicate(timeout=20)
    assert follower.returncode == 0
    assert rest == "stopped at position 2\n"
