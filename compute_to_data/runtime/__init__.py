"""In-sandbox runners (standard library + numpy/onnxruntime only; never import the connector)."""
