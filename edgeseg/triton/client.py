"""A client for the Segmenter model of an edgeseg Triton repository (tritonclient, HTTP or
gRPC): the same `predict` / `predict_batch` as the in-process Segmenter."""

from __future__ import annotations

import numpy as np

from edgeseg.core.errors import EngineUnavailable, InputError

PROTOCOLS = ("http", "grpc")


class TritonSegmenter:
    """`TritonSegmenter("127.0.0.1:8000", "bisenetv1").predict(rgb) -> labels`. One client
    per thread: tritonclient's clients are not shared across threads here."""

    def __init__(self, url: str, model: str, protocol: str = "http",
                 timeout: float = 60.0) -> None:
        if protocol not in PROTOCOLS:
            raise InputError(f"protocol {protocol!r}: choose http or grpc")
        try:
            if protocol == "http":
                import tritonclient.http as tc
            else:
                import tritonclient.grpc as tc
        except ImportError:
            raise EngineUnavailable("tritonclient is not installed: pip install "
                                    "'tritonclient[http,grpc]'") from None
        self._tc, self.model, self.protocol, self.timeout = tc, model, protocol, timeout
        self.client = (tc.InferenceServerClient(url, connection_timeout=timeout,
                                                network_timeout=timeout)
                       if protocol == "http" else tc.InferenceServerClient(url))

    def infer_raw(self, batch: np.ndarray, name: str = "image", dtype: str | None = None):
        """One request with `batch` as the input tensor (any dtype and shape: the server
        checks them); returns the labels array."""
        dtype = dtype or {np.dtype(np.uint8): "UINT8", np.dtype(np.float32): "FP32",
                          np.dtype(object): "BYTES"}.get(batch.dtype, "UINT8")
        x = self._tc.InferInput(name, list(batch.shape), dtype)
        x.set_data_from_numpy(batch)
        out = self._tc.InferRequestedOutput("labels")
        extra = {"client_timeout": self.timeout} if self.protocol == "grpc" else {}
        return self.client.infer(self.model, [x], outputs=[out], **extra).as_numpy("labels")

    def predict_batch(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """Labels for images of one size, sent as one request."""
        return list(self.infer_raw(np.stack(images)))

    def predict(self, image: np.ndarray) -> np.ndarray:
        return self.infer_raw(image[None])[0]

    def close(self) -> None:
        self.client.close()
