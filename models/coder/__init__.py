"""The document coder's scorer: a small gradient-boosted tree model over per-(note, code) features, as ONNX."""
