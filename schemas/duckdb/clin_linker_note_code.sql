-- clin-linker's per-note code lists (NOT part of OMOP CDM v5.4), DuckDB dialect. Written by `clin-linker code --db`.
-- One row per (note, coder, ranked code): what a professional coder reviews. code_rank 1 = best; accepted = the
-- coder's decision at its threshold; concept_id = the store's id of the code (Athena's, or a local id >= 2e9);
-- modifiers: e.g. specificity=category; evidence: the mentions behind the code, as JSON
-- [{start, end, text, label, rank, score, flags, source}]. A re-run replaces a note's rows for the same coder.

CREATE TABLE IF NOT EXISTS clin_linker_note_code (
    note_id BIGINT NOT NULL,
    coder VARCHAR NOT NULL,
    code_rank INTEGER NOT NULL,
    vocabulary_id VARCHAR NOT NULL,
    concept_code VARCHAR NOT NULL,
    concept_id INTEGER NOT NULL,
    score DOUBLE NOT NULL,
    accepted BOOLEAN NOT NULL,
    modifiers VARCHAR,
    evidence VARCHAR NOT NULL,
    PRIMARY KEY (note_id, coder, code_rank)
);
