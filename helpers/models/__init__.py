"""Keras models and layers of the workbook.

Submodules are imported explicitly (``from helpers.models.layers import SRMLayer``) so that importing
``helpers.models`` does not start Keras and its backend.
"""

__all__: list[str] = []
