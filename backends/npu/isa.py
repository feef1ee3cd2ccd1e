"""The binary contract of a compiled NPU model: opcodes, element types, section kinds, record layouts.

Numbers here are part of the file format: never renumber, only append.
See docs/binary-format.md.
"""
from __future__ import annotations

import enum
import struct

from npuc.ir.dtypes import DType

MAGIC = b"NPUB\x00\r\n\x1a"  # the \r\n and \x1a catch text-mode and truncating transfers
FORMAT_VERSION = (1, 0)  # (major, minor): a reader refuses another major version
ALIGNMENT = 64  # every section starts at a multiple of this


def align(n: int) -> int:
    """n rounded up to a multiple of ALIGNMENT."""
    return (n + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT


#: file header: magic, major, minor, flags, file size, section count, reserved
HEADER = struct.Struct("<8sHHIQII")
#: one section table entry: kind, reserved, offset, size
SECTION_ENTRY = struct.Struct("<IIQQ")
#: trailer: SHA-256 over every byte before it
CHECKSUM_SIZE = 32
#: one command record: opcode, n_inputs, n_outputs, n_params, reserved; then int32 ids
COMMAND = struct.Struct("<HBBBxxx")


class Section(enum.IntEnum):
    HEADER_JSON = 1  # tensors, inputs, outputs, layer attributes (UTF-8 JSON)
    COMMANDS = 2  # fixed records: opcode + tensor ids + parameter ids
    WEIGHTS = 3  # constant tensor data, each aligned
    QUANT_PARAMS = 4  # integer parameters of layers (multipliers, shifts, LUTs), each aligned
    METADATA = 5  # model info, compile options, origins (UTF-8 JSON)


class Opcode(enum.IntEnum):
    """One opcode per layer kind. EXTENSION layers name their kind in the header JSON."""

    CONV = 1
    CONV_TRANSPOSE = 2
    GEMM = 3
    MATMUL = 4
    ADD = 10
    SUB = 11
    MUL = 12
    DIV = 13
    POW = 14
    MAX = 15
    MIN = 16
    RELU = 20
    CLIP = 21
    LEAKY_RELU = 22
    PRELU = 23
    SIGMOID = 24
    HARD_SIGMOID = 25
    HARD_SWISH = 26
    SILU = 27
    TANH = 28
    EXP = 29
    LOG = 30
    SQRT = 31
    RECIPROCAL = 32
    NEG = 33
    ABS = 34
    ERF = 35
    FLOOR = 36
    CEIL = 37
    SOFTMAX = 40
    LOG_SOFTMAX = 41
    BATCH_NORMALIZATION = 42
    MAX_POOL = 50
    AVERAGE_POOL = 51
    GLOBAL_AVERAGE_POOL = 52
    GLOBAL_MAX_POOL = 53
    REDUCE_MEAN = 54
    REDUCE_SUM = 55
    REDUCE_MAX = 56
    REDUCE_MIN = 57
    RESHAPE = 60
    TRANSPOSE = 61
    CONCAT = 62
    SPLIT = 63
    SLICE = 64
    PAD = 65
    RESIZE = 66
    GATHER = 67
    EXPAND = 68
    TILE = 69
    DEPTH_TO_SPACE = 70
    SPACE_TO_DEPTH = 71
    SHAPE = 72
    WHERE = 73
    EQUAL = 74
    LESS = 75
    GREATER = 76
    IDENTITY = 77
    DROPOUT = 78
    CAST = 80
    QUANTIZE = 81
    DEQUANTIZE = 82
    REQUANTIZE = 83
    EXTENSION = 0xFFFF


#: IR op kind <-> opcode
KIND_TO_OPCODE: dict[str, Opcode] = {
    "Conv": Opcode.CONV, "ConvTranspose": Opcode.CONV_TRANSPOSE, "Gemm": Opcode.GEMM, "MatMul": Opcode.MATMUL,
    "Add": Opcode.ADD, "Sub": Opcode.SUB, "Mul": Opcode.MUL, "Div": Opcode.DIV, "Pow": Opcode.POW,
    "Max": Opcode.MAX, "Min": Opcode.MIN, "Relu": Opcode.RELU, "Clip": Opcode.CLIP,
    "LeakyRelu": Opcode.LEAKY_RELU, "PRelu": Opcode.PRELU, "Sigmoid": Opcode.SIGMOID,
    "HardSigmoid": Opcode.HARD_SIGMOID, "HardSwish": Opcode.HARD_SWISH, "SiLU": Opcode.SILU, "Tanh": Opcode.TANH,
    "Exp": Opcode.EXP, "Log": Opcode.LOG, "Sqrt": Opcode.SQRT, "Reciprocal": Opcode.RECIPROCAL, "Neg": Opcode.NEG,
    "Abs": Opcode.ABS, "Erf": Opcode.ERF, "Floor": Opcode.FLOOR, "Ceil": Opcode.CEIL, "Softmax": Opcode.SOFTMAX,
    "LogSoftmax": Opcode.LOG_SOFTMAX, "BatchNormalization": Opcode.BATCH_NORMALIZATION,
    "MaxPool": Opcode.MAX_POOL, "AveragePool": Opcode.AVERAGE_POOL, "GlobalAveragePool": Opcode.GLOBAL_AVERAGE_POOL,
    "GlobalMaxPool": Opcode.GLOBAL_MAX_POOL, "ReduceMean": Opcode.REDUCE_MEAN, "ReduceSum": Opcode.REDUCE_SUM,
    "ReduceMax": Opcode.REDUCE_MAX, "ReduceMin": Opcode.REDUCE_MIN, "Reshape": Opcode.RESHAPE,
    "Transpose": Opcode.TRANSPOSE, "Concat": Opcode.CONCAT, "Split": Opcode.SPLIT, "Slice": Opcode.SLICE,
    "Pad": Opcode.PAD, "Resize": Opcode.RESIZE, "Gather": Opcode.GATHER, "Expand": Opcode.EXPAND,
    "Tile": Opcode.TILE, "DepthToSpace": Opcode.DEPTH_TO_SPACE, "SpaceToDepth": Opcode.SPACE_TO_DEPTH,
    "Shape": Opcode.SHAPE, "Where": Opcode.WHERE, "Equal": Opcode.EQUAL, "Less": Opcode.LESS,
    "Greater": Opcode.GREATER, "Identity": Opcode.IDENTITY, "Dropout": Opcode.DROPOUT, "Cast": Opcode.CAST,
    "Quantize": Opcode.QUANTIZE, "Dequantize": Opcode.DEQUANTIZE, "Requantize": Opcode.REQUANTIZE,
}
OPCODE_TO_KIND: dict[int, str] = {int(v): k for k, v in KIND_TO_OPCODE.items()}

#: element types a binary may hold, by their short names
ALLOWED_DTYPES = {d.value: d for d in DType}

#: limits a decoder enforces before allocating anything
MAX_RANK = 8
MAX_TENSOR_ELEMENTS = 1 << 31
MAX_TENSORS = 1 << 20
MAX_LAYERS = 1 << 20
MAX_IO_PER_LAYER = 255
