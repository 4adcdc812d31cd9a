"""Reading TF.js graph models: refs, attributes, weight dequantisation, clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tfjs_graphs import GraphWriter

from livematte.errors import ModelError
from livematte.models.tfjs import convert_graph_model
from livematte.models.tfjs.model import decode_attr, load_graph_model, parse_ref


def test_refs_and_attributes():
    assert parse_ref("a/b:1") == ("a/b", 1) and parse_ref("a/b") == ("a/b", 0)
    assert parse_ref("scope:name") == ("scope:name", 0)
    assert decode_attr({"list": {"s": ["Qmlhc0FkZA==", "UmVsdQ=="]}}) == ["BiasAdd", "Relu"]
    assert decode_attr({"list": {"i": ["1", "2"]}}) == [1, 2]
    assert decode_attr({"s": "U0FNRQ=="}) == "SAME" and decode_attr({"b": False}) is False
    assert decode_attr({"shape": {"unknownRank": True}}) is None
    assert decode_attr({"shape": {"dim": [{"size": "-1"}, {"size": "3"}]}}) == [-1, 3]


def test_weights_uint8_affine_and_float16(tmp_path):
    g = GraphWriter()
    values = np.linspace(-1.5, 2.5, 24, dtype=np.float32).reshape(2, 3, 4)
    g.const("q", values, "uint8")
    g.const("h", values, "float16")
    g.const("i", np.arange(5, dtype=np.int32))
    g.op("Identity", "y", ["q"])
    model = load_graph_model(g.write(tmp_path, {"y": "y"}))
    scale = 4.0 / 255
    want = (np.round((values - -1.5) / scale) * scale + -1.5).astype(np.float32)
    np.testing.assert_allclose(model.weights["q"], want, atol=1e-6)
    assert model.weights["q"].dtype == np.float32
    np.testing.assert_array_equal(model.weights["h"], values.astype(np.float16).astype(np.float32))
    np.testing.assert_array_equal(model.weights["i"], np.arange(5))


@pytest.mark.parametrize("content, message", [
    (None, "cannot read"),
    ("not json", "is not JSON"),
    (json.dumps({"format": "layers-model", "modelTopology": {}}), "not a TF.js graph model"),
])
def test_bad_files_are_one_line_errors(tmp_path, content, message):
    path = tmp_path / "model.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ModelError, match=message) as info:
        convert_graph_model(path)
    assert "\n" not in str(info.value)


def test_missing_shard_and_unknown_bind(tmp_path):
    g = GraphWriter()
    g.placeholder("x", [1])
    g.const("c", np.ones(3, np.float32))
    g.op("AddV2", "y", ["x", "c"])
    path = g.write(tmp_path, {"y": "y"})
    with pytest.raises(ModelError, match="'nope' is not a placeholder"):
        convert_graph_model(path, bind={"nope": 1.0})
    (tmp_path / "weights.bin").unlink()
    with pytest.raises(ModelError, match="cannot read weight shard"):
        convert_graph_model(path)
