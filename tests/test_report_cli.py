"""The report command, on the example stories."""

from __future__ import annotations

import io
import os
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from PIL import Image

from cli.main import cli
from engine.application import DealTrail
from engine.privacy import new_master_key
from tests.conftest import Clock
from tests.factories import EXAMPLES, import_examples, lost, opened

GOLDEN = Path(__file__).parent / "golden" / "report"
RUNNER = CliRunner()
LOST = [
    "BRIGHTWATER-2026-01",
    "CALLOWAY-2026-05",
    "KESTREL-2026-02",
    "PRAIRIE-2026-04",
    "VANDIJK-2026-02",
    "VOGEL-2026-03",
]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Recorded at the same time as the golden pages' store, so pages match.
    path = tmp_path_factory.mktemp("report-cli") / "examples.db"
    clock = Clock(datetime(2026, 12, 1, 12, 0, tzinfo=UTC))
    with DealTrail(f"sqlite:///{path}", clock=clock) as app:
        import_examples(app)
    return path


def run(store: Path, *args: str) -> Result:
    return RUNNER.invoke(
        cli, ["--store", f"sqlite:///{store}", "report", *args], catch_exceptions=False
    )


def test_report_key_writes_the_reviewed_page(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "brightwater.html"
    result = run(store, "BRIGHTWATER-2026-01", "--out", str(out))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr == f"wrote {out}\n"
    assert out.read_bytes() == (GOLDEN / "BRIGHTWATER-2026-01.html").read_bytes()


def test_report_lost_writes_an_index_and_a_page_per_lost_deal(
    store: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "reports"
    result = run(store, "--lost", "--out", f"{folder}/")
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [f"{key}.html" for key in LOST] + ["index.html"]
    )
    index = (folder / "index.html").read_text()
    for key in LOST:
        assert f'<a href="{key}.html">{key}</a>' in index
        page = (folder / f"{key}.html").read_text()
        assert '<nav><a href="index.html">All deals</a></nav>' in page
    assert "Lesson" in index
    assert "Strike while the iron is hot" in index


def test_report_lost_takes_the_audit_filters(store: Path, tmp_path: Path) -> None:
    result = run(store, "--lost", "--owner", "tom.hale", "--out", str(tmp_path))
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "BRIGHTWATER-2026-01.html",
        "index.html",
    ]
    assert (
        "<h1>Lost deals, owner tom.hale</h1>" in (tmp_path / "index.html").read_text()
    )


def test_report_lost_leaves_out_deals_not_yet_known_at_as_known_at(
    tmp_path: Path,
) -> None:
    path = tmp_path / "two.db"
    clock = Clock(datetime(2026, 4, 2, tzinfo=UTC))
    with DealTrail(f"sqlite:///{path}", clock=clock) as app:
        for key in ("EARLY-1", "LATE-1"):
            app.record(opened(key))
            app.record(lost(key))
            clock.advance(days=30)
    folder = tmp_path / "reports"
    result = run(
        path, "--lost", "--as-known-at", "2026-04-03T00:00:00Z", "--out", str(folder)
    )
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["EARLY-1.html", "index.html"]


def test_new_files_are_private_and_replaced_ones_keep_their_mode(
    store: Path, tmp_path: Path
) -> None:
    page, picture = tmp_path / "k.html", tmp_path / "k.png"
    folder = tmp_path / "reports"
    args = ("KESTREL-2026-02", "--out", str(page), "--png", str(picture))
    assert run(store, *args).exit_code == 0
    assert run(store, "--lost", "--out", str(folder)).exit_code == 0
    for written in [page, picture, *folder.iterdir()]:
        assert written.stat().st_mode & 0o777 == 0o600, written
    page.chmod(0o640)
    assert run(store, *args).exit_code == 0
    assert page.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.html", "k.png", "reports"]


