"""The converter's version, importable without the converter (numpy + onnx take seconds).

Bumped whenever a change to the converter changes the bytes it writes for the same TF.js
files.  ``models pull`` records it next to a converted model; a cached conversion made by
another version is converted again (``livematte.models.converted``), never used silently.
``tests/models/test_tfjs_rvm.py`` pins RVM's converted bytes per version.

History: 1 (not recorded) the op-by-op graph; 2 peephole rewrites for ONNX Runtime's fused
CPU kernels (``peephole``).
"""

CONVERTER_VERSION = 2
