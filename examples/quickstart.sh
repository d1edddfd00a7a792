#!/usr/bin/env bash
# Set up dealtrail in .venv, import the example deals into example.db (an
# SQLite file), list them, and audit every lost one: the README's first command.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -e .
export DEALTRAIL_STORE=sqlite:///example.db
dealtrail() { .venv/bin/dealtrail "$@"; }

dealtrail import examples/*.jsonl
echo
dealtrail deal list
echo
echo "The timeline of a lost deal (a slow follow-up after a great meeting):"
dealtrail timeline BRIGHTWATER-2026-01
echo
echo "What went wrong on every lost deal, and the lesson of each:"
dealtrail audit --lost
