"""Export: the ONNX file and its contract with consumers, graph passes, int8 quantization, the
parity check, the model card and publishing. Kept free of imports: ``graft.predict`` reads
``contract`` with onnxruntime alone."""
