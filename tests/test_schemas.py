"""Tests of clin_linker.schemas: OMOP CDM v5.4 DDL (DuckDB + PostgreSQL), JSON Schemas, sample notes."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from importlib import resources

import duckdb
import pytest
from jsonschema import Draft202012Validator

from clin_linker.schemas import DIALECTS, ddl, json_schema

CDM_TABLES = {"note", "note_nlp", "concept", "condition_occurrence", "drug_exposure", "procedure_occurrence"}

NOTE_NLP_COLUMNS = [
    "note_nlp_id", "note_id", "section_concept_id", "snippet", "offset", "lexical_variant",
    "note_nlp_concept_id", "note_nlp_source_concept_id", "nlp_system", "nlp_date", "nlp_datetime",
    "term_exists", "term_temporal", "term_modifiers",
]
NOTE_COLUMNS = [
    "note_id", "person_id", "note_date", "note_datetime", "note_type_concept_id", "note_class_concept_id",
    "note_title", "note_text", "encoding_concept_id", "language_concept_id", "provider_id",
    "visit_occurrence_id", "visit_detail_id", "note_source_value", "note_event_id",
    "note_event_field_concept_id",
]
CONCEPT_COLUMNS = [
    "concept_id", "concept_name", "domain_id", "vocabulary_id", "concept_class_id", "standard_concept",
    "concept_code", "valid_start_date", "valid_end_date", "invalid_reason",
]


def _validator(name: str) -> Draft202012Validator:
    schema = json_schema(name)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def _sample_notes() -> list[dict]:
    path = resources.files("clin_linker.beam_jobs").joinpath("data").joinpath("sample_notes.jsonl")
    text = path.read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _duckdb_with_cdm() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    con.execute(ddl("duckdb"))
    return con


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str, bool]]:
    rows = con.execute(
        "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
        "WHERE table_name = ? ORDER BY ordinal_position",
        [table],
    ).fetchall()
    return [(name, dtype, nullable == "YES") for name, dtype, nullable in rows]


# --- accessors ---------------------------------------------------------------------------------------

def test_accessors_and_errors():
    for dialect in DIALECTS:
        assert "CREATE TABLE IF NOT EXISTS note_nlp" in ddl(dialect)
    assert ddl() == ddl("duckdb")
    assert ddl("PostgreSQL") == ddl("postgresql")
    with pytest.raises(ValueError, match="duckdb, postgresql"):
        ddl("oracle")
    assert json_schema("note")["required"] == ["note_id", "note_text"]
    assert json_schema("dead_letter")["properties"]["reason_code"]["enum"]
    with pytest.raises(ValueError, match="note, dead_letter"):
        json_schema("person")
    # Each call returns a fresh dict: callers may mutate it.
    json_schema("note")["required"].append("x")
    assert json_schema("note")["required"] == ["note_id", "note_text"]


# --- (1) DuckDB DDL ----------------------------------------------------------------------------------

def test_duckdb_ddl_is_idempotent_and_creates_cdm_tables():
    con = _duckdb_with_cdm()
    con.execute(ddl("duckdb"))  # second run: IF NOT EXISTS, no error
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert CDM_TABLES <= tables

    note_nlp = _columns(con, "note_nlp")
    assert [c[0] for c in note_nlp] == NOTE_NLP_COLUMNS
    required = {name for name, _, nullable in note_nlp if not nullable}
    assert required == {"note_nlp_id", "note_id", "lexical_variant", "nlp_date"}
    types = {name: dtype for name, dtype, _ in note_nlp}
    assert types["note_nlp_id"] == "BIGINT" and types["note_id"] == "BIGINT"
    assert types["nlp_date"] == "DATE" and types["nlp_datetime"] == "TIMESTAMP"
    assert types["offset"] == "VARCHAR"

    assert [c[0] for c in _columns(con, "note")] == NOTE_COLUMNS
    assert [c[0] for c in _columns(con, "concept")] == CONCEPT_COLUMNS
    con.close()


# --- (2) idempotent writes -----------------------------------------------------------------------------

def test_note_nlp_insert_on_conflict_do_nothing_keeps_one_row():
    con = _duckdb_with_cdm()
    row = [
        (1 << 62) + 12345, 1001, 0, "Patient with type 2 diabetes mellitus and", "13",
        "type 2 diabetes mellitus", 201826, 2000000001, "clin-linker 0.1.0", "2026-01-08",
        "2026-01-08 12:00:00", "Y", "present", "negated=false,subject=patient",
    ]
    sql = (
        'INSERT INTO note_nlp (note_nlp_id, note_id, section_concept_id, snippet, "offset", lexical_variant, '
        "note_nlp_concept_id, note_nlp_source_concept_id, nlp_system, nlp_date, nlp_datetime, term_exists, "
        "term_temporal, term_modifiers) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT DO NOTHING"
    )
    con.execute(sql, row)
    con.execute(sql, row)
    assert con.execute("SELECT count(*) FROM note_nlp").fetchone()[0] == 1
    assert con.execute('SELECT note_nlp_id, "offset" FROM note_nlp').fetchone() == ((1 << 62) + 12345, "13")
    # Without ON CONFLICT the primary key rejects the duplicate.
    with pytest.raises(duckdb.ConstraintException):
        con.execute(sql.replace(" ON CONFLICT DO NOTHING", ""), row)
    con.close()


def test_note_primary_key_makes_note_writes_idempotent():
    con = _duckdb_with_cdm()
    sql = (
        "INSERT INTO note (note_id, person_id, note_date, note_type_concept_id, note_class_concept_id, "
        "note_text, encoding_concept_id, language_concept_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT DO NOTHING"
    )
    row = [9_000_000_000_000, 501, "2026-01-08", 0, 0, "text", 0, 0]  # note_id beyond int32
    con.execute(sql, row)
    con.execute(sql, row)
    assert con.execute("SELECT count(*) FROM note").fetchone()[0] == 1
    con.close()


# --- (3) sample notes -----------------------------------------------------------------------------------

def test_sample_notes_validate_and_are_unique():
    notes = _sample_notes()
    assert len(notes) >= 28
    validator = _validator("note")
    for note in notes:
        errors = [e.message for e in validator.iter_errors(note)]
        assert not errors, (note.get("note_id"), errors)
    ids = [n["note_id"] for n in notes]
    assert len(ids) == len(set(ids))
    assert len({n["person_id"] for n in notes}) >= 3
    for note in notes:
        assert 300 <= len(note["note_text"]) <= 1500, note["note_id"]
    texts = [n["note_text"] for n in notes]
    assert any("Patient with type 2 diabetes mellitus and essential hypertension." in t for t in texts)
    assert any("He had a heart attack in 2019." in t for t in texts)
    assert sum("\r\n" in t for t in texts) == 1
    assert any(any(ord(ch) > 127 for ch in t) for t in texts)


def test_sample_notes_load_into_note_table():
    con = _duckdb_with_cdm()
    for n in _sample_notes():
        con.execute(
            "INSERT INTO note (note_id, person_id, note_date, note_type_concept_id, note_class_concept_id, "
            "note_title, note_text, encoding_concept_id, language_concept_id) VALUES (?, ?, ?, ?, 0, ?, ?, 0, 0)",
            [n["note_id"], n["person_id"], n["note_date"], n["note_type_concept_id"], n["note_title"],
             n["note_text"]],
        )
    assert con.execute("SELECT count(DISTINCT note_id) FROM note").fetchone()[0] == len(_sample_notes())
    con.close()


# --- (4) invalid notes ----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "record",
    [
        pytest.param({"note_text": "Patient denies chest pain."}, id="missing-note_id"),
        pytest.param({"note_id": 1, "note_text": ""}, id="empty-text"),
        pytest.param({"note_id": 1, "note_text": " \n\t\r\n "}, id="whitespace-only-text"),
        pytest.param({"note_id": 1}, id="missing-text"),
        pytest.param({"note_id": "12a", "note_text": "x"}, id="non-integer-note_id"),
        pytest.param({"note_id": 1.5, "note_text": "x"}, id="fractional-note_id"),
        pytest.param({"note_id": 2**63, "note_text": "x"}, id="note_id-beyond-int64"),
        pytest.param({"note_id": 1, "note_text": 42}, id="non-text-body"),
        pytest.param({"note_id": 1, "note_text": "x", "note_date": "08/01/2026"}, id="bad-date"),
        pytest.param({"note_id": 1, "note_text": "x", "note_date": "2026-02-30"}, id="impossible-date"),
        pytest.param({"note_id": 1, "note_text": "x", "person_id": "abc"}, id="bad-person_id"),
    ],
)
def test_invalid_notes_fail_schema(record):
    assert not _validator("note").is_valid(record)


def test_minimal_and_extended_notes_pass_schema():
    v = _validator("note")
    assert v.is_valid({"note_id": 1, "note_text": "x"})
    assert v.is_valid({
        "note_id": -5, "note_text": " a ", "person_id": None, "note_date": "2026-01-08",
        "note_datetime": "2026-01-08T10:15:00Z", "note_type_concept_id": 0, "note_title": None,
        "encoding": "UTF-8", "language": "en", "visit_occurrence_id": 7,
    })
    assert v.is_valid({"note_id": 1, "note_text": "x", "note_datetime": "2026-01-08 10:15"})


# --- (5) PostgreSQL DDL mirrors the DuckDB DDL ----------------------------------------------------------

_CREATE_RE = re.compile(r"CREATE\s+TABLE\s+IF\s+NOT\s+EXISTS\s+(\w+)\s*\((.*?)\)\s*;", re.IGNORECASE | re.DOTALL)


def _parse_ddl(sql: str) -> dict[str, list[tuple[str, bool]]]:
    """Map table -> [(column, not_null)] for every CREATE TABLE statement (comments stripped)."""
    sql = re.sub(r"--[^\n]*", "", sql)
    tables: dict[str, list[tuple[str, bool]]] = {}
    for name, body in _CREATE_RE.findall(sql):
        cols = []
        for line in body.split(",\n"):
            line = line.strip()
            if not line or re.match(r"(PRIMARY\s+KEY|UNIQUE|CONSTRAINT|FOREIGN\s+KEY)\b", line, re.I):
                continue
            col = line.split()[0].strip('"')
            cols.append((col, bool(re.search(r"\bNOT\s+NULL\b", line, re.I))))
        assert name.lower() not in tables, f"table {name} created twice"
        tables[name.lower()] = cols
    return tables


def test_postgresql_ddl_matches_duckdb_ddl():
    duck = _parse_ddl(ddl("duckdb"))
    pg = _parse_ddl(ddl("postgresql"))
    assert set(duck) == CDM_TABLES
    assert duck == pg  # same tables, same columns in the same order, same NOT NULL flags
    assert [c for c, _ in pg["note_nlp"]] == NOTE_NLP_COLUMNS
    # Statement count matches the parsed tables: nothing the regex silently skipped.
    for sql in (ddl("duckdb"), ddl("postgresql")):
        code = re.sub(r"--[^\n]*", "", sql)
        assert len(re.findall(r"\bCREATE\s+TABLE\b", code, re.I)) == len(CDM_TABLES)
    # The parser agrees with what DuckDB actually created.
    con = _duckdb_with_cdm()
    for table, cols in duck.items():
        assert [(n, not nullable) for n, _, nullable in _columns(con, table)] == cols
    con.close()
    pg_sql = ddl("postgresql")
    assert '"offset" varchar(50)' in pg_sql
    assert re.search(r"note_nlp_id bigint NOT NULL", pg_sql)
    assert re.search(r"PRIMARY KEY \(note_nlp_id\)", pg_sql) and re.search(r"PRIMARY KEY \(note_id\)", pg_sql)


def _pg_binaries() -> dict[str, str] | None:
    found = {b: shutil.which(b) for b in ("initdb", "pg_ctl", "psql")}
    if not all(found.values()):
        return None
    if os.geteuid() == 0 and not shutil.which("runuser"):
        return None
    return found  # type: ignore[return-value]


@pytest.mark.skipif(_pg_binaries() is None, reason="PostgreSQL server binaries (initdb, pg_ctl, psql) not installed")
def test_postgresql_ddl_runs_twice_on_a_real_server():
    """Optional: a throw-away local cluster (unix socket only); skipped where PostgreSQL is absent."""
    as_root = os.geteuid() == 0
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    tmp = tempfile.mkdtemp(prefix="clpg")
    data = os.path.join(tmp, "data")
    port = "54329"
    started = False
    try:
        if as_root:
            shutil.chown(tmp, user="postgres")
        r = subprocess.run(prefix + ["initdb", "-D", data, "-A", "trust", "-U", "postgres"],
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            pytest.skip(f"initdb failed: {r.stderr[-300:]}")
        r = subprocess.run(prefix + ["pg_ctl", "-D", data, "-w", "-t", "60", "-l", os.path.join(tmp, "log"),
                                     "-o", f"-k {tmp} -c listen_addresses='' -p {port}", "start"],
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            pytest.skip(f"pg_ctl start failed: {r.stderr[-300:]}")
        started = True
        psql = ["psql", "-h", tmp, "-p", port, "-U", "postgres", "-X", "-q", "-v", "ON_ERROR_STOP=1"]
        for _ in range(2):
            r = subprocess.run(psql + ["-c", "SET client_min_messages = warning;", "-c", ddl("postgresql")],
                               capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, r.stderr
        insert = (
            'INSERT INTO note_nlp (note_nlp_id, note_id, "offset", lexical_variant, nlp_date) '
            "VALUES (4611686018427400000, 1001, '13', 'type 2 diabetes mellitus', DATE '2026-01-08') "
            "ON CONFLICT DO NOTHING;"
        )
        r = subprocess.run(psql + ["-t", "-A", "-c", insert, "-c", insert,
                                   "-c", "SELECT count(*) FROM note_nlp;",
                                   "-c", "SELECT string_agg(column_name, ',' ORDER BY ordinal_position) "
                                         "FROM information_schema.columns WHERE table_name = 'note_nlp';"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        lines = r.stdout.split()
        assert lines[0] == "1"
        assert lines[1].split(",") == NOTE_NLP_COLUMNS
    finally:
        if started:
            subprocess.run(prefix + ["pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"],
                           capture_output=True, timeout=60)
        shutil.rmtree(tmp, ignore_errors=True)


# --- (6) dead-letter record ----------------------------------------------------------------------------

def test_dead_letter_example_validates():
    v = _validator("dead_letter")
    example = {
        "source": "/data/notes/2026-01.jsonl",
        "position": 17,
        "note_id": 1017,
        "reason_code": "empty_text",
        "reason": "field 'note_text' is empty or whitespace only; supply the note body or drop the record",
        "record": {"note_id": 1017, "person_id": 504, "note_date": "2026-01-30", "note_title": "Intake"},
    }
    assert not list(v.iter_errors(example))
    assert v.is_valid({"source": "memory", "position": None, "note_id": "abc", "reason_code": "invalid_note_id",
                       "reason": "field 'note_id' is not an int64: 'abc'; fix the id", "record": {"note_id": "abc"}})
    assert v.is_valid({"source": "notes.jsonl", "position": 3, "note_id": None,
                       "reason_code": "unparseable_record", "reason": "line 3 is not valid JSON", "record": None})


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"record": {"note_id": 1, "note_text": "Patient denies chest pain."}}, id="note_text-kept"),
        pytest.param({"reason_code": "bad_luck"}, id="unknown-reason_code"),
        pytest.param({"position": 0}, id="position-not-1-based"),
        pytest.param({"reason": ""}, id="empty-reason"),
        pytest.param({"note_id": 1.5}, id="float-note_id"),
        pytest.param({"source": ""}, id="empty-source"),
    ],
)
def test_bad_dead_letters_fail(change):
    base = {"source": "memory", "position": 1, "note_id": 1, "reason_code": "duplicate_note_id",
            "reason": "note_id 1 seen before at position 1; make note ids unique", "record": {"note_id": 1}}
    assert _validator("dead_letter").is_valid(base)
    assert not _validator("dead_letter").is_valid({**base, **change})


def test_dead_letter_requires_every_field():
    base = {"source": "memory", "position": 1, "note_id": 1, "reason_code": "pipeline_error",
            "reason": "pipeline raised ValueError; see logs", "record": None}
    v = _validator("dead_letter")
    for key in base:
        assert not v.is_valid({k: val for k, val in base.items() if k != key}), key


# --- (7) derived clinical events: 63-bit ids and clin-linker's bookkeeping table --------------------------------

_EVENT_INSERTS = {
    "condition_occurrence_id": "insert into condition_occurrence (condition_occurrence_id, person_id, "
    "condition_concept_id, condition_start_date, condition_type_concept_id) values (?, 1, 0, DATE '2026-01-01', 32858)",
    "drug_exposure_id": "insert into drug_exposure (drug_exposure_id, person_id, drug_concept_id, "
    "drug_exposure_start_date, drug_exposure_end_date, drug_type_concept_id) "
    "values (?, 1, 0, DATE '2026-01-01', DATE '2026-01-01', 32858)",
    "procedure_occurrence_id": "insert into procedure_occurrence (procedure_occurrence_id, person_id, "
    "procedure_concept_id, procedure_date, procedure_type_concept_id) values (?, 1, 0, DATE '2026-01-01', 32858)",
}


def test_event_tables_take_63_bit_ids_and_the_event_source_table_is_separate():
    from clin_linker.schemas import event_source_ddl

    con = _duckdb_with_cdm()
    for id_column, insert in _EVENT_INSERTS.items():
        con.execute(insert, [2**63 - 1])  # the largest id clinical_events.event_id can produce
    for _ in range(2):
        con.execute(event_source_ddl("duckdb"))
    assert [c[0] for c in _columns(con, "clin_linker_event_source")] == ["event_table", "event_id", "note_id",
                                                                         "nlp_system"]
    con.close()
    assert "clin_linker_event_source" not in ddl("duckdb")  # not a CDM table: kept out of the CDM script
    pg_events = event_source_ddl("postgresql")
    assert "event_id bigint NOT NULL" in pg_events
    assert "PRIMARY KEY (event_table, event_id, note_id, nlp_system)" in pg_events
    for id_column in _EVENT_INSERTS:
        assert re.search(rf"{id_column} bigint NOT NULL", ddl("postgresql"))


# --- (8) the pyarrow row schemas (schemas.tables) agree with both DDLs --------------------------------------------

def _subsequence(part: list, whole: list) -> bool:
    """Whether ``part`` appears in ``whole`` in the same order (not necessarily adjacent)."""
    rest = iter(whole)
    return all(any(item == other for other in rest) for item in part)


def _written_tables():
    """(table, pyarrow schema, whether we write every column of it) for each table clin-linker writes."""
    from clin_linker.schemas.tables import (
        CONCEPT, EVENT_SOURCE, EVENT_TABLES, MENTION, NOTE_CODE, NOTE_NLP, NOTE_STATE, RUN,
    )

    return ([("note_nlp", NOTE_NLP, True), ("concept", CONCEPT, True), ("clin_linker_event_source", EVENT_SOURCE, True),
             ("clin_linker_note_code", NOTE_CODE, True), ("clin_linker_run", RUN, True),
             ("clin_linker_mention", MENTION, True), ("clin_linker_note_state", NOTE_STATE, True)]
            + [(t.name, t.schema, False) for t in EVENT_TABLES])


def test_row_schemas_match_the_duckdb_ddl():
    from clin_linker.schemas import event_source_ddl, note_code_ddl, run_ddl
    from clin_linker.schemas.tables import duckdb_type

    con = _duckdb_with_cdm()
    con.execute(event_source_ddl("duckdb"))
    con.execute(note_code_ddl("duckdb"))
    for _ in range(2):  # IF NOT EXISTS: the sink runs it on every write
        con.execute(run_ddl("duckdb"))
    for table, schema, complete in _written_tables():
        ddl_columns = [(name, dtype) for name, dtype, _ in _columns(con, table)]
        ours = [(field.name, duckdb_type(field.type)) for field in schema]
        if complete:
            assert ours == ddl_columns, table
        else:  # event tables: the columns we fill, in DDL order, with the DDL's types
            assert _subsequence(ours, ddl_columns), (table, ours)
            required = [name for name, _, nullable in _columns(con, table) if not nullable]
            assert set(required) <= set(schema.names), f"{table}: a NOT NULL column is never written"
    con.close()


def test_row_schemas_match_the_postgresql_ddl():
    from clin_linker.schemas import event_source_ddl, note_code_ddl, run_ddl

    pg = _parse_ddl(ddl("postgresql") + "\n" + event_source_ddl("postgresql") + "\n" + note_code_ddl("postgresql")
                    + "\n" + run_ddl("postgresql"))
    for table, schema, complete in _written_tables():
        names = [name for name, _ in pg[table]]
        assert (schema.names == names) if complete else _subsequence(schema.names, names), table


def test_mention_columns_come_from_the_staged_rows():
    """The sink fills clin_linker_mention from the staged NOTE_NLP shards by column name (run_id aside)."""
    from clin_linker.schemas.tables import MENTION, NOTE_NLP, STAGED_NOTE_NLP

    staged = {field.name: field.type for field in STAGED_NOTE_NLP}
    assert all(staged[f.name] == f.type for f in MENTION if f.name != "run_id")
    beyond_cdm = [name for name in STAGED_NOTE_NLP.names if name not in NOTE_NLP.names]
    assert set(beyond_cdm) <= set(MENTION.names)  # nothing staged for review is dropped on the way


def test_event_tables_are_filled_from_staged_columns():
    from clin_linker.schemas.tables import EVENT_TABLES, STAGED_EVENT

    assert [t.domain_id for t in EVENT_TABLES] == ["Condition", "Drug", "Procedure"]
    for table in EVENT_TABLES:
        assert len(table.staged) == len(table.schema) and set(table.staged) <= set(STAGED_EVENT.names)
        assert set(table.staged) == set(STAGED_EVENT.names) - {"event_table", "note_id", "nlp_system"}
        assert table.column("event_id").endswith("_id") and table.schema.field(table.column("event_id")).type == "int64"
