"""Where a warning should point: the user's line, not ours (a leaf: imports nothing above)."""

import sys
from pathlib import Path

_PACKAGE_DIR = str(Path(__file__).resolve().parent)


def user_stacklevel() -> int:
    """``stacklevel`` for a ``warnings.warn`` made by the caller of this function: the first frame
    outside the package (the user's call, whichever public function led there), as Python
    3.12's ``skip_file_prefixes`` does."""
    frame, level = sys._getframe(1), 1  # the function that warns
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame, level = frame.f_back, level + 1
    return level
