"""The batch job: notes files -> validated notes -> RunInference(spaCy pipeline) -> OMOP tables.

Thin on purpose: reading, validation, de-duplication, batching and dead-letters live here, outputs in .sinks;
linking is whatever :class:`~.model_handler.SpacyNoteModelHandler` loads (the shipped spaCy pipeline).
Workers write Parquet/JSONL shards to a staging directory (columns: schemas.tables); once the pipeline has
finished, the main process hands them to a :class:`~.sinks.Sink` (DuckDB) and checks that read = coded +
dead-lettered. With ``derive_clinical_tables`` the workers also stage derived clinical events and the sink loads
them too; with ``coding`` (``--code``) each note's ranked code list (table clin_linker_note_code), from which the
coded vocabulary's derived events then come. Every run is logged (table clin_linker_run: counts, dead-letter
reasons, time, input files, NIL threshold, vocabularies) with its mentions' structured fields
(clin_linker_mention): what ``clin-linker report`` reads.
"""
from __future__ import annotations

import datetime as dt
import json
import shutil
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.metrics import Metrics
from apache_beam.ml.inference.base import RunInference
from apache_beam.options.pipeline_options import PipelineOptions

from ..ontologies.index import store_dir_of
from ..ontologies.store import ConceptStore
from ..pipeline.clinical_events import check_type_concept
from ..pipeline.coder import CANDIDATES_PER_MENTION
from ..pipeline.resources import check_targets, resolve_index_dir
from ..pipeline.section_concepts import Override, resolve_section_concepts
from ..schemas.tables import NOTE_CODE, STAGED_EVENT, STAGED_NOTE_NLP
from .model_handler import CodingOptions, NoteResult, SpacyNoteModelHandler
from .notes import Note, dead_letter, read_records, validate
from .sinks import StagedCodes, StagedRun
from .sinks.duckdb import DuckDBSink

NAMESPACE = "clin_linker"
#: Dead-letter reason of a valid note that the pipeline failed on (the others are invalid input).
PIPELINE_ERROR = "pipeline_error"


class ReadNotes(beam.DoFn):
    """Path -> raw records; counts every record so the job can prove nothing was lost."""

    def __init__(self, fmt: str):
        self.fmt = fmt
        self.read = Metrics.counter(NAMESPACE, "records_read")

    def process(self, path: str):
        for raw in read_records(path, self.fmt):
            self.read.inc()
            yield raw


def _split_valid(raw):
    checked = validate(raw)
    if isinstance(checked, Note):
        yield checked
    else:
        yield beam.pvalue.TaggedOutput("dead", checked)


def _first_of_duplicates(item, file_order: dict[str, int]):
    """Keep the earliest occurrence of a note_id (files in the order given, then line); the others are
    dead letters."""
    note_id, notes = item
    ordered = sorted(notes, key=lambda n: (file_order[n.source], n.position))
    yield ordered[0]
    for dup in ordered[1:]:
        first = ordered[0]
        yield beam.pvalue.TaggedOutput("dead", dead_letter(
            dup.source, dup.position, {"note_id": note_id, **dup.fields}, "duplicate_note_id",
            f"{dup.source}:{dup.position}: note_id {note_id} was already read at {first.source}:{first.position}; "
            "note_id must be unique (this copy was not processed)"))


def _split_results(result: NoteResult):
    if result.error is None:
        yield result
    else:
        yield beam.pvalue.TaggedOutput("dead", dead_letter(
            result.source, result.position, {"note_id": result.note_id}, PIPELINE_ERROR,
            f"{result.source}:{result.position}: note {result.note_id} failed in the pipeline ({result.error}); "
            "the rest of its batch was coded"))


