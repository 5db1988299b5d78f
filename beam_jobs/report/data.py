"""What a review report shows, read from a run's DuckDB output (and, for note text, from the run's notes files).

Why from the database and not from the job's memory: ``clin-linker report`` must work on any earlier run, and the
report of ``clin-linker run`` is then the same code on the same data. The run is the latest row of
``clin_linker_run``; its mentions are the ``clin_linker_mention`` rows with its ``run_id`` (their structured fields:
nothing parses ``term_modifiers``). Aggregates are computed in SQL, so a run of a million notes is summarised
without loading its mentions; only the notes of the per-note view are read in full.

Note text is never stored by the job: it is read back from the notes files the run recorded, only for the notes
shown, and only when the report is not redacted. A note whose file is gone, or whose text no longer matches the
run's mention offsets (the file changed), is shown without its text, saying why.
"""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from ...schemas.tables import RUN
from ..notes import Note, read_records, validate

#: The context flags of a mention (schemas.tables.MENTION columns), in the order the report lists them.
FLAGS = ("negated", "family", "hypothetical", "uncertain", "historical")
#: Codes listed per vocabulary in the summary.
TOP_CODES = 10
#: Codes a note's ranked list shows below those the coder accepted: what nearly made it.
REJECTED_SHOWN = 5
#: Width of the score histogram's bins (scores are grouped in SQL, so any run size costs the same).
SCORE_BIN = 0.02


@dataclass(frozen=True)
class Candidate:
    concept_key: str
    concept_name: str
    score: float


@dataclass(frozen=True)
class Mention:
    """One NOTE_NLP row of the run with its structured fields."""

    note_id: int
    start: int
    end: int
    text: str  # NOTE_NLP.lexical_variant: the mention's own words (at most 250 characters)
    label: str
    concept_key: str | None  # None = NIL
    vocabulary_id: str | None
    score: float | None
    flags: tuple[str, ...]  # the FLAGS that are set
    section: str | None
    candidates: tuple[Candidate, ...]
    term_exists: str

    @property
    def anchor(self) -> str:
        """The HTML id of the mention: a note's code list links its evidence spans here."""
        return f"m-{self.note_id}-{self.start}-{self.end}"

    @property
    def concept_name(self) -> str:
        return next((c.concept_name for c in self.candidates if c.concept_key == self.concept_key), "")


@dataclass(frozen=True)
class Evidence:
    """One span behind a document code: a mention, or words the coder matched outside any mention."""

    text: str
    anchor: str | None  # the mention it is (or lies in), to link to; None: words outside every mention


@dataclass(frozen=True)
class NoteCode:
    """One row of a note's ranked code list (table clin_linker_note_code)."""

    rank: int
    code: str  # VOCABULARY:CODE
    name: str
    score: float
    accepted: bool
    modifiers: str | None
    evidence: tuple[Evidence, ...]  # each span once, in note order


@dataclass
class NoteView:
    note_id: int
    mentions: list[Mention]
    codes: list[NoteCode] = field(default_factory=list)
    text: str | None = None  # None: redacted, or not available (then ``text_note`` says why)
    text_note: str | None = None


@dataclass(frozen=True)
class RunInfo:
    """The run's row of clin_linker_run, JSON columns decoded."""

    run_id: str
    nlp_system: str | None
    started_at: dt.datetime
    seconds: float
    notes_read: int
    notes_coded: int
    notes_dead_lettered: int
    dead_letter_reasons: dict[str, int]
    dead_letter_file: str
    note_files: list[str]
    note_format: str
    nil_threshold: float | None
    vocabularies: list[dict]
    coder: str | None
    ended_at: dt.datetime | None  # None, like the two below, in runs logged before incremental runs existed
    mode: str | None  # "full" or "incremental"
    notes_unchanged: int | None  # notes an incremental run skipped as unchanged


@dataclass
class ReportData:
    run: RunInfo
    mentions_by_label: list[tuple[str, int, int]]  # (label, mentions, linked), most mentions first
    notes_with_mentions: int
    top_codes: dict[str, list[tuple[str, str, int]]]  # vocabulary -> [(concept_key, name, mentions)]
    flag_counts: dict[str, int]
    not_asserted: int  # NOTE_NLP.term_exists = 'N'
    sections: list[tuple[str, int]]
    score_bins: list[tuple[float, bool, int]]  # (bin start, linked, mentions)
    codes_per_note: list[tuple[int, int]]  # (distinct linked codes, notes), coded notes without mentions at 0
    codes_ranked: int
    codes_accepted: int
    notes: list[NoteView]
    redacted: bool

    @property
    def mentions(self) -> int:
        return sum(n for _, n, _ in self.mentions_by_label)

    @property
    def linked(self) -> int:
        return sum(linked for _, _, linked in self.mentions_by_label)


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence = ()) -> list[tuple]:
    return con.execute(sql, list(params)).fetchall()