def test_an_unknown_deal_is_a_one_line_error_and_writes_nothing(
    store: Path, tmp_path: Path
) -> None:
    out = tmp_path / "nope.html"
    result = run(store, "NOPE-1", "--out", str(out))
    assert result.exit_code == 1
    assert result.stderr == "error: unknown deal 'NOPE-1'; open it first\n"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "give a deal KEY or --lost, not both and not neither"),
        (("BRIGHTWATER-2026-01",), "give --out FILE.html, --png FILE or both"),
        (("--lost", "--png", "x.png", "--out", "x"), "--png goes with a deal KEY"),
        (("--lost",), "give --out FOLDER for the pages of the lost deals"),
        (
            ("BRIGHTWATER-2026-01", "--owner", "x", "--out", "x.html"),
            "--since, --owner and --account go with --lost",
        ),
        (
            ("BRIGHTWATER-2026-01", "--out", "no/such/folder/x.html"),
            "--out: folder no/such/folder does not exist",
        ),
        (
            ("BRIGHTWATER-2026-01", "--out", "same.html", "--png", "./same.html"),
            "--out and --png name the same file",
        ),
        # --out FOLDER may be new, but not the folder it goes in.
        (
            ("--lost", "--out", "no/such/folder/"),
            "--out: folder no/such does not exist",
        ),
        (
            ("BRIGHTWATER-2026-01", "--at", "2026-01-01", "--out", "x.html"),
            "--at: '2026-01-01' is a date without a time; give a time with a UTC "
            "offset, e.g. 2026-01-01T09:00:00Z",
        ),
    ],
)
def test_bad_options_are_one_line_errors(
    store: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: tuple[str, ...],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    result = run(store, *args)
    assert result.exit_code == 1
    assert result.stderr == f"error: {message}\n"
    assert list(tmp_path.iterdir()) == []


def test_png_writes_the_same_picture_every_time(store: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "one.png", tmp_path / "two.png"
    for out in (first, second):
        result = run(store, "KESTREL-2026-02", "--png", str(out))
        assert result.exit_code == 0, result.stderr
    picture = first.read_bytes()
    assert picture == second.read_bytes()
    image = Image.open(io.BytesIO(picture))
    assert (image.format, image.width) == ("PNG", 1600)
    assert b"matplotlib" not in picture
    assert [p.name for p in sorted(tmp_path.iterdir())] == ["one.png", "two.png"]


def test_report_lost_makes_its_folder_but_not_the_folders_above(
    store: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "no" / "such"
    result = run(store, "--lost", "--out", f"{missing}/")
    assert result.exit_code == 1
    assert result.stderr == f"error: --out: folder {tmp_path / 'no'} does not exist\n"
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "file").write_text("")
    result = run(store, "--lost", "--out", str(tmp_path / "file" / "reports"))
    assert (
        result.stderr == f"error: --out: {tmp_path / 'file'} is a file, not a folder\n"
    )
    result = run(store, "--lost", "--out", str(tmp_path / "reports"))
    assert result.exit_code == 0, result.stderr
    assert len(list((tmp_path / "reports").iterdir())) == len(LOST) + 1


def snapshot(folder: Path) -> dict[str, tuple[int, bytes | None]]:
    """Every entry of ``folder``: its mode and, for a file, its bytes."""
    return {
        p.name: (p.stat().st_mode, p.read_bytes() if p.is_file() else None)
        for p in folder.iterdir()
    }


def test_report_lost_writes_nothing_when_a_page_cannot_be_written(
    store: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "reports"
    folder.mkdir()
    (folder / "BRIGHTWATER-2026-01.html").write_text("last week's page")
    (folder / "BRIGHTWATER-2026-01.html").chmod(0o640)
    (folder / "PRAIRIE-2026-04.html").mkdir()  # in the way of a later page
    before = snapshot(folder)
    result = run(store, "--lost", "--out", str(folder))
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: cannot write {folder / 'PRAIRIE-2026-04.html'}: it is a folder; "
        "nothing was written\n"
    )
    assert snapshot(folder) == before


@pytest.mark.parametrize("links", [True, False], ids=["hard-links", "no-hard-links"])
@pytest.mark.parametrize("fails", ["VANDIJK-2026-02.html", "index.html"])
def test_a_page_that_fails_to_move_into_place_undoes_the_others(
    store: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fails: str,
    links: bool,
) -> None:
    folder = tmp_path / "reports"
    assert run(store, "--lost", "--out", str(folder)).exit_code == 0
    for page in folder.iterdir():
        page.write_text(f"old {page.name}")
    (folder / "BRIGHTWATER-2026-01.html").chmod(0o644)
    (folder / "KESTREL-2026-02.html").unlink()  # a page the command adds
    before = snapshot(folder)
    replace, link = os.replace, os.link

    def failing_replace(source: str | Path, target: str | Path) -> None:
        if Path(target).name == fails and Path(source).name.endswith(".tmp"):
            raise OSError(5, "Input/output error")
        replace(source, target)

    def no_link(*args: object, **kwargs: object) -> None:
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(os, "replace", failing_replace)
    if not links:
        monkeypatch.setattr(os, "link", no_link)
    result = run(store, "--lost", "--out", str(folder))
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: cannot write {folder / fails}: Input/output error; "
        "nothing was written\n"
    )
    assert snapshot(folder) == before
    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(os, "link", link)
    # A folder the failed command made is gone again.
    fresh = tmp_path / "fresh"
    monkeypatch.setattr(os, "replace", failing_replace)
    assert run(store, "--lost", "--out", str(fresh)).exit_code == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reports"]


def test_a_picture_that_cannot_be_written_leaves_the_page_as_it_was(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    page, picture = tmp_path / "k.html", tmp_path / "k.png"
    page.write_text("old page")
    replace = os.replace

    def failing_replace(source: str | Path, target: str | Path) -> None:
        if Path(target) == picture:
            raise OSError(28, "No space left on device")
        replace(source, target)

    monkeypatch.setattr(os, "replace", failing_replace)
    result = run(store, "KESTREL-2026-02", "--out", str(page), "--png", str(picture))
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: cannot write {picture}: No space left on device; nothing was written\n"
    )
    assert [p.name for p in tmp_path.iterdir()] == ["k.html"]
    assert page.read_text() == "old page"


def test_forgotten_contacts_read_as_their_own_pseudonyms_in_the_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEALTRAIL_KEY", new_master_key())
    monkeypatch.delenv("DEALTRAIL_KEY_FILE", raising=False)
    store = tmp_path / "s.db"
    story = EXAMPLES / "01-slow-follow-up.jsonl"
    assert (
        RUNNER.invoke(
            cli, ["--store", f"sqlite:///{store}", "import", str(story)]
        ).exit_code
        == 0
    )
    pseudonyms = []
    for contact in ("helen.marsh@brightwater.example", "raj.patel@brightwater.example"):
        forgot = RUNNER.invoke(
            cli, ["--store", f"sqlite:///{store}", "forget", contact]
        )
        assert forgot.exit_code == 0, forgot.stderr
        found = re.search(r"now read as (erased-[0-9a-f]{16});", forgot.stdout)
        assert found is not None, forgot.stdout
        pseudonyms.append(found.group(1))
    helen, raj = pseudonyms
    out = tmp_path / "b.html"
    result = run(store, "BRIGHTWATER-2026-01", "--out", str(out))
    assert result.exit_code == 0, result.stderr
    page = out.read_text()
    assert "Helen Marsh" not in page
    assert "Raj Patel" not in page
    # Lanes, tooltips, aria-labels and the replay's engaged list tell the
    # two apart; free text (titles, summaries) reads [erased].
    assert f"<title>{helen}: decision maker, [erased]</title>" in page
    assert f"<title>{raj}: champion, [erased]</title>" in page
    assert f'aria-label="{raj} joined as champion, [erased], ' in page
    # Key ids are random, so the two sort either way in a list of people.
    assert re.search(f'aria-label="[^"]*with [^"]*{helen}[^"]*"', page)
    assert f'"{helen} (decision maker): last engaged ' in page
    assert f'"{raj} (champion): last engaged ' in page
    for named in ("[erased] (", "to [erased]", "from [erased]", "[erased] joined"):
        assert named not in page, named
    assert "[erased]" in page