class WriteCodedShard(beam.DoFn):
    """One batch of coded notes -> a Parquet shard of NOTE_NLP rows (+ one of derived events, + one of their code
    lists) and a JSONL list of the coded note ids with their nlp_system (the sink replaces what that system derived
    from them before)."""

    def __init__(self, staging: str):
        self.staging = staging

    def process(self, batch: list[NoteResult]):
        name = uuid.uuid4().hex
        rows = [row for result in batch for row in result.rows]
        if rows:
            pq.write_table(pa.Table.from_pylist(rows, schema=STAGED_NOTE_NLP),
                           Path(self.staging) / f"note_nlp-{name}.parquet")
        events = [event for result in batch for event in result.events]
        if events:
            pq.write_table(pa.Table.from_pylist(events, schema=STAGED_EVENT),
                           Path(self.staging) / f"events-{name}.parquet")
        codes = [code for result in batch for code in result.codes]
        if codes:
            pq.write_table(pa.Table.from_pylist(codes, schema=NOTE_CODE),
                           Path(self.staging) / f"note_code-{name}.parquet")
        with open(Path(self.staging) / f"coded-{name}.jsonl", "w") as f:
            for result in batch:
                f.write(json.dumps({"note_id": result.note_id, "mentions": len(result.rows),
                                    "nlp_system": result.nlp_system, "events": len(result.events),
                                    "event_skip": result.event_skip, "codes": len(result.codes),
                                    "accepted": sum(1 for c in result.codes if c["accepted"]),
                                    "nil_threshold": result.nil_threshold}) + "\n")
        yield len(batch)


class WriteDeadShard(beam.DoFn):
    def __init__(self, staging: str):
        self.staging = staging

    def process(self, batch: list[dict]):
        with open(Path(self.staging) / f"dead-{uuid.uuid4().hex}.jsonl", "w") as f:
            for record in batch:
                f.write(json.dumps(record, default=str) + "\n")
        yield len(batch)


@dataclass
class JobSummary:
    read: int
    coded: int
    dead_lettered: int
    dead_reasons: dict[str, int]
    rows_written: dict[str, int]
    mentions_by_label: dict[str, int]
    linked: int
    nil: int
    top_codes: list[tuple[str, int]]
    output: str
    dead_letter_file: str
    notes_without_mentions: int = 0
    #: --derive-clinical-tables: why notes got no derived events (names note and field), and whether the NLP
    #: type concept id was verified against the store ("verified" / "absent"); None when not deriving
    event_skips: list[str] = field(default_factory=list)
    type_concept_check: str | None = None
    #: --code: the coder's model id, and the codes it ranked and accepted over all notes; None / 0 without
    coder: str | None = None
    codes_ranked: int = 0
    codes_accepted: int = 0

    def balanced(self) -> bool:
        return self.read == self.coded + self.dead_lettered

    @property
    def failed_in_pipeline(self) -> int:
        """Valid, unique notes the pipeline raised on (invalid input is not counted: it never reached it)."""
        return self.dead_reasons.get(PIPELINE_ERROR, 0)

    def failed_share(self) -> float:
        """Share of the notes that reached the pipeline and failed in it (0.0 when none reached it)."""
        reached = self.coded + self.failed_in_pipeline
        return self.failed_in_pipeline / reached if reached else 0.0


def build_beam_pipeline(p: beam.Pipeline, notes: list[str], fmt: str, handler: SpacyNoteModelHandler,
                        staging: str, batch_size: int) -> None:
    raw = p | "Paths" >> beam.Create(notes) | "Read" >> beam.ParDo(ReadNotes(fmt))
    checked = raw | "Validate" >> beam.FlatMap(_split_valid).with_outputs("dead", main="notes")
    unique = (
        checked.notes
        | "KeyById" >> beam.Map(lambda n: (n.note_id, n))
        | "GroupById" >> beam.GroupByKey()
        | "Dedupe" >> beam.FlatMap(_first_of_duplicates, {path: i for i, path in enumerate(notes)})
        .with_outputs("dead", main="notes")
    )
    results = (
        unique.notes
        | "Link" >> RunInference(handler)
        | "SplitErrors" >> beam.FlatMap(_split_results).with_outputs("dead", main="coded")
    )
    (results.coded
     | "BatchCoded" >> beam.BatchElements(min_batch_size=batch_size, max_batch_size=batch_size * 8)
     | "WriteCoded" >> beam.ParDo(WriteCodedShard(staging)))
    ((checked.dead, unique.dead, results.dead)
     | "AllDead" >> beam.Flatten()
     | "BatchDead" >> beam.BatchElements(min_batch_size=64, max_batch_size=1024)
     | "WriteDead" >> beam.ParDo(WriteDeadShard(staging)))


