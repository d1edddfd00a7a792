"""Import options that a source's format would silently ignore are refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import cli

EXAMPLES = Path(__file__).parent.parent / "examples"
NATIVE = str(EXAMPLES / "01-slow-follow-up.jsonl")
SALESFORCE = str(EXAMPLES / "salesforce")


def run(store: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--store", f"sqlite:///{store}", "import", *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--timezone", "Europe/Oslo", NATIVE],
            f"--timezone applies to CSV files and Salesforce exports; {NATIVE} "
            "is read as native lines, whose times carry their offset",
        ),
        (
            ["--encoding", "cp1252", NATIVE],
            f"--encoding applies to CSV files and Salesforce exports; {NATIVE} "
            "is read as native lines, which are UTF-8",
        ),
        (
            ["--loss-reason-field", "Loss_Reason__c", SALESFORCE, NATIVE],
            f"--loss-reason-field applies to Salesforce exports; {NATIVE} is "
            "read as native lines",
        ),
    ],
)
def test_an_option_the_format_ignores_is_refused_and_nothing_is_written(
    tmp_path: Path, args: list[str], message: str
) -> None:
    store = tmp_path / "s.db"
    assert run(store, *args) == (1, "", f"error: {message}\n")
    assert not store.exists()


def test_options_that_apply_are_accepted(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    code, _, stderr = run(store, "--encoding", "UTF-8", NATIVE)
    assert code == 0, stderr
    code, _, stderr = run(store, "--timezone", "Europe/Oslo", SALESFORCE)
    assert code == 0, stderr
