"""``clin-linker run``: the main batch job (notes -> OMOP tables in DuckDB)."""
from __future__ import annotations

import argparse
from importlib import resources
from pathlib import Path

from ...pipeline.clinical_events import NLP_TYPE_CONCEPT_ID


def sample_notes_path() -> Path:
    """The synthetic sample notes shipped with the package (the embedded default input)."""
    return Path(str(resources.files("clin_linker.beam_jobs").joinpath("data/sample_notes.jsonl")))


def _print_summary(summary) -> None:
    print()
    print(f"notes read        {summary.read:>7}")
    print(f"  coded           {summary.coded:>7}   ({summary.notes_without_mentions} without any mention)")
    print(f"  dead-lettered   {summary.dead_lettered:>7}   {summary.dead_reasons or ''}")
    print(f"mentions          {summary.linked + summary.nil:>7}   (linked {summary.linked}, NIL {summary.nil})")
    for label, n in summary.mentions_by_label.items():
        print(f"  {label:<15} {n:>7}")
    print("top codes:")
    for code, n in summary.top_codes:
        print(f"  {n:>5}  {code}")
    print(f"rows inserted     {summary.rows_written}")
    if summary.type_concept_check is not None:
        print(f"derived events    *_type_concept_id {NLP_TYPE_CONCEPT_ID} (Type Concept 'NLP'): "
              f"{'verified in the concept store' if summary.type_concept_check == 'verified' else 'not in the concept store, not verified'}")
        if summary.event_skips:
            print(f"  {len(summary.event_skips)} note(s) without derived events: {'; '.join(summary.event_skips[:3])}"
                  + (" ..." if len(summary.event_skips) > 3 else ""))
    print(f"output            {summary.output}")
    print(f"dead letters      {summary.dead_letter_file}")


def _run(args: argparse.Namespace) -> int:
    from ...pipeline.section_concepts import read_section_map
    from ..job import run_job

    notes = args.notes or [sample_notes_path()]
    beam_args = [a for a in (args.beam_args or []) if a != "--"] or ["--runner=DirectRunner"]
    linker = {"k": args.k, "threshold": args.threshold}
    if args.threads:
        linker["threads"] = args.threads
    summary = run_job(notes, Path(args.out), args.dead_letter, fmt=args.format, index_dir=args.index or "",
                      linker_config=linker, beam_args=beam_args,
                      batch_size=args.batch_size, derive_clinical_tables=args.derive_clinical_tables,
                      section_concepts=read_section_map(args.section_concepts) if args.section_concepts else None)
    _print_summary(summary)
    if not summary.balanced():
        print(f"ERROR: read {summary.read} != coded {summary.coded} + dead-lettered {summary.dead_lettered}")
        return 1
    print(f"read {summary.read} = coded {summary.coded} + dead-lettered {summary.dead_lettered}")
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser(
        "run",
        help="run the Beam job: notes -> NOTE_NLP (+CONCEPT) rows in DuckDB",
        description="Read notes (JSONL, CSV or Parquet; OMOP NOTE fields, note_id + note_text required), "
        "validate them (bad ones go to a dead-letter JSONL file with the reason), link them with the "
        "clin_linker spaCy pipeline inside Apache Beam RunInference, and write OMOP CDM v5.4 NOTE_NLP rows "
        "(plus CONCEPT rows for local concept ids) to DuckDB. Re-runs upsert, never duplicate. "
        "Without --notes it runs on the shipped synthetic sample notes.",
        epilog="Beam options go after `--`, e.g. `clin-linker run --notes n.jsonl -- --runner=DirectRunner "
        "--direct_running_mode=multi_processing --direct_num_workers=2`.",
    )
    run.add_argument("--notes", action="append", help="notes file; repeat for several (default: sample notes)")
    run.add_argument("--format", default="auto", choices=["auto", "jsonl", "csv", "parquet"],
                     help="input format (default: from the file suffix)")
    run.add_argument("--out", default="clin_linker_omop.duckdb", help="DuckDB file to write (default: %(default)s)")
    run.add_argument("--dead-letter", help="dead-letter JSONL file (default: OUT.dead_letter.jsonl)")
    run.add_argument("--index", help="index directory (default: the embedded ICD-10-CM + HPO index, built on first use)")
    run.add_argument("--k", type=int, default=5, help="candidates kept per mention (default 5)")
    run.add_argument("--threshold", type=float, default=0.75,
                     help="NIL threshold: below this score a mention is written with concept 0 (default 0.75)")
    run.add_argument("--threads", type=int, default=0, help="onnxruntime threads per worker (default: all cores)")
    run.add_argument("--batch-size", type=int, default=32, help="notes per model call (default 32)")
    run.add_argument("--derive-clinical-tables", action="store_true",
                     help="also write affirmed, present, patient mentions as CONDITION_OCCURRENCE / DRUG_EXPOSURE / "
                     "PROCEDURE_OCCURRENCE rows (by the linked concept's domain; one per person + concept + "
                     f"note date; type concept {NLP_TYPE_CONCEPT_ID} 'NLP'); notes need person_id and note_date")
    run.add_argument("--section-concepts", metavar="FILE.json",
                     help="section -> concept map overrides, {title: concept id or concept key}, for "
                     "NOTE_NLP.section_concept_id (default: the LOINC section concepts the vocabulary holds, else 0)")
    run.add_argument("beam_args", nargs=argparse.REMAINDER, help="Beam pipeline options after --")
    run.set_defaults(handler=_run)