def coding_linker_config(linker_config: Mapping, coding: CodingOptions) -> dict:
    """The linker config a coded run needs: the coded vocabulary as the first target (the coder reads every
    mention's candidates of it) and at least :data:`CANDIDATES_PER_MENTION` candidates kept per mention."""
    config = dict(linker_config)
    targets = list(config.get("targets") or ())
    if targets and targets[0] != coding.vocabulary:
        raise ValueError(f"--code codes into {coding.vocabulary}, so {coding.vocabulary} must be the first --target "
                         f"(linker targets), not {targets[0]}: drop --target or put {coding.vocabulary} first")
    config["targets"] = targets or [coding.vocabulary]
    config["k"] = max(int(config.get("k") or 0), CANDIDATES_PER_MENTION)
    return config


def _jsonl_rows(paths: list[Path]) -> list[dict]:
    return [json.loads(line) for path in paths for line in path.read_text().splitlines() if line]


def run_job(
    notes: list[str | Path],
    output: Path,
    dead_letter_file: Path | None = None,
    fmt: str = "auto",
    index_dir: str = "",
    linker_config: dict | None = None,
    beam_args: list[str] | None = None,
    batch_size: int = 32,
    derive_clinical_tables: bool = False,
    section_concepts: Mapping[str, Override] | None = None,
    coding: CodingOptions | None = None,
) -> JobSummary:
    """Run the job end to end and return its summary (nothing is printed here).

    ``derive_clinical_tables``: also write affirmed, present patient mentions as CONDITION_OCCURRENCE /
    DRUG_EXPOSURE / PROCEDURE_OCCURRENCE rows. ``section_concepts``: overrides of the section -> concept map
    (title -> concept id or concept key; default: LOINC section concepts the store holds, else 0).
    ``coding``: also code each note with that document coder into table clin_linker_note_code (every ranked code,
    ``accepted`` or not); the linker then targets its vocabulary first (:func:`coding_linker_config`), and with
    ``derive_clinical_tables`` that vocabulary's events are the coder's accepted codes, one per code and note.
    """
    output = Path(output)
    dead_letter_file = Path(dead_letter_file or output.with_name(output.name + ".dead_letter.jsonl"))
    paths = [str(Path(n).resolve()) for n in notes]
    for path in paths:
        if not Path(path).exists():
            raise FileNotFoundError(f"notes file {path} does not exist")
    # resolve (and if needed build) the index once, here, so workers only load it
    index = resolve_index_dir(index_dir)
    store = ConceptStore(store_dir_of(index))
    if coding is not None:
        linker_config = coding_linker_config(linker_config or {}, coding)
    check_targets((linker_config or {}).get("targets", ()), store)  # here, not in a Beam worker
    # a missing or mismatched coder model fails here too; its id names the run's lists (a small model: < 1 s)
    coder_id = coding.load(store).model_id if coding is not None else None
    sections = resolve_section_concepts(store, section_concepts)  # bad overrides fail before any work
    type_check = check_type_concept(store) if derive_clinical_tables else None
    run_at = dt.datetime.now().replace(microsecond=0)
    handler = SpacyNoteModelHandler({"index_dir": str(index), **(linker_config or {})}, run_at,
                                    min_batch_size=min(8, batch_size), max_batch_size=batch_size,
                                    section_concepts=sections, derive_events=derive_clinical_tables,
                                    coding=coding)
    staging = output.parent / f".{output.name}.staging-{uuid.uuid4().hex[:8]}"
    staging.mkdir(parents=True)
    try:
        options = PipelineOptions(beam_args or ["--runner=DirectRunner"])
        p = beam.Pipeline(options=options)
        build_beam_pipeline(p, paths, fmt, handler, str(staging), batch_size)
        started = time.perf_counter()
        result = p.run()
        result.wait_until_finish()
        seconds = time.perf_counter() - started
        read = sum(c.committed for c in result.metrics().query(
            beam.metrics.MetricsFilter().with_namespace(NAMESPACE).with_name("records_read"))["counters"])

        coded = _jsonl_rows(sorted(staging.glob("coded-*.jsonl")))
        dead = _jsonl_rows(sorted(staging.glob("dead-*.jsonl")))
        dead.sort(key=lambda d: (d["source"], d["position"] or 0))
        dead_letter_file.parent.mkdir(parents=True, exist_ok=True)
        with open(dead_letter_file, "w") as f:
            for record in dead:
                f.write(json.dumps(record) + "\n")
        shards = sorted(staging.glob("note_nlp-*.parquet"))
        events = sorted(staging.glob("events-*.parquet")) if derive_clinical_tables else None
        codes = (StagedCodes(coder_id, sorted(staging.glob("note_code-*.parquet"))) if coding is not None
                 else None)
        run = _run_row(run_at, seconds, read, coded, dead, dead_letter_file, paths, fmt, store, coder_id)
        written = DuckDBSink(output, store).write(
            StagedRun(shards, events, [(c["note_id"], c["nlp_system"]) for c in coded], codes, run))
        summary = _summarize(shards, store)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return JobSummary(
        read=read, coded=len(coded), dead_lettered=len(dead),
        dead_reasons=dict(Counter(d["reason_code"] for d in dead)),
        rows_written=written, output=str(output), dead_letter_file=str(dead_letter_file),
        notes_without_mentions=sum(1 for c in coded if c["mentions"] == 0),
        event_skips=sorted(c["event_skip"] for c in coded if c.get("event_skip")),
        type_concept_check=type_check, coder=coder_id, codes_ranked=sum(c["codes"] for c in coded),
        codes_accepted=sum(c["accepted"] for c in coded), **summary,
    )


