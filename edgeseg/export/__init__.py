"""Export: the deploy graph to ONNX (simplified), checked against PyTorch, as an artifact."""
