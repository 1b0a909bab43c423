"""forgery-workbook support package.

Importing it first quiets TensorFlow's start-up on machines without a GPU (:mod:`helpers.quiet`), so every
notebook and command that imports ``helpers`` before ``keras`` starts without CUDA or absl log lines.
"""

from helpers import quiet as _quiet

_quiet.install()
