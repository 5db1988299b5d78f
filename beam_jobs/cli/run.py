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
        linked = summary.linked_by_label.get(label, 0)
        print(f"  {label:<15} {n:>7}   (coded {linked}, {linked / n:.0%})")
    print("top codes:")
    for code, n in summary.top_codes:
        print(f"  {n:>5}  {code}")
    print(f"rows inserted     {summary.rows_written}")
    if summary.coder is not None:
        print(f"document codes    {summary.codes_accepted} accepted of {summary.codes_ranked} ranked by "
              f"{summary.coder} (table clin_linker_note_code)")
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
    from ..model_handler import CodingOptions

    from ..job import DEFAULT_RUNNER
    from ..note_tables import NoteTable

    note_table = None
    if args.notes_db or args.notes_table or args.where:
        if not (args.notes_db and args.notes_table):
            raise ValueError("reading notes from a database needs both --notes-db URL and --notes-table TABLE")
        if args.notes:
            raise ValueError("give --notes files or --notes-db/--notes-table, not both")
        note_table = NoteTable(args.notes_db, args.notes_table, args.where)
    notes = [] if note_table else (args.notes or [str(sample_notes_path())])
    beam_args = [a for a in (args.beam_args or []) if a != "--"] or [DEFAULT_RUNNER]
    linker: dict = {"k": args.k}
    if args.rerank:
        if args.threshold is not None:
            raise ValueError("--threshold is the NIL rule without reranking; with --rerank use --nil-threshold")
        from ...pipeline.reranking import resolve_reranker_dir

        from ..storage import fetch_directory

        # no reranker: fail here, naming the fix, not in a Beam worker (a URL is fetched here and by each worker)
        resolve_reranker_dir(str(fetch_directory(args.reranker)) if args.reranker else "")
        linker.update(rerank=True, reranker_dir=args.reranker or "")
        if args.nil_threshold is not None:
            linker["nil_threshold"] = args.nil_threshold
    elif args.reranker or args.nil_threshold is not None:
        raise ValueError("--reranker and --nil-threshold apply only with --rerank; add --rerank or drop them")
    else:
        linker["rerank"] = False
        if args.threshold is not None:
            linker["threshold"] = args.threshold
    if args.threads:
        linker["threads"] = args.threads
    targets = list(dict.fromkeys(t.strip() for value in args.target or () for t in value.split(",") if t.strip()))
    if targets:
        linker["targets"] = targets
    if args.functioning:
        linker["functioning"] = True
    coding = None
    if args.code:
        from ...pipeline.coder import excluded_flags

        coding = CodingOptions(coder_dir=args.coder, zero_shot=args.zero_shot,
                               excluded_flags=excluded_flags(args.include_negated))
    elif args.coder or args.zero_shot or args.include_negated:
        raise ValueError("--coder, --zero-shot and --include-negated apply only with --code; add --code or drop them")
    summary = run_job(notes, args.out, args.dead_letter, fmt=args.format, index_dir=args.index or "",
                      linker_config=linker, beam_args=beam_args,
                      batch_size=args.batch_size, derive_clinical_tables=args.derive_clinical_tables,
                      section_concepts=read_section_map(args.section_concepts) if args.section_concepts else None,
                      coding=coding, note_table=note_table, staging=args.staging, schema=args.schema,
                      incremental=args.incremental)
    _print_summary(summary)
    failed = False
    unchanged = f" + unchanged {summary.unchanged}" if summary.mode == "incremental" else ""
    if summary.balanced():
        print(f"read {summary.read} = coded {summary.coded} + dead-lettered {summary.dead_lettered}{unchanged}")
    else:
        print(f"ERROR: read {summary.read} != coded {summary.coded} + dead-lettered {summary.dead_lettered}{unchanged}")
        failed = True
    if summary.mode == "incremental" and summary.coded == 0:
        again = f" ({summary.dead_lettered} invalid record(s) dead-lettered again)" if summary.dead_lettered else ""
        print(f"nothing new: {summary.unchanged} notes are unchanged since this nlp_system last coded them; no rows "
              f"were written{again}")
    if summary.failed_share() > args.max_failed_share:
        # a run that codes a few notes and dead-letters the rest must not look like a success to a scheduler
        print(f"ERROR: {summary.failed_in_pipeline} of {summary.coded + summary.failed_in_pipeline} notes "
              f"({summary.failed_share():.1%}) failed in the pipeline (limit {args.max_failed_share:.1%}, "
              f"--max-failed-share); see the dead letters in {summary.dead_letter_file}")
        failed = True
    if args.out.startswith(("postgresql://", "postgres://")):
        print("report: not written for a PostgreSQL output (it reads a DuckDB file); see docs/report.md")
    elif not args.no_report:  # last: the file a person opens next (a failed run's report helps most)
        from ..report import write_report
        from .report import print_report_line

        print_report_line(write_report(Path(args.out)))
    return 1 if failed else 0


