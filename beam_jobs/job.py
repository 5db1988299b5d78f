"""The batch job: notes (files or a NOTE table) -> validated notes -> RunInference(spaCy pipeline) -> OMOP tables.

Thin on purpose: reading, validation, de-duplication, batching and dead letters live here, outputs in .sinks;
linking is whatever :class:`~.model_handler.SpacyNoteModelHandler` loads (the shipped spaCy pipeline).

Built to run on a cluster as it runs here (docs/batch-job.md):

- every file goes through Beam's ``FileSystems`` (:mod:`.storage`): notes files may be URLs or globs, the staging
  folder (``staging``) may be a bucket, and the index and models may be URLs that each worker fetches once;
- workers write staging shards named after their content (the sorted note ids they hold) under a temporary name and
  rename them into place, so a retried bundle replaces its shard instead of adding one; should a retry batch notes
  differently, the driver keeps one copy of each note's rows (:func:`_deduplicated`);
- counts travel as data (``count-*.json`` shards from ``Count.Globally``), not as Beam metrics, which several
  runners do not report; the driver checks read = coded + dead-lettered + unchanged;
- the models are batch-independent, so a note gives the same rows whatever the batch size, worker count or runner.

Once the pipeline has finished, the driver hands the shards to one :class:`~.sinks.Sink` (DuckDB file or PostgreSQL)
that writes the whole run in one transaction. With ``derive_clinical_tables`` the workers also stage derived clinical
events; with ``coding`` (``--code``) each note's ranked code list (table clin_linker_note_code). Every run is logged
(table clin_linker_run) with its mentions' structured fields (clin_linker_mention) and each coded note's text hash
(clin_linker_note_state), which ``incremental`` runs compare to code only new and changed notes.
"""
from __future__ import annotations

import datetime as dt
import io
import json
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.ml.inference.base import RunInference
from apache_beam.options.pipeline_options import PipelineOptions

from ..ontologies.index import store_dir_of
from ..ontologies.store import ConceptStore
from ..pipeline.clinical_events import check_type_concept
from ..pipeline.coder import CANDIDATES_PER_MENTION
from ..pipeline.functioning import check_functioning_target
from ..pipeline.resources import check_targets, resolve_index_dir
from ..pipeline.section_concepts import Override, resolve_section_concepts
from ..schemas.tables import NOTE_CODE, STAGED_EVENT, STAGED_NOTE_NLP
from . import storage
from .errors import JobFailed
from .model_handler import CodingOptions, NoteResult, SpacyNoteModelHandler
from .note_tables import NoteTable, is_postgresql_url, redact_url
from .notes import Note, dead_letter, read_records, validate
from .sinks import StagedCodes, StagedRun, open_sink

#: Dead-letter reason of a valid note that the pipeline failed on (the others are invalid input).
PIPELINE_ERROR = "pipeline_error"
#: The runner when none is given: Beam's portable in-process runner. It needs nothing from the network (the
#: DirectRunner of Beam 2.77 may download the Prism binary first), and its multi-processing mode runs real SDK
#: worker processes (``--direct_running_mode=multi_processing --direct_num_workers=N``).
DEFAULT_RUNNER = "--runner=FnApiRunner"


def _read_file(path: str, fmt: str):
    yield from read_records(path, fmt)


def _read_table(table: NoteTable):
    yield from table.read()


def _split_valid(raw):
    checked = validate(raw)
    if isinstance(checked, Note):
        yield checked
    else:
        yield beam.pvalue.TaggedOutput("dead", checked)


def _first_of_duplicates(item, source_order: dict[str, int]):
    """Keep the earliest occurrence of a note_id (sources in the order given, then line); the others are
    dead letters."""
    note_id, notes = item
    ordered = sorted(notes, key=lambda n: (source_order.get(n.source, 0), n.position))
    yield ordered[0]
    for dup in ordered[1:]:
        first = ordered[0]
        yield beam.pvalue.TaggedOutput("dead", dead_letter(
            dup.source, dup.position, {"note_id": note_id, **dup.fields}, "duplicate_note_id",
            f"{dup.source}:{dup.position}: note_id {note_id} was already read at {first.source}:{first.position}; "
            "note_id must be unique (this copy was not processed)"))


