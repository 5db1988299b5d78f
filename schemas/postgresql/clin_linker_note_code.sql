-- clin-linker's per-note code lists (NOT part of OMOP CDM v5.4), PostgreSQL dialect. Written by `clin-linker code --db`.
-- One row per (note, coder, ranked code): what a professional coder reviews. code_rank 1 = best; accepted = the
-- coder's decision at its threshold; concept_id = the store's id of the code (Athena's, or a local id >= 2e9);
-- modifiers: e.g. specificity=category; evidence: the mentions behind the code, as JSON
-- [{start, end, text, label, rank, score, flags, source}]. A re-run replaces a note's rows for the same coder.

CREATE TABLE IF NOT EXISTS clin_linker_note_code (
    note_id bigint NOT NULL,
    coder varchar(250) NOT NULL,
    code_rank integer NOT NULL,
    vocabulary_id varchar(50) NOT NULL,
    concept_code varchar(50) NOT NULL,
    concept_id integer NOT NULL,
    score double precision NOT NULL,
    accepted boolean NOT NULL,
    modifiers text,
    evidence text NOT NULL,
    PRIMARY KEY (note_id, coder, code_rank)
);
