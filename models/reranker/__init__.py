"""Cross-encoder reranker (issue 5): the second linking phase, and NIL abstention.

Training side (torch): ``data`` (bi-encoder hard negatives), ``train`` (listwise training), ``export`` (int8 ONNX
artifact). Run time (torch-free): ``runtime`` (OnnxCrossEncoder), ``calibration`` (monotone NIL probability),
``scoring`` (rerank one mention: shared by the pipeline and its evaluation, ``pipeline.evaluation``).
"""
