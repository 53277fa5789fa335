"""Every benchmark JSON names the commit it measured, and says so when the code measured was not that commit's."""

from __future__ import annotations

import subprocess
from pathlib import Path

import provenance


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=Path(provenance.__file__).parent, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_the_stamp_is_the_head_commit_and_flags_changed_code() -> None:
    stamp = provenance.commit()
    assert stamp is not None
    head, _, suffix = stamp.partition("+")
    assert head == _git("rev-parse", "--short", "HEAD")
    changed = bool(_git("status", "--porcelain", "--", "../src", "*.py"))
    assert suffix == ("changes" if changed else "")
