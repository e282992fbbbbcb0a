"""Serving edgeseg artifacts with NVIDIA Triton Inference Server: the model repository
(repository.py), the Python-backend model that serves a Segmenter (model.py, copied into the
repository, imported only by Triton), and a local server for tests and benchmarks
(server.py)."""
