# Writes a BERT-family sentence model (all-MiniLM-L6-v2, m3e-small: weights in model.safetensors or
# PyTorch's pytorch_model.bin, config.json, optional 1_Pooling/config.json) as the ONNX graph
# Switchboard's encoder runs with ONNX Runtime (services/libs/embed/src/onnx.rs), with numpy and onnx
# alone: no torch, whose wheels are gigabytes.
#
#   python3 convert-bert.py MODEL_DIR OUT_DIR      (run by scripts/fetch-model.sh, in its venv)
#
# The graph takes texts' token ids (`input_ids`, int64, [texts, tokens], [CLS] and [SEP] included)
# and which of them are real rather than padding (`attention_mask`, int64, 1 or 0), and gives each
# text's pooled, not yet normalised, vector (`sentence_embedding`, [texts, hidden]). Token type is
# always 0, so its embedding is folded into the position table; the attention scale 1/sqrt(head size)
# is folded into the query weights. The arithmetic is otherwise BERT's, in float32 (GELU by erf, as
# the models were trained), and the result is checked against the float64 reference in
# services/libs/embed/tests/fixtures.
#
# The encoder also reads config.json beside the graph (the longest input the position table allows).
import collections
import json
import math
import os
import pickle
import struct
import sys
import zipfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def fail(message):
    sys.exit(f"convert-bert: {message}")


def load_safetensors(path):
    """The safetensors layout: an 8-byte header length, a JSON header, then the raw tensors."""
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
        data = f.read()
    dtypes = {"F32": np.float32, "F16": np.float16, "I64": np.int64}
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] not in dtypes:
            fail(f"{path}: tensor {name} has dtype {info['dtype']}, which this converter does not read")
        start, end = info["data_offsets"]
        tensors[name] = np.frombuffer(data[start:end], dtype=dtypes[info["dtype"]]).reshape(info["shape"])
    return tensors


def load_pickled(path):
    """PyTorch's zip of pickled tensors, read with the standard library and numpy alone."""
    archive = zipfile.ZipFile(path)
    root = archive.namelist()[0].split("/")[0]
    dtypes = {"FloatStorage": np.float32, "LongStorage": np.int64, "HalfStorage": np.float16}

    def rebuild(storage, offset, size, stride, *_):
        return np.lib.stride_tricks.as_strided(
            storage[offset:], shape=size, strides=[s * storage.itemsize for s in stride]
        ).copy()

    class Unpickler(pickle.Unpickler):
        def find_class(self, module, name):
            if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
                return rebuild
            if module == "torch" and name in dtypes:
                return dtypes[name]
            if (module, name) == ("collections", "OrderedDict"):
                return collections.OrderedDict
            raise pickle.UnpicklingError(f"unexpected {module}.{name} in {path}")

        def persistent_load(self, pid):
            _, dtype, key, _, _ = pid
            return np.frombuffer(archive.read(f"{root}/data/{key}"), dtype=dtype)

    return dict(Unpickler(archive.open(f"{root}/data.pkl")).load())


def load_weights(src):
    if os.path.exists(f"{src}/model.safetensors"):
        weights = load_safetensors(f"{src}/model.safetensors")
    elif os.path.exists(f"{src}/pytorch_model.bin"):
        weights = load_pickled(f"{src}/pytorch_model.bin")
    else:
        fail(f"{src} has neither model.safetensors nor pytorch_model.bin")
    # Checkpoints saved from BertForXxx name the encoder's tensors bert.*.
    return {k.removeprefix("bert."): v.astype(np.float32) for k, v in weights.items()}


def pooling(src):
    path = f"{src}/1_Pooling/config.json"
    if not os.path.exists(path):
        return "mean"  # plain BERT checkpoints carry no pooling config; mean is the usual choice
    config = json.load(open(path))
    modes = {k for k in ("cls_token", "mean_tokens", "max_tokens", "mean_sqrt_len_tokens") if config.get(f"pooling_mode_{k}")}
    if modes == {"mean_tokens"}:
        return "mean"
    if modes == {"cls_token"}:
        return "cls"
    fail(f"{path}: pooling {sorted(modes)} is not supported (mean or cls alone)")


class Graph:
    def __init__(self, weights):
        self.weights = weights
        self.nodes, self.initializers, self.count = [], [], 0

    def constant(self, name, value):
        self.initializers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def weight(self, name, value=None):
        value = self.weights[name] if value is None else value
        return self.constant(name, np.ascontiguousarray(value, dtype=np.float32))

    def op(self, kind, inputs, **attributes):
        self.count += 1
        out = f"{kind.lower()}_{self.count}"
        self.nodes.append(helper.make_node(kind, inputs, [out], **attributes))
        return out

    def linear(self, x, prefix, scale=1.0):
        weight = self.weight(f"{prefix}.weight", self.weights[f"{prefix}.weight"].T * scale)
        bias = self.weight(f"{prefix}.bias", self.weights[f"{prefix}.bias"] * scale)
        return self.op("Add", [self.op("MatMul", [x, weight]), bias])

    def layer_norm(self, x, prefix, eps):
        return self.op("LayerNormalization", [x, self.weight(f"{prefix}.weight"), self.weight(f"{prefix}.bias")], axis=-1, epsilon=eps)

    def gelu(self, x):
        # As PyTorch exports it, so ONNX Runtime's GELU fusion finds it: x * 0.5 * (1 + erf(x / sqrt 2)).
        erf = self.op("Erf", [self.op("Div", [x, self.constant(f"sqrt2_{self.count}", np.float32(math.sqrt(2)))])])
        one = self.op("Add", [erf, self.constant(f"one_{self.count}", np.float32(1))])
        return self.op("Mul", [self.op("Mul", [x, one]), self.constant(f"half_{self.count}", np.float32(0.5))])


