"""ONNX Runtime backend (CPU execution provider unless told otherwise).

`int8_kernels=False` keeps ONNX Runtime from fusing Q/DQ patterns into its integer kernels
(session option session.disable_quant_qdq; other optimisations stay): a Q/DQ graph then
runs QuantizeLinear / DequantizeLinear and float ops exactly as the ONNX spec defines them
(the reference INT8 arithmetic, which TensorRT's exact int32 accumulation matches; outputs
identical to running with every optimisation off), instead of the fused kernels, which on
x86 CPUs without VNNI can saturate with full-range INT8 weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np


class Runner:
    """`with Runner("model.onnx") as r: r.infer({"input": x})` -> {"logits": y}."""

    def __init__(self, model_path: str | Path, *, threads: int | None = None,
                 providers: list[str] | None = None, output_names: list[str] | None = None,
                 int8_kernels: bool = True) -> None:
        # output_names: accepted for a uniform runner signature; ORT keeps the graph's names.
        self.model_path = Path(model_path)
        self.threads = threads
        self.providers = providers or ["CPUExecutionProvider"]
        self.int8_kernels = int8_kernels
        self.session = None

    def __enter__(self) -> Runner:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if self.threads:
            opts.intra_op_num_threads = self.threads
        if not self.int8_kernels:
            opts.add_session_config_entry("session.disable_quant_qdq", "1")
        try:
            self.session = ort.InferenceSession(str(self.model_path), opts,
                                                providers=self.providers)
        except Exception as e:  # ORT raises its own exception types (Fail, InvalidGraph, ...)
            raise RuntimeError(f"{self.model_path}: ONNX Runtime cannot load it: {e}") from e
        return self

    def __exit__(self, *exc) -> None:
        self.session = None

    @property
    def input_names(self) -> list[str]:
        return [i.name for i in self.session.get_inputs()]

    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.session is None:
            raise RuntimeError("use the Runner as a context manager: with Runner(path) as r")
        names = [o.name for o in self.session.get_outputs()]
        return dict(zip(names, self.session.run(names, inputs)))
