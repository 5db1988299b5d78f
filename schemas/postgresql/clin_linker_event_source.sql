-- clin-linker's own bookkeeping table (NOT part of OMOP CDM v5.4), PostgreSQL dialect.
-- Which note (and nlp_system) supports each derived clinical event row, so that a re-run can replace what it
-- derived before: the rows a re-coded note no longer supports are deleted unless another note still supports
-- them (delete + insert, like NOTE_NLP). Written only with `clin-linker run --derive-clinical-tables`.
-- event_table: condition_occurrence | drug_exposure | procedure_occurrence; event_id: that table's id.

CREATE TABLE IF NOT EXISTS clin_linker_event_source (
    event_table varchar(50) NOT NULL,
    event_id bigint NOT NULL,
    note_id bigint NOT NULL,
    nlp_system varchar(250) NOT NULL,
    PRIMARY KEY (event_table, event_id, note_id, nlp_system)
);
