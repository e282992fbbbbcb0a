"""Quantization: calibration sets, INT8 Q/DQ, accuracy budget, TensorRT cache."""
