"""Write (or with --check, verify) every generated file of the project.

python -m cli.generate          # rewrite schemas/ and generated docs
python -m cli.generate --check  # exit 1 if any is stale
"""

from __future__ import annotations

import sys
from pathlib import Path

from cli.reference import cli_markdown
from engine.schemas import events_markdown, schema_files

ROOT = Path(__file__).resolve().parent.parent


def generated_files() -> dict[str, str]:
    return {
        **schema_files(),
        "docs/events.md": events_markdown(),
        "docs/cli.md": cli_markdown(),
    }


def stale_files(root: Path = ROOT) -> list[str]:
    return [
        path
        for path, content in generated_files().items()
        if not (root / path).exists() or (root / path).read_text() != content
    ]


def main(argv: list[str]) -> int:
    if "--check" in argv:
        stale = stale_files()
        for path in stale:
            print(f"{path} is stale; run: python -m cli.generate", file=sys.stderr)
        return 1 if stale else 0
    for path, content in generated_files().items():
        target = ROOT / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
