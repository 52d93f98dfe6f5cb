"""Where the external sample corpus is: an extended suite, run when ABUSEDESK_CORPUS_DIR names it.

The corpus (public sample reports from other projects) is not part of the repository, and the
project's own tests never need it. CI names it (.ci/run sets ABUSEDESK_CORPUS_DIR=../shared/corpus);
a named folder that is missing fails, and with no name the corpus tests skip with this reason.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ENV = "ABUSEDESK_CORPUS_DIR"
NOT_NAMED = f"extended corpus suite not run: {ENV} does not name the sample corpus folder (CI names it)"


def corpus_dir() -> Path | None:
    named = os.environ.get(ENV, "").strip()
    return Path(named).expanduser().resolve() if named else None


def require_corpus(*folders: str) -> Path:
    """The corpus folder, with these sub-folders; skip when none is named, fail when it is wrong."""
    root = corpus_dir()
    if root is None:
        pytest.skip(NOT_NAMED)
    missing = [root / folder for folder in folders if not (root / folder).is_dir()]
    if not root.is_dir() or missing:
        pytest.fail(f"{ENV}={root} but {', '.join(map(str, missing or [root]))} is not there", pytrace=False)
    return root
