"""Built-in op kinds. Importing this package registers them in npuc.ir.op_spec.OPS."""
from npuc.ir.ops import conv, data_movement, dense, elementwise, normalization, pooling, quantization  # noqa: F401
