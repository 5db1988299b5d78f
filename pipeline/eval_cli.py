"""``clin-linker eval ner``: strict span precision/recall/F1 of a mention detector on an annotated file.

Reads the shared NER JSONL format (``text`` + ``entities`` with ``start``/``end``/``label``), so it scores
the dev corpora as well as any user's annotated notes. ``--detector`` picks what is scored: the NER model
alone, the dictionary detector alone, or both as the shipped pipeline unites them.
"""
from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

DETECTORS = ("ner", "dictionary", "ner+dictionary")


class PipelineDetector:
    """The spaCy pipeline's mentions (``doc.ents``) as a tagger, so every detector is scored the same way."""

    def __init__(self, detector: str, model_dir: str, index_dir: str, threads: int):
        from .build import build_pipeline

        self.nlp = build_pipeline(
            index_dir,
            ner=detector != "dictionary",
            ner_config={"model_dir": model_dir, "threads": threads},
            detector="none" if detector == "ner" else "dictionary",
            threads=threads,
        )

    def predict(self, texts: Sequence[str], batch_size: int = 16) -> list[list[tuple[int, int, str]]]:
        return [[(e.start_char, e.end_char, e.label_) for e in doc.ents]
                for doc in self.nlp.pipe(texts, batch_size=batch_size)]


def _eval_ner(args: argparse.Namespace) -> int:
    from ..models.ner.labels import LABELS
    from ..models.ner.metrics import evaluate_file, format_table
    from .ner_component import DEFAULT_WINDOW_BATCH, load_tagger

    data = Path(args.data)
    if not data.exists():
        raise FileNotFoundError(f"annotated file {data} does not exist")
    if args.detector == "ner":
        tagger = load_tagger(args.model or None, args.threads)
        tagger_batch = DEFAULT_WINDOW_BATCH  # score what the component runs
    else:
        tagger = PipelineDetector(args.detector, args.model or "", args.index or "", args.threads)
        tagger_batch = 32
    report = evaluate_file(data, tagger, labels=LABELS if args.all_labels else None, batch_size=tagger_batch)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{args.detector} on {data} ({report['n_docs']} docs; scored labels: "
              f"{', '.join(report['scored_labels'])})")
        print(format_table({data.parent.name or data.name: report}))
    return 0


def _eval_context(args: argparse.Namespace) -> int:
    from .context_component import score_context

    data = Path(args.data)
    if not data.exists():
        raise FileNotFoundError(f"annotated file {data} does not exist")
    examples = []
    for number, line in enumerate(data.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        example = json.loads(line)
        missing = [k for k in ("text", "start", "end") if k not in example]
        if missing:
            raise ValueError(f"{data}, line {number}: field(s) {', '.join(missing)} missing; each line needs "
                             "text, start, end and the flags to score")
        examples.append(example)
    scores = score_context(examples)
    if args.json:
        print(json.dumps(scores, indent=2))
    else:
        print(f"{'flag':<13} {'accuracy':>8} {'precision':>9} {'recall':>7} {'f1':>6} {'n':>5}")
        for flag, s in scores.items():
            print(f"{flag:<13} {s['accuracy']:>8.3f} {s['precision']:>9.3f} {s['recall']:>7.3f} {s['f1']:>6.3f} {s['n']:>5}")
    return 0


def _eval_linking(args: argparse.Namespace) -> int:
    from ..models.biencoder.evaluate import main as linking_main

    return linking_main(args.extra)


def register(commands: argparse._SubParsersAction) -> None:
    evaluate = commands.add_parser("eval", help="score detectors and linkers on annotated files")
    sub = evaluate.add_subparsers(dest="eval_command", metavar="WHAT", required=True)
    ner = sub.add_parser(
        "ner",
        help="strict span P/R/F1 per label and micro of a mention detector",
        description="Strict span precision/recall/F1 (exact start, end and label) per label and micro-averaged, "
        "on a JSONL file with one document per line: {\"text\": ..., \"entities\": [{\"start\", \"end\", "
        "\"label\"}]}. By default only the labels the file annotates are scored (a disease-only corpus cannot "
        "judge predicted drugs); --all-labels scores all six.",
    )
    ner.add_argument("--data", required=True, help="annotated JSONL file")
    ner.add_argument("--model", help="NER artifact directory (default: the shipped int8 model)")
    ner.add_argument("--detector", choices=DETECTORS, default="ner",
                     help="what to score: the NER model (default), the dictionary detector, or their union "
                          "as the shipped pipeline runs it")
    ner.add_argument("--index", help="index directory for the dictionary detector (default: the embedded one)")
    ner.add_argument("--all-labels", action="store_true", help="score all six labels, annotated or not")
    ner.add_argument("--threads", type=int, default=0, help="onnxruntime threads (default: all cores)")
    ner.add_argument("--json", action="store_true",
                     help='print one JSON object {"micro": {...}, "labels": {...}, "n_docs": N}')
    ner.set_defaults(handler=_eval_ner)
    context = sub.add_parser(
        "context",
        help="accuracy and F1 per assertion flag (negated, uncertain, historical, hypothetical, family)",
        description="Score the pipeline's sections + ConText on annotated spans: one JSON object per line, "
        '{"text", "start", "end", "negated", "uncertain", "historical", "hypothetical", "family"}; the span is '
        "the target, and flags absent from a line are not scored.",
    )
    context.add_argument("--data", required=True, help="annotated JSONL file")
    context.add_argument("--json", action="store_true",
                         help='print one JSON object {FLAG: {"accuracy", "precision", "recall", "f1", "n"}}')
    context.set_defaults(handler=_eval_context)
    linking = sub.add_parser(
        "linking", add_help=False,
        help="acc@1/5/25 + MRR of an encoder on mention->concept pairs (options: clin-linker eval linking --help)",
        description="Every option is passed to clin_linker.models.biencoder.evaluate.",
    )
    linking.set_defaults(handler=_eval_linking, passes_options_on=True)
