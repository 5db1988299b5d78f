-- clin-linker's run log and mention details (NOT part of OMOP CDM v5.4), DuckDB dialect. Written by `clin-linker run`
-- in the same transaction as its NOTE_NLP rows; read by `clin-linker report`. Neither table holds note text.
--
-- clin_linker_run: one row per run. started_at = the NOTE_NLP.nlp_datetime of the run's rows; seconds = the Beam
-- pipeline's wall time (model loading included); dead_letter_reasons: JSON {reason_code: count}; note_files: JSON
-- list of the input files (where a report reads note text back from, in note_format); nil_threshold: the score
-- below which the linker wrote NIL (null when no note reached the linker); vocabularies: JSON list of the concept
-- store's vocabularies with their versions; coder: the document coder's model id (`--code`), else null;
-- ended_at: when the run's rows were committed; mode: 'full' or 'incremental'; notes_unchanged: notes an
-- incremental run skipped because their text hash matched the last successful run with the same nlp_system.
-- clin_linker_mention: one row per NOTE_NLP row of the run (note_nlp_id), the mention's structured fields, so that
-- nobody parses term_modifiers: character span, label, linked concept (null = NIL), score, context flags, section
-- and the top candidates as JSON [{concept_key, concept_name, score}]. A re-run replaces a note's rows for the
-- same nlp_system, like NOTE_NLP.
-- clin_linker_note_state: per note and nlp_system, the SHA-256 of the note_text it was last coded from and the run
-- that did it: what `clin-linker run --incremental` compares to decide which notes are new or changed.
-- Columns added after the first release are added to older databases by the ALTER TABLE statements at the end.

CREATE TABLE IF NOT EXISTS clin_linker_run (
    run_id VARCHAR NOT NULL,
    nlp_system VARCHAR,
    started_at TIMESTAMP NOT NULL,
    seconds DOUBLE NOT NULL,
    notes_read BIGINT NOT NULL,
    notes_coded BIGINT NOT NULL,
    notes_dead_lettered BIGINT NOT NULL,
    dead_letter_reasons VARCHAR NOT NULL,
    dead_letter_file VARCHAR NOT NULL,
    note_files VARCHAR NOT NULL,
    note_format VARCHAR NOT NULL,
    nil_threshold DOUBLE,
    vocabularies VARCHAR NOT NULL,
    coder VARCHAR,
    ended_at TIMESTAMP,
    mode VARCHAR,
    notes_unchanged BIGINT,
    PRIMARY KEY (run_id)
);

CREATE TABLE IF NOT EXISTS clin_linker_mention (
    note_nlp_id BIGINT NOT NULL,
    run_id VARCHAR NOT NULL,
    note_id BIGINT NOT NULL,
    nlp_system VARCHAR NOT NULL,
    start_char INTEGER NOT NULL,
    end_char INTEGER NOT NULL,
    label VARCHAR NOT NULL,
    concept_key VARCHAR,
    vocabulary_id VARCHAR,
    score DOUBLE,
    negated BOOLEAN NOT NULL,
    family BOOLEAN NOT NULL,
    hypothetical BOOLEAN NOT NULL,
    uncertain BOOLEAN NOT NULL,
    historical BOOLEAN NOT NULL,
    section VARCHAR,
    candidates VARCHAR NOT NULL,
    PRIMARY KEY (note_nlp_id)
);

CREATE TABLE IF NOT EXISTS clin_linker_note_state (
    note_id BIGINT NOT NULL,
    nlp_system VARCHAR NOT NULL,
    text_sha256 VARCHAR NOT NULL,
    run_id VARCHAR NOT NULL,
    PRIMARY KEY (note_id, nlp_system)
);

ALTER TABLE clin_linker_run ADD COLUMN IF NOT EXISTS ended_at TIMESTAMP;
ALTER TABLE clin_linker_run ADD COLUMN IF NOT EXISTS mode VARCHAR;
ALTER TABLE clin_linker_run ADD COLUMN IF NOT EXISTS notes_unchanged BIGINT;
