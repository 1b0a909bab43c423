"""Forensic traces of images: JPEG analysis now; ELA, SRM and noise maps build on it."""

from helpers.forensics.jpeg import JpegQuality, estimate_jpeg_quality

__all__ = ["JpegQuality", "estimate_jpeg_quality"]