def _share(text: str) -> float:
    """argparse type of --max-failed-share: a number from 0 to 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number; give a share from 0 to 1, e.g. 0.05") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1; give a share, e.g. 0.05 for 5%")
    return value


def register(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser(
        "run",
        help="run the Beam job: notes -> NOTE_NLP (+CONCEPT) rows in DuckDB or PostgreSQL",
        description="Read notes (JSONL, CSV or Parquet files, local or any URL Beam reads; or an OMOP NOTE table "
        "with --notes-db/--notes-table), validate them (bad ones go to a dead-letter JSONL file with the reason), "
        "link them with the clin_linker spaCy pipeline inside Apache Beam RunInference, and write OMOP CDM v5.4 "
        "NOTE_NLP rows (plus CONCEPT rows for local concept ids) to DuckDB or PostgreSQL, the whole run in one "
        "transaction. Re-runs replace a note's rows, never duplicate them, and the same note gives the same rows "
        "whatever the batch size, worker count or runner. A DuckDB run ends by writing a review report, "
        "OUT.report.html (--no-report: none). Without --notes it runs on the shipped synthetic sample notes.",
        epilog="Beam options go after `--` (default: --runner=FnApiRunner, in-process, nothing downloaded), e.g. "
        "`clin-linker run --notes n.jsonl -- --runner=FnApiRunner --direct_running_mode=multi_processing "
        "--direct_num_workers=2`; cluster runners: docs/batch-job.md.",
    )
    run.add_argument("--notes", action="append",
                     help="notes file, URL or glob (e.g. gs://bucket/notes/*.jsonl); repeat for several "
                     "(default: the shipped sample notes)")
    run.add_argument("--notes-db", metavar="URL",
                     help="read notes from a database instead: a postgresql://user@host/db URL or a DuckDB file "
                     "(with --notes-table; columns: the OMOP NOTE table's, note_id and note_text required)")
    run.add_argument("--notes-table", metavar="TABLE", help="with --notes-db: TABLE or SCHEMA.TABLE, e.g. note")
    run.add_argument("--where", metavar="SQL",
                     help="with --notes-db: an SQL condition selecting the notes, e.g. \"note_date >= '2026-12-01'\" "
                     "(run read-only)")
    run.add_argument("--incremental", action="store_true",
                     help="code only notes that are new or whose text changed since this nlp_system (same models, "
                     "vocabularies and --code/--derive-clinical-tables) last coded them into --out; their old "
                     "rows are replaced. A run with nothing new writes nothing and says so")
    run.add_argument("--format", default="auto", choices=["auto", "jsonl", "csv", "parquet"],
                     help="input format (default: from the file suffix)")
    run.add_argument("--out", default="clin_linker_omop.duckdb",
                     help="DuckDB file, or postgresql://user[:password]@host[:port]/database URL, to write "
                     "(default: %(default)s)")
    run.add_argument("--schema", help="with a PostgreSQL --out: the schema of the CDM tables (default: public)")
    run.add_argument("--dead-letter",
                     help="dead-letter JSONL file, path or URL (default: OUT.dead_letter.jsonl; for PostgreSQL "
                     "./clin_linker.dead_letter.jsonl)")
    run.add_argument("--staging", metavar="URL",
                     help="folder or bucket where workers stage their shards (default: beside a DuckDB --out, else "
                     "a temp folder); on a cluster, a location every worker and the driver can reach")
    run.add_argument("--index",
                     help="index directory, path or URL fetched once per worker (default: the embedded ICD-10-CM + "
                     "HPO index, built on first use)")
    run.add_argument("--k", type=int, default=5, help="candidates kept per mention (default 5)")
    run.add_argument("--threshold", type=float,
                     help="NIL rule without reranking: below this bi-encoder cosine a mention is written with "
                     "concept 0 (default 0.75); not with --rerank, where --nil-threshold decides")
    run.add_argument("--rerank", action=argparse.BooleanOptionalAction, default=False,
                     help="rerank each mention's candidates with the context-reading reranker (the shipped one, or "
                     "--reranker); NIL is then decided by its calibrated probability (--nil-threshold). Default "
                     "--no-rerank: retrieval order, NIL below --threshold")
    run.add_argument("--reranker", metavar="DIR",
                     help="reranker artifact (default: the shipped models/reranker_context; an error when that is "
                     "not installed)")
    run.add_argument("--nil-threshold", type=float, metavar="P",
                     help="NIL rule with reranking: below this calibrated probability a mention is written with "
                     "concept 0 (default: the threshold in the reranker's calibration.json)")
    run.add_argument("--target", action="append", metavar="VOCABULARY",
                     help="code every mention into this vocabulary (e.g. ICD10CM): its best candidate of it becomes "
                     "the NOTE_NLP concept; repeat or comma-separate for more (span._.codes keeps the best of each, "
                     "the first decides the row); default: every vocabulary of the index competes")
    run.add_argument("--functioning", action="store_true",
                     help="also find functioning statements of therapy and nursing notes (ICF chapter d4, mobility: "
                     "'ambulated 150 ft with a rolling walker, min assist') and code them into ICF, as OBSERVATION "
                     "rows whose term_modifiers carry assistance, device and distance; needs an --index whose store "
                     "holds your ICF ClaML (`clin-linker vocab build --source icf-claml=icf.xml ...`)")
    run.add_argument("--threads", type=int, default=0, help="onnxruntime threads per worker (default: all cores)")
    run.add_argument("--batch-size", type=int, default=32, help="notes per model call (default 32)")
    run.add_argument("--derive-clinical-tables", action="store_true",
                     help="also write affirmed, present, patient mentions as CONDITION_OCCURRENCE / DRUG_EXPOSURE / "
                     "PROCEDURE_OCCURRENCE rows (by the linked concept's domain; one per person + concept + "
                     f"note date; type concept {NLP_TYPE_CONCEPT_ID} 'NLP'); notes need person_id and note_date. "
                     "With --code the ICD-10-CM condition rows are the coder's accepted codes instead")
    run.add_argument("--code", action="store_true",
                     help="also code each note (docs/coding.md): its ranked ICD-10-CM code list with evidence goes "
                     "to table clin_linker_note_code (every ranked code, column accepted = the coder's decision); "
                     "implies --target ICD10CM first and raises --k to the candidates the coder reads")
    run.add_argument("--coder", metavar="DIR",
                     help="with --code: coder model from `clin-linker train coder` (default: the shipped ICD-10-CM one)")
    run.add_argument("--zero-shot", action="store_true",
                     help="with --code: no coder model, rank codes by their mentions' retrieval scores alone")
    run.add_argument("--include-negated", action="store_true",
                     help="with --code: negated mentions make codes too (family and hypothetical ones still do not)")
    run.add_argument("--section-concepts", metavar="FILE.json",
                     help="section -> concept map overrides, {title: concept id or concept key}, for "
                     "NOTE_NLP.section_concept_id (default: the LOINC section concepts the vocabulary holds, else 0)")
    run.add_argument("--no-report", action="store_true",
                     help="do not write the review report OUT.report.html (summary, plots, notes with their "
                     "mentions highlighted; it holds note text, docs/report.md); `clin-linker report` writes one later")
    run.add_argument("--max-failed-share", type=_share, default=0.05, metavar="SHARE",
                     help="exit with status 1 when more than this share (0..1) of the notes that reached the pipeline "
                     "failed in it (dead letters with reason pipeline_error; invalid input does not count; "
                     "default %(default)s)")
    run.add_argument("beam_args", nargs=argparse.REMAINDER, help="Beam pipeline options after --")
    run.set_defaults(handler=_run)