def build(src):
    config = json.load(open(f"{src}/config.json"))
    if config.get("model_type", "bert") != "bert" or config.get("position_embedding_type", "absolute") != "absolute":
        fail(f"{src}/config.json: only BERT with absolute positions is supported")
    if config.get("hidden_act", "gelu") != "gelu":
        fail(f"{src}/config.json: hidden_act {config['hidden_act']} is not supported (gelu)")
    w = load_weights(src)
    hidden, heads = config["hidden_size"], config["num_attention_heads"]
    head = hidden // heads
    eps = float(config.get("layer_norm_eps", 1e-12))
    g = Graph(w)

    # Token type 0 everywhere: its embedding joins every position's.
    positions = w["embeddings.position_embeddings.weight"] + w["embeddings.token_type_embeddings.weight"][0]
    # Padding gets a large negative score before every softmax, so no real token attends to it.
    mask = g.op("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    padding = g.op("Mul", [g.op("Sub", [g.constant("mask_one", np.float32(1)), mask]), g.constant("mask_score", np.float32(-10000))])
    padding = g.op("Unsqueeze", [padding, g.constant("mask_axes", np.array([1, 2], np.int64))])
    tokens = g.op("Shape", ["input_ids"], start=1, end=2)
    position = g.op("Slice", [g.weight("positions", positions), g.constant("zero", np.array([0], np.int64)), tokens, g.constant("axis0", np.array([0], np.int64))])
    words = g.op("Gather", [g.weight("embeddings.word_embeddings.weight"), "input_ids"])
    x = g.layer_norm(g.op("Add", [words, position]), "embeddings.LayerNorm", eps)

    split = g.constant("heads_shape", np.array([0, 0, heads, head], np.int64))
    merge = g.constant("hidden_shape", np.array([0, 0, hidden], np.int64))
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        q = g.linear(x, p + "attention.self.query", scale=1 / math.sqrt(head))
        k = g.linear(x, p + "attention.self.key")
        v = g.linear(x, p + "attention.self.value")
        q = g.op("Transpose", [g.op("Reshape", [q, split])], perm=[0, 2, 1, 3])
        k = g.op("Transpose", [g.op("Reshape", [k, split])], perm=[0, 2, 3, 1])
        v = g.op("Transpose", [g.op("Reshape", [v, split])], perm=[0, 2, 1, 3])
        attention = g.op("Softmax", [g.op("Add", [g.op("MatMul", [q, k]), padding])], axis=-1)
        context = g.op("Reshape", [g.op("Transpose", [g.op("MatMul", [attention, v])], perm=[0, 2, 1, 3]), merge])
        x = g.layer_norm(g.op("Add", [g.linear(context, p + "attention.output.dense"), x]), p + "attention.output.LayerNorm", eps)
        h = g.gelu(g.linear(x, p + "intermediate.dense"))
        x = g.layer_norm(g.op("Add", [g.linear(h, p + "output.dense"), x]), p + "output.LayerNorm", eps)

    if pooling(src) == "mean":
        # The mean over real tokens only, so a text's vector does not depend on its batch's padding.
        real = g.op("Unsqueeze", [mask, g.constant("token_axis", np.array([2], np.int64))])
        axis = g.constant("tokens_axis", np.array([1], np.int64))
        summed = g.op("ReduceSum", [g.op("Mul", [x, real]), axis], keepdims=0)
        count = g.op("ReduceSum", [mask, axis], keepdims=1)
        pooled = g.op("Div", [summed, g.op("Max", [count, g.constant("at_least", np.float32(1e-9))])])
    else:
        pooled = g.op("Gather", [x, g.constant("first", np.array(0, np.int64))], axis=1)
    g.nodes.append(helper.make_node("Identity", [pooled], ["sentence_embedding"]))

    graph = helper.make_graph(
        g.nodes,
        os.path.basename(os.path.normpath(src)),
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["texts", "tokens"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["texts", "tokens"]),
        ],
        [helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, ["texts", hidden])],
        g.initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="switchboard convert-bert")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def main():
    if len(sys.argv) != 3:
        fail("usage: convert-bert.py MODEL_DIR OUT_DIR")
    src, out = sys.argv[1], sys.argv[2]
    model = build(src)
    os.makedirs(out, exist_ok=True)
    onnx.save(model, f"{out}/model.onnx")
    print(f"convert-bert: {src} written as {out}/model.onnx")


main()
