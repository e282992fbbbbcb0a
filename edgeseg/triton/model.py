"""Triton Python-backend model: an edgeseg Segmenter behind Triton (written into a model
repository by `edgeseg triton`, as <model>/1/model.py beside <model>/1/artifact/).

Input "image": uint8 [batch, H, W, 3] RGB; output "labels": uint8 [batch, H, W], one class
id per pixel at the image's own size (the artifact's preprocessing and resizing included).
With dynamic batching Triton hands several requests to one `execute`: their images run as
one batch (Segmenter.predict_batch: one network call when the artifact has a dynamic batch).
A bad request gets an error response of its own; the others in the batch are answered.

The server's Python must import edgeseg (PYTHONPATH or the same environment).

Outputs leave through DLPack, not `pb_utils.Tensor(name, array)`: the Python backend stub of
Triton 2.51 (the nvidia-pytriton 0.7.0 wheel) is built against NumPy 1, and with NumPy 2 it
reads an array's byte size as 0 ("output tensor shape does not match size of output"). The
stub then renames the consumed capsule to a name NumPy 2's capsule destructor does not know,
which prints a harmless ValueError per response; that one message is filtered out (the
memory is released through the DLPack deleter: 400 responses of 2 MB each left the stub's
resident memory flat at 132 MB, on a 2-core avx512_vnni/avx512_bf16 host).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils  # provided by Triton's Python backend

from edgeseg.runtime import Segmenter


def _quiet_consumed_capsules() -> None:
    previous = sys.unraisablehook

    def hook(u):
        if not (isinstance(u.exc_value, ValueError)
                and "PyCapsule_GetPointer called with incorrect name" in str(u.exc_value)):
            previous(u)

    sys.unraisablehook = hook


class TritonPythonModel:
    def initialize(self, args):
        _quiet_consumed_capsules()
        config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        here = Path(args["model_repository"]) / args["model_version"]
        threads = int(params["threads"]) if params.get("threads") else None
        self.segmenter = Segmenter(here / params.get("artifact", "artifact"),
                                   backend=params.get("backend", "auto"), threads=threads)

    def _images(self, request) -> list[np.ndarray]:
        t = pb_utils.get_input_tensor_by_name(request, "image")
        if t is None:
            raise ValueError('no input "image": send uint8 [batch, H, W, 3] RGB images')
        x = t.as_numpy()
        if x.dtype != np.uint8 or x.ndim != 4 or x.shape[-1] != 3:
            raise ValueError(f'"image" must be uint8 [batch, H, W, 3], got {x.dtype} '
                             f"{list(x.shape)}")
        if x.shape[0] == 0 or x.shape[1] == 0 or x.shape[2] == 0:
            raise ValueError(f'"image" is empty ({list(x.shape)}): send at least one image '
                             "of at least 1x1 pixels")
        return list(x)

    def execute(self, requests):
        images, owners, errors = [], [], {}
        for i, request in enumerate(requests):
            try:
                batch = self._images(request)
            except ValueError as e:
                errors[i] = str(e)
                continue
            images += batch
            owners += [i] * len(batch)
        try:
            labels = self.segmenter.predict_batch(images) if images else []
        except Exception:  # one request's images broke the batch: run each request alone
            return self._one_by_one(requests, errors)
        responses = []
        for i in range(len(requests)):
            if i in errors:
                responses.append(pb_utils.InferenceResponse(
                    output_tensors=[], error=pb_utils.TritonError(errors[i])))
                continue
            mine = np.stack([lab for lab, o in zip(labels, owners) if o == i])
            responses.append(pb_utils.InferenceResponse(
                output_tensors=[pb_utils.Tensor.from_dlpack("labels", mine.__dlpack__())]))
        return responses

    def _one_by_one(self, requests, errors: dict) -> list:
        responses = []
        for i, request in enumerate(requests):
            try:
                if i in errors:
                    raise ValueError(errors[i])
                mine = np.stack(self.segmenter.predict_batch(self._images(request)))
                responses.append(pb_utils.InferenceResponse(
                    output_tensors=[pb_utils.Tensor.from_dlpack("labels", mine.__dlpack__())]))
            except Exception as e:
                responses.append(pb_utils.InferenceResponse(
                    output_tensors=[], error=pb_utils.TritonError(str(e))))
        return responses

    def finalize(self):
        self.segmenter.close()
