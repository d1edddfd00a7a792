"""Write (or with --check, verify) every generated file of the project.

python -m cli.generate          # rewrite schemas/ and generated docs
python -m cli.generate --check  # exit 1 if any is stale

``dealtrail schemas write|check`` does the same for the schemas alone.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

from cli.reference import cli_markdown
from engine.schemas import events_markdown, schema_files

ROOT = Path(__file__).resolve().parent.parent
# Every file of this pattern is generated: one no longer generated is stale.
SCHEMA_PATTERN = "schemas/*.schema.json"


def generated_files() -> dict[str, str]:
    return {
        **schema_files(),
        "docs/events.md": events_markdown(),
        "docs/cli.md": cli_markdown(),
    }


def find_stale(
    files: Mapping[str, str], root: Path, pattern: str | None = None
) -> list[str]:
    """Paths (relative to ``root``) of ``files`` that are missing or differ,
    then those matching ``pattern`` that are not among ``files``."""
    stale = [
        path
        for path, content in files.items()
        if not (root / path).is_file()
        or (root / path).read_text(encoding="utf-8") != content
    ]
    if pattern is not None:
        found = (p.relative_to(root).as_posix() for p in root.glob(pattern))
        stale += sorted(path for path in found if path not in files)
    return stale


def write_files(files: Mapping[str, str], root: Path) -> list[str]:
    """Write the ``files`` that are missing or differ; return their paths."""
    changed = find_stale(files, root)
    for path in changed:
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(files[path], encoding="utf-8")
    return changed


def stale_message(
    path: str, files: Mapping[str, str], command: str, *, shown: str | None = None
) -> str:
    """Why ``path`` (of ``find_stale``) is stale, naming it as ``shown``."""
    if path in files:
        return f"{shown or path} is stale; run: {command}"
    return f"{shown or path} is not generated any more; remove it"


def stale_files(root: Path = ROOT) -> list[str]:
    return find_stale(generated_files(), root, SCHEMA_PATTERN)


def main(argv: list[str]) -> int:
    files = generated_files()
    if "--check" in argv:
        stale = find_stale(files, ROOT, SCHEMA_PATTERN)
        for path in stale:
            print(stale_message(path, files, "python -m cli.generate"), file=sys.stderr)
        return 1 if stale else 0
    write_files(files, ROOT)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
