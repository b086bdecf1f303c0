"""The repository stands on its own: no file cites a document that lives outside it.

Methodology, landing format and architecture are in docs/; a reference to an outside
product contract (the word in capitals, or a path into a sibling `shared` folder) would
send a reader to a file they do not have.
"""
from __future__ import annotations

import re
import subprocess

from pipeline_support import ROOT

# Built from pieces so that this file does not match itself.
FORBIDDEN = re.compile("SP" + "EC" + "|" + re.escape("../" + "shared"))


def repository_files() -> list[str]:
    """Tracked files plus new files not ignored by git (everything but .git and ignored)."""
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                         cwd=ROOT, capture_output=True, check=True).stdout
    return sorted({f for f in out.decode().split("\0") if f})


def test_no_reference_to_an_outside_document():
    files = repository_files()
    assert "README.md" in files and "docs/methodologie.md" in files
    hits = []
    for name in files:
        path = ROOT / name
        if not path.is_file():          # deleted in the working tree
            continue
        text = path.read_bytes().decode("utf-8", errors="replace")
        hits += [f"{name}:{n}: {line.strip()}" for n, line in enumerate(text.splitlines(), 1)
                 if FORBIDDEN.search(line)]
    assert not hits, "cite docs/ instead:\n" + "\n".join(hits)


def test_the_pattern_catches_both_forms():
    assert FORBIDDEN.search("see " + "SP" + "EC §5")
    assert FORBIDDEN.search("[x](" + "../" + "shared/notes.md)")
    assert not FORBIDDEN.search("see docs/methodologie.md")
