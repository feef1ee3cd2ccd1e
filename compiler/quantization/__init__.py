"""Graph-independent numerical core of quantization (docs/numerics.md is the spec).

- fixed_point: multiplier encoding, the overflow-free multiply, requantize, rounding
- schemes: float ranges -> QuantParams, quantize/dequantize
- bias: 32-bit, 16-bit and 16-bit double-scale bias
- integer_ops: elementwise add/mul, average, rescale (concat, conversions), float16
- observers: mergeable streaming range observers (minmax, percentile, mse, kl)
- weights: weight range modes (minmax, mse, adjusted)
- lut: lookup tables for activations; softmax: fixed-point softmax
"""
