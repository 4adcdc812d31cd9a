"""The op emitter registry: one function per TensorFlow op (family), registered by name.

An emitter receives the conversion context, the TF node and its input Values, and returns the
node's output Value(s).  Emitters live in ``ops_math``, ``ops_nn`` and ``ops_array``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from livematte.errors import ModelError
from livematte.models.tfjs.graph import Builder, Value
from livematte.models.tfjs.model import TfNode


class Context(Protocol):
    """What emitters may use from the converter."""

    b: Builder
    #: conv node name -> (dilations (h, w), pads [top, left, bottom, right]) from a folded
    #: SpaceToBatchND / BatchToSpaceND pair
    dilated: dict[str, tuple[tuple[int, int], list[int]]]

    def value(self, ref: tuple[str, int]) -> Value: ...

    def node(self, name: str) -> TfNode: ...

    def consumers(self, name: str) -> list[TfNode]: ...


Emitter = Callable[[Context, TfNode, list[Value]], "Value | list[Value]"]
EMITTERS: dict[str, Emitter] = {}


def emits(*ops: str) -> Callable[[Emitter], Emitter]:
    """Decorator registering an emitter for the TensorFlow ops ``ops``."""

    def register(func: Emitter) -> Emitter:
        for op in ops:
            EMITTERS[op] = func
        return func

    return register


def fail(node: TfNode, message: str) -> ModelError:
    """A one-line ModelError naming the op and node."""
    return ModelError(f"cannot convert {node.op} node {node.name!r}: {message}")


def const_arg(node: TfNode, values: list[Value], index: int, what: str) -> np.ndarray:
    """Input ``index`` as a numpy array (logical layout); it must be a constant."""
    value = values[index]
    if not value.is_const:
        raise fail(node, f"{what} must be a constant")
    return value.logical_const()


def const_ints(node: TfNode, values: list[Value], index: int, what: str) -> list[int]:
    """Input ``index`` as a flat list of ints (a constant)."""
    return [int(v) for v in np.ravel(const_arg(node, values, index, what))]
