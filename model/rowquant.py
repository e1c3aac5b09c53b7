"""Per-row int8 activation scales: the rewrite that makes the ONNX int8 path batch-invariant.

``onnxruntime.quantization.quantize_dynamic`` quantises each matmul's activation with one scale and zero
point per *tensor* (``DynamicQuantizeLinear``), computed over the whole batch, padding included.  A text's
scores then depend on which texts share its batch and how long they are: on 2,000 real tweets, scoring in
batches of 64 instead of one at a time changed 1.5 % of the sentiment labels (issue 27).

:func:`per_row_activations` replaces every ``DynamicQuantizeLinear`` of such a graph by a per-row (per-token)
symmetric quantisation: for a row ``x`` of the activation (one token's hidden vector),

* ``scale = max(|x|) / 127`` (``ReduceMax`` / ``ReduceMin`` over the last axis, a floor of 1e-8),
* ``q = round(x / scale) + 128`` as uint8 (``QuantizeLinear`` per axis on the rows; ``q`` in 1..255),
* zero point 128 for every row, a constant: ``MatMulInteger`` takes it as the scalar it requires,

and the graph's own ``scale x weight_scale`` product broadcasts the per-row scale over the output.  ONNX
Runtime still fuses each matmul into ``MatMulIntegerToFloat`` (per-row scale applied in the epilogue).  A
token's integers depend on that token's vector alone, so the outputs of a text depend on the text alone:
measured within 1.5e-6 in the logits between one text alone and in batches of 7 or 64 (the remaining fp32
differences come from the attention's sums over padded lengths), against up to 0.9 with per-tensor scales.
Weights keep the recipe of :func:`model.ort.quantize_onnx` (int8 per output channel, 7 bits), so u8 x s8
products cannot overflow AVX2's ``vpmaddubsw``: AVX2 and VNNI CPUs compute the same integers.

Cost, measured side by side (``model/README.md``, "CPU paths"): 4 % slower than per-tensor scales on a
simulated AVX2-only CPU, 7 % on this project's AVX-512 VNNI Xeon (one thread); static int8 (scales
calibrated once, QDQ) was as invariant but ran at 0.41-0.51x.  Pure: an ``onnx.ModelProto`` in, changed in
place; numpy and onnx only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # onnx is an export-time dependency: imported by the caller
    import onnx

ZERO_POINT = 128  # uint8 encoding of a symmetric int8 range: q - 128 in -127..127
_P = "finsent_rowq"


def per_row_activations(model: onnx.ModelProto, tokens_input: str = "input_ids") -> int:
    """Rewrite ``model`` (a ``quantize_dynamic`` output) in place to per-row activation scales.

    Each ``DynamicQuantizeLinear`` must feed only ``MatMulInteger`` nodes with a constant (initializer)
    weight, which gives the row length, and quantise a (batch, sequence, K) activation, where
    (batch, sequence) is the shape of the graph input ``tokens_input``.  Returns how many were rewritten."""
    from onnx import helper, numpy_helper

    graph = model.graph
    weights = {i.name: i for i in graph.initializer}
    row_len: dict[str, int] = {}  # quantised activation -> K (the weight's first dimension)
    for node in graph.node:
        if node.op_type == "MatMulInteger":
            if node.input[1] not in weights:
                raise ValueError(f"{node.name}: MatMulInteger without a constant weight")
            row_len[node.input[0]] = int(weights[node.input[1]].dims[0])
    quantisers = [n for n in graph.node if n.op_type == "DynamicQuantizeLinear"]
    if not quantisers:
        return 0
    consts = {f"{_P}_127": np.array(127.0, np.float32), f"{_P}_eps": np.array(1e-8, np.float32),
              f"{_P}_zp": np.array(ZERO_POINT, np.uint8), f"{_P}_flat": np.array([-1], np.int64)}
    pre = [helper.make_node("Shape", [tokens_input], [f"{_P}_bs"], name=f"{_P}_bs"),
           helper.make_node("ReduceProd", [f"{_P}_bs"], [f"{_P}_rows"], name=f"{_P}_rows", keepdims=1),
           helper.make_node("Expand", [f"{_P}_zp", f"{_P}_rows"], [f"{_P}_zp_rows"], name=f"{_P}_zp_rows")]
    for k in sorted(set(row_len.values())):
        consts[f"{_P}_k{k}"] = np.array([k], np.int64)
        consts[f"{_P}_2d_{k}"] = np.array([-1, k], np.int64)
        pre.append(helper.make_node("Concat", [f"{_P}_bs", f"{_P}_k{k}"], [f"{_P}_3d_{k}"], name=f"{_P}_3d_{k}",
                                    axis=0))
    graph.initializer.extend(numpy_helper.from_array(v, k) for k, v in consts.items())

    zero_points: dict[str, str] = {}
    nodes = list(pre)
    for node in graph.node:
        if node.op_type != "DynamicQuantizeLinear":
            nodes.append(node)
            continue
        x = node.input[0]
        xq, xs, xzp = node.output
        if xq not in row_len:
            raise ValueError(f"{node.name}: its output feeds no MatMulInteger with a constant weight")
        k, p = row_len[xq], f"{node.name}_{_P}"
        nodes += [
            helper.make_node("ReduceMax", [x], [f"{p}_max"], name=f"{p}_max", axes=[-1], keepdims=1),
            helper.make_node("ReduceMin", [x], [f"{p}_min"], name=f"{p}_min", axes=[-1], keepdims=1),
            helper.make_node("Neg", [f"{p}_min"], [f"{p}_negmin"], name=f"{p}_negmin"),
            helper.make_node("Max", [f"{p}_max", f"{p}_negmin", f"{_P}_eps"], [f"{p}_absmax"], name=f"{p}_absmax"),
            helper.make_node("Div", [f"{p}_absmax", f"{_P}_127"], [xs], name=f"{p}_scale"),
            helper.make_node("Reshape", [xs, f"{_P}_flat"], [f"{p}_scale1d"], name=f"{p}_scale1d"),
            helper.make_node("Reshape", [x, f"{_P}_2d_{k}"], [f"{p}_x2d"], name=f"{p}_x2d"),
            helper.make_node("QuantizeLinear", [f"{p}_x2d", f"{p}_scale1d", f"{_P}_zp_rows"], [f"{p}_q2d"],
                             name=f"{p}_quantize", axis=0),
            helper.make_node("Reshape", [f"{p}_q2d", f"{_P}_3d_{k}"], [xq], name=f"{p}_q3d"),
        ]
        zero_points[xzp] = f"{_P}_zp"
    for node in nodes:
        for i, name in enumerate(node.input):
            if name in zero_points:
                node.input[i] = zero_points[name]
    del graph.node[:]
    graph.node.extend(nodes)
    return len(quantisers)
