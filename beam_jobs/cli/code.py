"""``clin-linker code``: each note's ranked code list with evidence (JSONL, and a NOTE_CODE table on request).

The same notes reader as ``clin-linker run`` (JSONL / CSV / Parquet with note_id and note_text; invalid records are
reported by note and field and skipped, never silently), the same pipeline, and the coder ``clin-linker eval
coding`` scores (``pipeline.coder``). Every code written is validated against the store's vocabulary (for ICD-10-CM:
the FY2026 Tabular List) before it leaves.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tqdm import tqdm

from .run import sample_notes_path


def _notes(path: Path, fmt: str) -> tuple[list, list[dict]]:
    from ..notes import Note, read_records, validate

    notes, rejected = [], []
    for raw in read_records(path, fmt):
        checked = validate(raw)
        (notes if isinstance(checked, Note) else rejected).append(checked)
    return notes, rejected


def _code(args: argparse.Namespace) -> int:
    from ...pipeline.build import linker_of
    from ...pipeline.coder import build_coding_pipeline, coding_reranker_dir, excluded_flags, load_coder
    from ...pipeline.evaluation.coding import vocabulary_codes
    from ..sinks.note_codes import write_note_codes

    notes, rejected = _notes(Path(args.notes), args.format)
    for record in rejected:
        print(f"skipped: {record['reason']}", file=sys.stderr)
    nlp = build_coding_pipeline(args.vocabulary, args.index or "", args.threads,
                                coding_reranker_dir(args.rerank, args.no_rerank, args.coder, args.zero_shot,
                                                    vocabulary=args.vocabulary))
    coder = load_coder(linker_of(nlp).resources.store, args.vocabulary, args.coder, args.zero_shot,
                       excluded_flags(args.include_negated))
    valid, _ = vocabulary_codes(nlp, args.vocabulary)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    docs = nlp.pipe((n.note_text for n in notes), batch_size=args.batch_size)
    with out.open("w", encoding="utf-8") as handle:
        for note, doc in tqdm(zip(notes, docs), total=len(notes), desc="coding notes", unit="note"):
            codes = [c for c in coder(doc) if args.all or c.accepted]
            invalid = [c.code for c in codes if c.code not in valid]
            if invalid:
                raise ValueError(f"note {note.note_id}: the coder produced codes outside {args.vocabulary} "
                                 f"({', '.join(invalid)}); this is a bug, please report it with the coder model used")
            handle.write(json.dumps({"note_id": note.note_id, "coder": coder.model_id,
                                     "codes": [c.as_json() for c in codes]}) + "\n")
            rows.extend((note.note_id, rank, c) for rank, c in enumerate(codes, start=1))
    if args.db:
        write_note_codes(Path(args.db), rows, coder.model_id, linker_of(nlp).resources.store,
                         [n.note_id for n in notes])
    accepted = sum(1 for _, _, c in rows if c.accepted)
    print(f"coded {len(notes)} notes into {args.vocabulary} with {coder.model_id}: {accepted} accepted codes"
          + ("" if not args.all else f", {len(rows)} ranked") + f" -> {out}"
          + (f" and table note_code in {args.db}" if args.db else "")
          + (f"; {len(rejected)} invalid record(s) skipped" if rejected else ""))
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    from ...pipeline.evaluation.cli import add_coder_options

    ap = commands.add_parser(
        "code",
        help="each note's ranked code list (ICD-10-CM by default) with the evidence mentions, as JSONL",
        description="Code whole notes: the pipeline links every mention into --vocabulary, and the coder (the "
        "shipped model of ICD10CM or ICD10PCS, --coder DIR from `clin-linker train coder`, or --zero-shot) ranks "
        "each note's codes. One JSON line per note: {note_id, coder, codes: [{code, concept_key, score, accepted, "
        "modifiers, evidence: [{start, end, text, label, rank, score, flags, source}]}]}, best first. Negated, "
        "family and hypothetical mentions make no code (historical and uncertain ones do). Categories that the "
        "Tabular List (ICD-10-PCS: the tables and the mention's approach) does not let us complete unambiguously "
        "keep the modifier specificity=category.",
    )
    ap.add_argument("--notes", default=str(sample_notes_path()),
                    help="notes file: JSONL, CSV or Parquet with note_id and note_text (default: the sample notes)")
    ap.add_argument("--format", default="auto", choices=("auto", "jsonl", "csv", "parquet"),
                    help="notes file format (default: from the file extension)")
    ap.add_argument("--out", required=True, help="JSONL file to write, one line per note")
    ap.add_argument("--db", default=None, metavar="DUCKDB",
                    help="also write the codes to table note_code of this DuckDB file (e.g. the run's omop.duckdb)")
    ap.add_argument("--all", action="store_true",
                    help="write every ranked candidate code, not only the accepted ones (field accepted tells them apart)")
    ap.add_argument("--batch-size", type=int, default=16, help="notes per spaCy batch (default 16)")
    add_coder_options(ap)
    ap.set_defaults(handler=_code)
