"""Datasets: the one manifest schema, the embedded synthetic set, and (later) real datasets."""

from helpers.datasets.manifest import (
    ManifestError,
    ManifestProblem,
    ValidationReport,
    load_manifest,
    validate_manifest,
    write_manifest,
)

__all__ = [
    "ManifestError",
    "ManifestProblem",
    "ValidationReport",
    "load_manifest",
    "validate_manifest",
    "write_manifest",
]