def _new_or_changed(note: Note, states: Mapping[int, str]):
    """--incremental: a note whose text hash equals the one last coded goes to the "unchanged" output."""
    from .model_handler import text_sha256

    if states.get(note.note_id) == text_sha256(note.note_text):
        yield beam.pvalue.TaggedOutput("unchanged", note.note_id)
    else:
        yield note


def _split_results(result: NoteResult):
    if result.error is None:
        yield result
    else:
        yield beam.pvalue.TaggedOutput("dead", dead_letter(
            result.source, result.position, {"note_id": result.note_id}, PIPELINE_ERROR,
            f"{result.source}:{result.position}: note {result.note_id} failed in the pipeline ({result.error}); "
            "the rest of its batch was coded"))


def _parquet_bytes(rows: list[dict], schema: pa.Schema) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), buffer)
    return buffer.getvalue()


class WriteCodedShard(beam.DoFn):
    """One batch of coded notes -> a Parquet shard of NOTE_NLP rows (+ one of derived events, + one of their code
    lists) and a JSONL list of the coded notes with their nlp_system, counts and text hash. All are named after the
    batch's note ids (``storage.content_name``): a retried bundle overwrites its own shards."""

    def __init__(self, staging: str):
        self.staging = staging

    def process(self, batch: list[NoteResult]):
        ids = [result.note_id for result in batch]
        for prefix, rows, schema in (
            ("note_nlp", [row for result in batch for row in result.rows], STAGED_NOTE_NLP),
            ("events", [event for result in batch for event in result.events], STAGED_EVENT),
            ("note_code", [code for result in batch for code in result.codes], NOTE_CODE),
        ):
            if rows:
                storage.write_atomically(storage.join(self.staging, storage.content_name(prefix, ids, ".parquet")),
                                         _parquet_bytes(rows, schema))
        lines = [json.dumps({"note_id": result.note_id, "mentions": len(result.rows),
                             "nlp_system": result.nlp_system, "events": len(result.events),
                             "event_skip": result.event_skip, "codes": len(result.codes),
                             "accepted": sum(1 for c in result.codes if c["accepted"]),
                             "nil_threshold": result.nil_threshold, "text_sha256": result.text_sha256})
                 for result in batch]
        storage.write_atomically(storage.join(self.staging, storage.content_name("coded", ids, ".jsonl")),
                                 ("\n".join(lines) + "\n").encode())
        yield len(batch)


class WriteDeadShard(beam.DoFn):
    """A batch of dead letters -> one JSONL shard named after the records' (source, position, reason)."""

    def __init__(self, staging: str):
        self.staging = staging

    def process(self, batch: list[dict]):
        keys = [f"{r['source']}\x1f{r['position']}\x1f{r['reason_code']}\x1f{r['note_id']}" for r in batch]
        data = "".join(json.dumps(record, default=str) + "\n" for record in batch).encode()
        storage.write_atomically(storage.join(self.staging, storage.content_name("dead", keys, ".jsonl")), data)
        yield len(batch)


