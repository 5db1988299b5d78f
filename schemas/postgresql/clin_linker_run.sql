-- clin-linker's run log and mention details (NOT part of OMOP CDM v5.4), PostgreSQL dialect. Written by `clin-linker run`
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
    run_id varchar(32) NOT NULL,
    nlp_system varchar(250),
    started_at timestamp NOT NULL,
    seconds double precision NOT NULL,
    notes_read bigint NOT NULL,
    notes_coded bigint NOT NULL,
    notes_dead_lettered bigint NOT NULL,
    dead_letter_reasons text NOT NULL,
    dead_letter_file text NOT NULL,
    note_files text NOT NULL,
    note_format varchar(20) NOT NULL,
    nil_threshold double precision,
    vocabularies text NOT NULL,
    coder varchar(250),
    ended_at timestamp,
    mode varchar(20),
    notes_unchanged bigint,
    PRIMARY KEY (run_id)
);

CREATE TABLE IF NOT EXISTS clin_linker_mention (
    note_nlp_id bigint NOT NULL,
    run_id varchar(32) NOT NULL,
    note_id bigint NOT NULL,
    nlp_system varchar(250) NOT NULL,
    start_char integer NOT NULL,
    end_char integer NOT NULL,
    label varchar(50) NOT NULL,
    concept_key varchar(255),
    vocabulary_id varchar(50),
    score double precision,
    negated boolean NOT NULL,
    family boolean NOT NULL,
    hypothetical boolean NOT NULL,
    uncertain boolean NOT NULL,
    historical boolean NOT NULL,
    section varchar(100),
    candidates text NOT NULL,
    PRIMARY KEY (note_nlp_id)
);

CREATE TABLE IF NOT EXISTS clin_linker_note_state (
    note_id bigint NOT NULL,
    nlp_system varchar(250) NOT NULL,
    text_sha256 char(64) NOT NULL,
    run_id varchar(32) NOT NULL,
    PRIMARY KEY (note_id, nlp_system)
);

ALTER TABLE clin_linker_run ADD COLUMN IF NOT EXISTS ended_at timestamp;
ALTER TABLE clin_linker_run ADD COLUMN IF NOT EXISTS mode varchar(20);
ALTER TABLE clin_linker_run ADD COLUMN IF NOT EXISTS notes_unchanged bigint;