def _latest_run(con: duckdb.DuckDBPyConnection, db: Path) -> RunInfo:
    tables = {r[0] for r in _rows(con, "select table_name from information_schema.tables")}
    if "clin_linker_run" not in tables:
        raise ValueError(f"{db} holds no clin-linker run (table clin_linker_run is missing; clin-linker versions "
                         f"before the report kept no run log): write one with `clin-linker run --out {db}`")
    row = con.execute(f"select {', '.join(RUN.names)} from clin_linker_run "
                      "order by started_at desc, run_id limit 1").fetchone()
    if row is None:
        raise ValueError(f"{db}: table clin_linker_run is empty; write a run with `clin-linker run --out {db}`")
    run = dict(zip(RUN.names, row))
    for name in ("dead_letter_reasons", "note_files", "vocabularies"):
        run[name] = json.loads(run[name])
    return RunInfo(**run)


def _candidates(text: str) -> tuple[Candidate, ...]:
    return tuple(Candidate(c["concept_key"], c["concept_name"], c["score"]) for c in json.loads(text))


def _summary(con: duckdb.DuckDBPyConnection, run: RunInfo) -> dict:
    """Every aggregate of the report, in SQL over the run's mentions."""
    mine = "from clin_linker_mention where run_id = ?"
    params = [run.run_id]
    by_label = [(label, n, linked) for label, n, linked in _rows(
        con, f"select label, count(*), count(concept_key) {mine} group by label order by 2 desc, 1", params)]
    top: dict[str, list[tuple[str, str, int]]] = {}
    for vocabulary, key, n, candidates in _rows(
            con, f"select vocabulary_id, concept_key, count(*), any_value(candidates) {mine} "
                 "and concept_key is not null group by all order by 1, 3 desc, 2", params):
        if len(top.setdefault(vocabulary, [])) < TOP_CODES:
            name = next((c.concept_name for c in _candidates(candidates) if c.concept_key == key), "")
            top[vocabulary].append((key, name, n))
    flags = _rows(con, f"select {', '.join(f'count(*) filter ({f})' for f in FLAGS)} {mine}", params)[0]
    not_asserted = _rows(con, "select count(*) from clin_linker_mention m join note_nlp n using (note_nlp_id) "
                              "where m.run_id = ? and n.term_exists = 'N'", params)[0][0]
    per_note = _rows(con, f"select codes, count(*) from (select note_id, count(distinct concept_key) codes {mine} "
                          "group by note_id) group by codes order by codes", params)
    with_mentions = sum(n for _, n in per_note)
    zero = run.notes_coded - with_mentions  # coded notes without any mention have no rows: they have no codes
    counts = dict(per_note)
    if zero > 0:
        counts[0] = counts.get(0, 0) + zero
    return {
        "mentions_by_label": by_label,
        "notes_with_mentions": with_mentions,
        "top_codes": top,
        "flag_counts": dict(zip(FLAGS, flags)),
        "not_asserted": not_asserted,
        "sections": _rows(con, f"select coalesce(section, '(before any section)'), count(*) {mine} "
                               "group by 1 order by 2 desc, 1", params),
        "score_bins": [(round(b * SCORE_BIN, 4), linked, n) for b, linked, n in _rows(
            con, f"select floor(score / {SCORE_BIN}), concept_key is not null, count(*) {mine} "
                 "and score is not null group by all order by 1, 2", params)],
        "codes_per_note": sorted(counts.items()),
    }


def _note_mentions(con: duckdb.DuckDBPyConnection, run: RunInfo,
                   note_ids: Sequence[int]) -> dict[int, list[Mention]]:
    """The run's mentions of ``note_ids``, in note order (a note without any gets an empty list)."""
    found: dict[int, list[Mention]] = {note_id: [] for note_id in note_ids}
    rows = _rows(con, f"select m.note_id, m.start_char, m.end_char, n.lexical_variant, m.label, m.concept_key, "
                      f"m.vocabulary_id, m.score, {', '.join('m.' + f for f in FLAGS)}, m.section, m.candidates, "
                      "n.term_exists from clin_linker_mention m join note_nlp n using (note_nlp_id) "
                      "where m.run_id = ? and m.note_id in (select unnest(?)) order by m.note_id, m.start_char",
                 [run.run_id, list(note_ids)])
    for note_id, start, end, text, label, key, vocabulary, score, *rest in rows:
        flag_values, (section, candidates, term_exists) = rest[:len(FLAGS)], rest[len(FLAGS):]
        found[note_id].append(Mention(note_id, start, end, text, label, key, vocabulary, score,
                                      tuple(f for f, on in zip(FLAGS, flag_values) if on), section,
                                      _candidates(candidates), term_exists))
    return found