class WriteCount(beam.DoFn):
    """The one total of ``Count.Globally`` -> ``count-<name>.json`` (a fixed name: a retry rewrites it)."""

    def __init__(self, staging: str, name: str):
        self.staging = staging
        self.name = name

    def process(self, count: int):
        storage.write_atomically(storage.join(self.staging, f"count-{self.name}.json"),
                                 json.dumps({self.name: count}).encode())
        yield count


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
    #: linked (not NIL) mentions per label, so a user sees e.g. which share of PROCEDURE mentions got a code
    linked_by_label: dict[str, int] = field(default_factory=dict)
    #: --derive-clinical-tables: why notes got no derived events (names note and field), and whether the NLP
    #: type concept id was verified against the store ("verified" / "absent"); None when not deriving
    event_skips: list[str] = field(default_factory=list)
    type_concept_check: str | None = None
    #: --code: the coder's model id, and the codes it ranked and accepted over all notes; None / 0 without
    coder: str | None = None
    codes_ranked: int = 0
    codes_accepted: int = 0
    #: --incremental: notes skipped because their text is what was coded last time ("full" runs: 0)
    unchanged: int = 0
    mode: str = "full"

    def balanced(self) -> bool:
        return self.read == self.coded + self.dead_lettered + self.unchanged

    @property
    def failed_in_pipeline(self) -> int:
        """Valid, unique notes the pipeline raised on (invalid input is not counted: it never reached it)."""
        return self.dead_reasons.get(PIPELINE_ERROR, 0)

    def failed_share(self) -> float:
        """Share of the notes that reached the pipeline and failed in it (0.0 when none reached it)."""
        reached = self.coded + self.failed_in_pipeline
        return self.failed_in_pipeline / reached if reached else 0.0


