"""README's options table says what ``wsstar-server --help`` says."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from wsstar.server.cli import build_parser
from wsstar.server.config import ServerConfig
from wsstar.server.options import OPTIONS

README = Path(__file__).resolve().parents[2] / "README.md"
HEADER = "| flag | env | default | meaning |"
HELP = re.compile(r"(?P<meaning>.*) \((?:env (?P<env>\S+); )?default (?P<default>.*)\)", re.S)

Row = tuple[frozenset[str], str, str, str]


def readme_rows() -> dict[str, Row]:
    lines = README.read_text().splitlines()
    start = lines.index(HEADER) + 2
    rows: dict[str, Row] = {}
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        flags, env, default, meaning = (cell.strip() for cell in line.strip("|").split(" | "))
        names = re.findall(r"`([^`]+)`", flags)
        rows[names[0]] = (frozenset(names), env.strip("`"), default, meaning)
    return rows


def help_rows() -> dict[str, Row]:
    parser = build_parser()
    flags_by_dest: dict[str, set[str]] = {}
    for action in parser._actions:
        flags_by_dest.setdefault(action.dest, set()).update(action.option_strings)
    rows: dict[str, Row] = {}
    for action in parser._actions:
        if action.help in (None, argparse.SUPPRESS) or action.dest in ("help", "version"):
            continue
        match = HELP.fullmatch(str(action.help))
        assert match, action.help
        rows[action.option_strings[0]] = (
            frozenset(flags_by_dest[action.dest]),
            match["env"] or "",
            match["default"],
            match["meaning"],
        )
    return rows


def test_readme_table_and_help_agree() -> None:
    assert readme_rows() == help_rows()


def test_every_option_sets_a_config_field_with_its_default() -> None:
    config = ServerConfig()
    for option in OPTIONS:
        value: object = config
        for part in option.field.split("."):
            assert hasattr(value, part), option.field
            value = getattr(value, part)
    assert len({option.field for option in OPTIONS}) == len(OPTIONS)