def _evidence(spans: Iterable[dict], mentions: Sequence[Mention]) -> tuple[Evidence, ...]:
    """A code's evidence spans (the coder's JSON: mentions and matched words, repeats included), each once, linked
    to the mention they are or lie in."""
    unique = sorted({(e["start"], e["end"]): e["text"] for e in spans}.items())
    return tuple(Evidence(text, next((m.anchor for m in mentions if m.start <= start and end <= m.end), None))
                 for (start, end), text in unique)


def _note_codes(con: duckdb.DuckDBPyConnection, coder: str,
                mentions: dict[int, list[Mention]]) -> dict[int, list[NoteCode]]:
    """The coder's lists of the notes of ``mentions``: every accepted code and the best :data:`REJECTED_SHOWN` it
    did not accept (a note has hundreds of ranked candidates; names from CONCEPT where it holds the code)."""
    found: dict[int, list[NoteCode]] = {}
    for note_id, rank, vocabulary, code, name, score, accepted, modifiers, evidence in _rows(
            con, "select c.note_id, c.code_rank, c.vocabulary_id, c.concept_code, k.concept_name, c.score, c.accepted, "
                 "c.modifiers, c.evidence from clin_linker_note_code c "
                 "left join concept k on k.concept_id = c.concept_id "
                 "where c.coder = ? and c.note_id in (select unnest(?)) qualify c.accepted or "
                 "row_number() over (partition by c.note_id, c.accepted order by c.code_rank) <= ? "
                 "order by c.note_id, c.code_rank",
            [coder, list(mentions), REJECTED_SHOWN]):
        found.setdefault(note_id, []).append(NoteCode(rank, f"{vocabulary}:{code}", name or "", score, accepted,
                                                      modifiers, _evidence(json.loads(evidence), mentions[note_id])))
    return found


def _read_texts(files: Iterable[str], fmt: str, wanted: set[int]) -> tuple[dict[int, str], list[str]]:
    """The text of each wanted note from the run's notes files, read as the job read them (first occurrence of an
    id wins, as in the job); stops once all are found. Returns the texts and the files that could not be read."""
    texts: dict[int, str] = {}
    unreadable = []
    for path in files:
        if len(texts) == len(wanted):
            break
        if not Path(path).is_file():
            unreadable.append(path)
            continue
        for raw in read_records(path, fmt):
            note = validate(raw)
            if isinstance(note, Note) and note.note_id in wanted and note.note_id not in texts:
                texts[note.note_id] = note.note_text
                if len(texts) == len(wanted):
                    break
    return texts, unreadable


def _attach_texts(notes: list[NoteView], run: RunInfo) -> None:
    texts, unreadable = _read_texts(run.note_files, run.note_format, {n.note_id for n in notes})
    for note in notes:
        text = texts.get(note.note_id)
        if text is None:
            where = (f"{', '.join(unreadable)} cannot be read here" if unreadable
                     else "its notes file no longer holds it")
            note.text_note = f"note text not shown: {where}; the mentions are listed without it"
        elif any(text[m.start:m.end][:len(m.text)] != m.text for m in note.mentions):
            note.text_note = ("note text not shown: the notes file changed since the run (the mentions no longer sit "
                              "at their offsets); the mentions are listed without it")
        else:
            note.text = text


def load_report(db: Path, note_ids: Sequence[int] | None = None, max_notes: int = 50,
                redact: bool = False) -> ReportData:
    """Everything the report shows about the latest run in ``db``.

    Per-note view: ``note_ids`` (in that order), else the run's first ``max_notes`` notes with mentions by id.
    ``redact``: no note text is read at all (the mentions' own words still are shown).
    """
    con = duckdb.connect(str(db), read_only=True)
    try:
        run = _latest_run(con, db)
        summary = _summary(con, run)
        if note_ids is None:
            note_ids = [r[0] for r in _rows(con, "select distinct note_id from clin_linker_mention where run_id = ? "
                                                 "order by note_id limit ?", [run.run_id, max_notes])]
        note_ids = list(dict.fromkeys(note_ids))
        mentions = _note_mentions(con, run, note_ids)
        codes = _note_codes(con, run.coder, mentions) if run.coder else {}
        ranked, accepted = (_rows(con, "select count(*), count(*) filter (accepted) from clin_linker_note_code "
                                       "where coder = ? and note_id in "
                                       "(select note_id from clin_linker_mention where run_id = ?)",
                                  [run.coder, run.run_id])[0] if run.coder else (0, 0))
    finally:
        con.close()
    notes = [NoteView(note_id, mentions[note_id], codes.get(note_id, [])) for note_id in note_ids]
    if not redact:
        _attach_texts(notes, run)
    return ReportData(run=run, codes_ranked=ranked, codes_accepted=accepted, notes=notes, redacted=redact,
                      **summary)