def build_beam_pipeline(p: beam.Pipeline, source: Sequence[str] | NoteTable, fmt: str,
                        handler: SpacyNoteModelHandler, staging: str, batch_size: int,
                        states: Mapping[int, str] | None = None) -> None:
    """The job's graph. ``source``: notes files (paths/URLs) or a NOTE table; ``states``: note_id -> text hash of
    the notes coded before (``--incremental``; None codes every note)."""
    if isinstance(source, NoteTable):
        raw = p | "Table" >> beam.Create([source]) | "Read" >> beam.FlatMap(_read_table)
        order = {source.describe(): 0}
    else:
        raw = (p | "Paths" >> beam.Create(list(source)) | "SpreadFiles" >> beam.Reshuffle()
               | "Read" >> beam.FlatMap(_read_file, fmt))
        order = {path: i for i, path in enumerate(source)}
    (raw | "CountRead" >> beam.combiners.Count.Globally() | "WriteReadCount" >> beam.ParDo(WriteCount(staging, "read")))
    checked = raw | "Validate" >> beam.FlatMap(_split_valid).with_outputs("dead", main="notes")
    unique = (
        checked.notes
        | "KeyById" >> beam.Map(lambda n: (n.note_id, n))
        | "GroupById" >> beam.GroupByKey()
        | "Dedupe" >> beam.FlatMap(_first_of_duplicates, order).with_outputs("dead", main="notes")
    )
    notes = unique.notes
    if states is not None:
        split = notes | "SkipUnchanged" >> beam.FlatMap(
            _new_or_changed, beam.pvalue.AsDict(p | "States" >> beam.Create(sorted(states.items())))
        ).with_outputs("unchanged", main="notes")
        notes = split.notes
        (split.unchanged | "CountUnchanged" >> beam.combiners.Count.Globally()
         | "WriteUnchangedCount" >> beam.ParDo(WriteCount(staging, "unchanged")))
    results = (
        notes
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


def run_job(
    notes: Sequence[str | Path],
    output: str | Path,
    dead_letter_file: str | Path | None = None,
    fmt: str = "auto",
    index_dir: str = "",
    linker_config: dict | None = None,
    beam_args: list[str] | None = None,
    batch_size: int = 32,
    derive_clinical_tables: bool = False,
    section_concepts: Mapping[str, Override] | None = None,
    coding: CodingOptions | None = None,
    *,
    note_table: NoteTable | None = None,
    staging: str | None = None,
    schema: str | None = None,
    incremental: bool = False,
) -> JobSummary:
    """Run the job end to end and return its summary (nothing is printed here).

    ``notes``: files, URLs or globs (empty when ``note_table`` gives the notes). ``output``: a DuckDB file or a
    ``postgresql://`` URL (``schema``: its schema). ``index_dir``: path or URL ("" = the embedded default index).
    ``staging``: folder or bucket URL for the workers' shards (default: next to a DuckDB output, else a local temp
    folder; a cluster needs a location every worker can write). ``incremental``: code only notes that are new or
    whose text changed since this nlp_system (with the same coding/derive options) last coded them into ``output``.
    ``derive_clinical_tables``: also write affirmed, present patient mentions as CONDITION_OCCURRENCE /
    DRUG_EXPOSURE / PROCEDURE_OCCURRENCE rows. ``section_concepts``: overrides of the section -> concept map.
    ``coding``: also code each note with that document coder into table clin_linker_note_code (every ranked code,
    ``accepted`` or not); the linker then targets its vocabulary first (:func:`coding_linker_config`), and with
    ``derive_clinical_tables`` that vocabulary's events are the coder's accepted codes, one per code and note.
    """
    output = str(output)
    if note_table is not None and notes:
        raise ValueError("give notes files (--notes) or a NOTE table (--notes-db/--notes-table), not both")
    source: Sequence[str] | NoteTable = note_table if note_table is not None else storage.match_inputs(notes)
    sink_location = output
    dead_letter_file = str(dead_letter_file or _default_dead_letter(output))
    # resolve (and if needed build or fetch) the index once, here; workers fetch a URL themselves
    index = resolve_index_dir(str(storage.fetch_directory(index_dir)) if index_dir else "")
    index_location = index_dir if index_dir and not storage.is_local(index_dir) else str(index)
    store = ConceptStore(store_dir_of(index))
    if coding is not None:
        linker_config = coding_linker_config(linker_config or {}, coding)
    check_targets((linker_config or {}).get("targets", ()), store)  # here, not in a Beam worker
    if (linker_config or {}).get("functioning"):
        check_functioning_target(store)
    # a missing or mismatched coder model fails here too; its id names the run's lists (a small model: < 1 s)
    coder_id = coding.load(store).model_id if coding is not None else None
    sections = resolve_section_concepts(store, section_concepts)  # bad overrides fail before any work
    type_check = check_type_concept(store) if derive_clinical_tables else None
    sink = open_sink(sink_location, store, schema)
    run_at = dt.datetime.now().replace(microsecond=0)
    handler = SpacyNoteModelHandler({**(linker_config or {}), "index_dir": index_location}, run_at,
                                    min_batch_size=min(8, batch_size), max_batch_size=batch_size,
                                    section_concepts=sections, derive_events=derive_clinical_tables,
                                    coding=coding)
    states = None
    if incremental:  # the key needs the models' ids: load the pipeline here once (seconds)
        states = sink.note_states(state_system(handler.nlp_system(), coder_id, derive_clinical_tables))
    run_id = uuid.uuid4().hex
    stage = _staging_folder(staging, output, run_id)
    try:
        p = beam.Pipeline(options=PipelineOptions(beam_args or [DEFAULT_RUNNER]))
        build_beam_pipeline(p, source, fmt, handler, stage, batch_size, states)
        started = time.perf_counter()
        try:
            p.run().wait_until_finish()
        except Exception as e:  # a worker died, a runner gave up: nothing has been written to the output yet
            raise JobFailed(f"the Beam pipeline failed ({type(e).__name__}: {str(e).strip().splitlines()[0][:300] if str(e).strip() else 'no message'}); "
                            f"nothing was written to {_describe_output(output)}: the output is written only after "
                            "every worker has finished. Re-running the same command is safe") from e
        seconds = time.perf_counter() - started
        read = _count(stage, "read")
        unchanged = _count(stage, "unchanged") if incremental else 0
        dead = _dead_letters(stage)
        storage.write_atomically(dead_letter_file, "".join(json.dumps(d) + "\n" for d in dead).encode())
        with tempfile.TemporaryDirectory(prefix="clin-linker-shards-") as local:
            coded, shards = _staged_shards(stage, Path(local))
            system = coded[0]["nlp_system"] if coded else None
            key = state_system(system, coder_id, derive_clinical_tables) if system else None
            run = _run_row(run_id, run_at, seconds, read, coded, dead, dead_letter_file, source, fmt, store, coder_id,
                           "incremental" if incremental else "full", unchanged)
            written = sink.write(StagedRun(
                shards["note_nlp"], shards["events"] if derive_clinical_tables else None,
                [(c["note_id"], c["nlp_system"]) for c in coded],
                StagedCodes(coder_id, shards["note_code"]) if coding is not None else None, run,
                [(c["note_id"], key, c["text_sha256"]) for c in coded]))
            summary = _summarize(shards["note_nlp"], store)
    finally:
        storage.delete_tree(stage)
    return JobSummary(
        read=read, coded=len(coded), dead_lettered=len(dead),
        dead_reasons=dict(Counter(d["reason_code"] for d in dead)),
        rows_written=written, output=_describe_output(output), dead_letter_file=dead_letter_file,
        notes_without_mentions=sum(1 for c in coded if c["mentions"] == 0),
        event_skips=sorted(c["event_skip"] for c in coded if c.get("event_skip")),
        type_concept_check=type_check, coder=coder_id, codes_ranked=sum(c["codes"] for c in coded),
        codes_accepted=sum(c["accepted"] for c in coded), unchanged=unchanged,
        mode="incremental" if incremental else "full", **summary,
    )


def state_system(system: str, coder: str | None, derive_events: bool) -> str:
    """The key ``clin_linker_note_state`` keeps a note's text hash under: the nlp_system, plus what else the run
    wrote (a coder's lists, derived events), so an incremental run that writes more than the last one re-codes."""
    return (system + (f" +code={coder}" if coder else "") + (" +events" if derive_events else ""))[:250]


def _default_dead_letter(output: str) -> str:
    if is_postgresql_url(output):
        return str(Path.cwd() / "clin_linker.dead_letter.jsonl")
    return output + ".dead_letter.jsonl"


def _describe_output(output: str) -> str:
    return redact_url(output) if is_postgresql_url(output) else output


def _staging_folder(staging: str | None, output: str, run_id: str) -> str:
    """A folder of this run's own: under ``staging`` when given, else beside a DuckDB output, else a temp folder."""
    if staging:
        folder = storage.join(staging, f"clin-linker-staging-{run_id}")
    elif not is_postgresql_url(output) and storage.is_local(output):
        folder = str(Path(output).resolve().parent / f".{Path(output).name}.staging-{run_id[:8]}")
    else:
        folder = tempfile.mkdtemp(prefix=f"clin-linker-staging-{run_id[:8]}-")
    if storage.is_local(folder):
        Path(storage.beam_path(folder)).mkdir(parents=True, exist_ok=True)
    return folder


def _count(stage: str, name: str) -> int:
    files = storage.list_files(stage, f"count-{name}.json")
    if not files:
        raise RuntimeError(f"the pipeline finished without writing its {name} count to {stage}: a worker's output "
                           "was lost; re-run the job (it is safe to)")
    return int(json.loads(storage.read_bytes(files[0]))[name])


def _jsonl(location: str) -> list[dict]:
    return [json.loads(line) for line in storage.read_bytes(location).decode().splitlines() if line]


def _dead_letters(stage: str) -> list[dict]:
    """Every dead letter once (a retried bundle may have written a record twice), in input order."""
    unique = {json.dumps(r, sort_keys=True): r for f in storage.list_files(stage, "dead-*.jsonl") for r in _jsonl(f)}
    return sorted(unique.values(), key=lambda d: (d["source"], d["position"] or 0, d["reason_code"]))


def _digest(location: str) -> str:
    """The content digest in a shard's name (``[copy number-]<kind>-<digest>.<ext>``)."""
    return PurePosixPath(location).stem.rsplit("-", 1)[1]


def _staged_shards(stage: str, local: Path) -> tuple[list[dict], dict[str, list[Path]]]:
    """The coded notes (one record each) and the local Parquet shards per kind, each note's rows exactly once.

    Normally every note is in one shard. A retried bundle that was batched differently from its first attempt
    leaves a note in two shards with the same rows (the pipeline is deterministic); then each note's rows are kept
    from the first shard (by name) that holds it, and the others' copies are dropped.
    """
    owner: dict[int, str] = {}
    coded = []
    for location in storage.list_files(stage, "coded-*.jsonl"):
        for record in _jsonl(location):
            if record["note_id"] not in owner:
                owner[record["note_id"]] = _digest(location)
                coded.append(record)
    coded.sort(key=lambda c: c["note_id"])
    duplicated = len(owner) < sum(len(_jsonl(f)) for f in storage.list_files(stage, "coded-*.jsonl"))
    shards: dict[str, list[Path]] = {}
    for kind in ("note_nlp", "events", "note_code"):
        files = storage.local_copies(storage.list_files(stage, f"{kind}-*.parquet"), local)
        if duplicated:
            files = [_owned_rows(path, owner, local / f"dedup-{kind}-{path.name}") for path in files]
        shards[kind] = files
    return coded, shards


def _owned_rows(path: Path, owner: Mapping[int, str], target: Path) -> Path:
    table = pq.read_table(path)
    digest = _digest(str(path))
    keep = pa.array([owner.get(n) == digest for n in table.column("note_id").to_pylist()])
    pq.write_table(table.filter(keep), target)
    return target


def _run_row(run_id: str, run_at: dt.datetime, seconds: float, read: int, coded: list[dict], dead: list[dict],
             dead_letter_file: str, source: Sequence[str] | NoteTable, fmt: str, store: ConceptStore,
             coder: str | None, mode: str, unchanged: int) -> dict:
    """The run's row of table clin_linker_run (``schemas.tables.RUN``): what a review of the run needs beyond the
    rows themselves. The inputs are recorded (files, or the table without the database password) so a report can
    read the note text back from them instead of the database keeping a copy of it."""
    return {
        "run_id": run_id, "nlp_system": coded[0]["nlp_system"] if coded else None, "started_at": run_at,
        "seconds": round(seconds, 3), "notes_read": read, "notes_coded": len(coded), "notes_dead_lettered": len(dead),
        "dead_letter_reasons": json.dumps(dict(Counter(d["reason_code"] for d in dead))),
        "dead_letter_file": dead_letter_file,
        "note_files": json.dumps([source.describe()] if isinstance(source, NoteTable) else list(source)),
        "note_format": "table" if isinstance(source, NoteTable) else fmt,
        "nil_threshold": next((c["nil_threshold"] for c in coded if c.get("nil_threshold") is not None), None),
        "vocabularies": json.dumps([{k: v.get(k) for k in ("vocabulary_id", "version", "concepts")}
                                    for v in store.manifest.get("vocabularies", [])]),
        "coder": coder, "ended_at": dt.datetime.now().replace(microsecond=0), "mode": mode, "notes_unchanged": unchanged,
    }


def _summarize(shards: list[Path], store: ConceptStore) -> dict:
    """Mentions per label, linked vs NIL and the ten most frequent codes, from the staged rows' own columns."""
    labels: Counter[str] = Counter()
    linked_labels: Counter[str] = Counter()
    codes: Counter[str] = Counter()
    nil = 0
    for shard in shards:
        table = pq.read_table(shard, columns=["label", "concept_key"])
        for label, key in zip(table.column("label").to_pylist(), table.column("concept_key").to_pylist()):
            labels[label] += 1
            if key is None:
                nil += 1
            else:
                codes[key] += 1
                linked_labels[label] += 1
    top = sorted(codes.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    return {
        "mentions_by_label": dict(labels.most_common()),
        "linked_by_label": {label: linked_labels[label] for label in labels},
        "linked": sum(codes.values()),
        "nil": nil,
        "top_codes": [(f"{c} {store[c].concept_name}"[:80], n) for c, n in top],
    }