def _run_row(run_at: dt.datetime, seconds: float, read: int, coded: list[dict], dead: list[dict],
             dead_letter_file: Path, paths: list[str], fmt: str, store: ConceptStore, coder: str | None) -> dict:
    """The run's row of table clin_linker_run (``schemas.tables.RUN``): what a review of the run needs beyond the
    rows themselves. The input files are recorded so a report can read the note text back from them instead of the
    database keeping a copy of it."""
    return {
        "run_id": uuid.uuid4().hex, "nlp_system": coded[0]["nlp_system"] if coded else None, "started_at": run_at,
        "seconds": round(seconds, 3), "notes_read": read, "notes_coded": len(coded), "notes_dead_lettered": len(dead),
        "dead_letter_reasons": json.dumps(dict(Counter(d["reason_code"] for d in dead))),
        "dead_letter_file": str(dead_letter_file), "note_files": json.dumps(paths), "note_format": fmt,
        "nil_threshold": next((c["nil_threshold"] for c in coded if c.get("nil_threshold") is not None), None),
        "vocabularies": json.dumps([{k: v.get(k) for k in ("vocabulary_id", "version", "concepts")}
                                    for v in store.manifest.get("vocabularies", [])]),
        "coder": coder,
    }


def _summarize(shards: list[Path], store: ConceptStore) -> dict:
    """Mentions per label, linked vs NIL and the ten most frequent codes, from the staged rows' own columns."""
    labels: Counter[str] = Counter()
    codes: Counter[str] = Counter()
    nil = 0
    for shard in shards:
        table = pq.read_table(shard, columns=["label", "concept_key"])
        labels.update(table.column("label").to_pylist())
        for key in table.column("concept_key").to_pylist():
            if key is None:
                nil += 1
            else:
                codes[key] += 1
    top = sorted(codes.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    return {
        "mentions_by_label": dict(labels.most_common()),
        "linked": sum(codes.values()),
        "nil": nil,
        "top_codes": [(f"{c} {store[c].concept_name}"[:80], n) for c, n in top],
    }
