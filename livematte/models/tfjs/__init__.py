"""Our own TF.js graph-model -> ONNX converter (numpy + onnx only; no TensorFlow).

``model`` reads model.json and its (quantised) weight shards; ``graph`` builds the ONNX graph
(constant folding, reuse of identical nodes, dead-node removal); ``layout`` tracks NHWC vs NCHW
per tensor so Transposes appear only at the boundary; ``ops_*`` hold one emitter per op family;
``peephole`` rewrites the result into forms ONNX Runtime fuses; ``convert`` drives it all.

Example::

    from livematte.models.tfjs import convert_graph_model, convert_rvm
    onnx_bytes = convert_rvm(Path("rvm.json"))
"""

from typing import Any

from livematte.models.tfjs.version import CONVERTER_VERSION

_LAZY = ("RVM_STATE_CHANNELS", "convert_graph_model", "convert_rvm")


def __getattr__(name: str) -> Any:
    # The converter imports onnx (seconds on a busy machine): only when a conversion is asked
    # for, not when a session merely checks CONVERTER_VERSION.
    if name in _LAZY:
        from livematte.models.tfjs import convert

        return getattr(convert, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["CONVERTER_VERSION", "RVM_STATE_CHANNELS", "convert_graph_model", "convert_rvm"]
