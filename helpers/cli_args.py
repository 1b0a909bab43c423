"""Argument types for ``python -m helpers``: a bad value stops at the parser with one line saying what was expected.

Used by every command's parser (``synth``, ``features``, ``download``, ``evaluate``, ...), so that ``--n 0``
or ``--quality 300`` is refused before any work starts instead of failing as a traceback or once per image.
Each function takes the command-line string and returns the converted value or raises
``argparse.ArgumentTypeError``, whose message argparse prints as ``argument --n: ...`` with exit status 2.
The README's command-line section (notebook 01 starts with ``python -m helpers synth``) lists the commands.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

__all__ = [
    "positive_int",
    "non_negative_int",
    "positive_float",
    "unit_float",
    "jpeg_quality",
    "model_path",
]


def _int(text: str, expected: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None


def _float(text: str, expected: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r} (not a finite number)")
    return value


def positive_int(text: str) -> int:
    """A whole number >= 1 (counts: samples, workers, epochs)."""
    value = _int(text, "a whole number >= 1")
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """A whole number >= 0 (seeds, retries)."""
    value = _int(text, "a whole number >= 0")
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0 (timeouts, sizes)."""
    value = _float(text, "a number > 0")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def unit_float(text: str) -> float:
    """A finite number in [0, 1] (thresholds, fractions)."""
    value = _float(text, "a number between 0 and 1")
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}")
    return value


def jpeg_quality(text: str) -> int:
    """A JPEG quality factor, a whole number from 1 to 100."""
    value = _int(text, "a JPEG quality, a whole number from 1 to 100")
    if not 1 <= value <= 100:
        raise argparse.ArgumentTypeError(f"expected a JPEG quality, a whole number from 1 to 100, got {text!r}")
    return value


def model_path(text: str) -> Path:
    """A saved model: a ``.keras`` file, or a folder holding one (as ``save_mask_model`` and
    ``save_classifier`` write them)."""
    path = Path(text).expanduser()
    expected = "a saved model folder (holding a .keras file) or a .keras file"
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text} does not exist; expected {expected}")
    if path.is_dir():
        if not any(child.suffix == ".keras" and child.is_file() for child in path.iterdir()):
            raise argparse.ArgumentTypeError(f"{text} is a folder without a .keras file; expected {expected}")
        return path
    if path.suffix != ".keras":
        raise argparse.ArgumentTypeError(f"{text} is a {path.suffix or 'extension-less'} file; expected {expected}")
    return path
