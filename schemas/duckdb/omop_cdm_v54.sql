-- OMOP CDM v5.4 DDL, DuckDB dialect: the tables clin-linker reads and writes.
-- Column names, order and NOT NULL flags follow the OHDSI CommonDataModel v5.4 DDL
-- (inst/ddl/5.4/duckdb/OMOPCDM_duckdb_5.4_ddl.sql). Types are mapped to DuckDB: varchar(n) and TEXT
-- become VARCHAR (DuckDB does not enforce lengths: writers must truncate, e.g. snippet and
-- lexical_variant to 250 characters), NUMERIC stays NUMERIC.
--
-- Deliberate deviations from the official DDL:
--   * note.note_id, note_nlp.note_nlp_id and note_nlp.note_id are BIGINT, not INTEGER:
--     note_nlp_id is a deterministic 63-bit hash of (note_id, start, end, concept, nlp_system),
--     so a re-run produces the same ids and upserts instead of duplicating; note ids from source
--     systems are int64. note.note_event_id is BIGINT as in the PostgreSQL v5.4 DDL.
--   * condition_occurrence_id, drug_exposure_id and procedure_occurrence_id are BIGINT, not INTEGER: rows
--     derived from notes (`clin-linker run --derive-clinical-tables`) get a deterministic 63-bit hash of
--     (table, person, concept, date), so a mention repeated in notes or re-runs lands on the same row.
--   * note, note_nlp and concept declare their PRIMARY KEY inline (the official DDL adds the same keys
--     in a separate primary_keys script), so INSERT ... ON CONFLICT DO NOTHING makes writes idempotent.
--     condition_occurrence, drug_exposure and procedure_occurrence carry their official primary keys too.
--   * CREATE TABLE IF NOT EXISTS and no @cdmDatabaseSchema prefix: the script can run repeatedly
--     against the current schema (set it with USE / search_path beforehand).
-- Local concept ids (>= 2,000,000,000) still fit concept_id INTEGER (max 2,147,483,647).
-- "offset" is a reserved word: always quote it.

CREATE TABLE IF NOT EXISTS concept (
    concept_id INTEGER NOT NULL,
    concept_name VARCHAR NOT NULL,
    domain_id VARCHAR NOT NULL,
    vocabulary_id VARCHAR NOT NULL,
    concept_class_id VARCHAR NOT NULL,
    standard_concept VARCHAR NULL,
    concept_code VARCHAR NOT NULL,
    valid_start_date DATE NOT NULL,
    valid_end_date DATE NOT NULL,
    invalid_reason VARCHAR NULL,
    PRIMARY KEY (concept_id)
);

CREATE TABLE IF NOT EXISTS note (
    note_id BIGINT NOT NULL,
    person_id INTEGER NOT NULL,
    note_date DATE NOT NULL,
    note_datetime TIMESTAMP NULL,
    note_type_concept_id INTEGER NOT NULL,
    note_class_concept_id INTEGER NOT NULL,
    note_title VARCHAR NULL,
    note_text VARCHAR NOT NULL,
    encoding_concept_id INTEGER NOT NULL,
    language_concept_id INTEGER NOT NULL,
    provider_id INTEGER NULL,
    visit_occurrence_id INTEGER NULL,
    visit_detail_id INTEGER NULL,
    note_source_value VARCHAR NULL,
    note_event_id BIGINT NULL,
    note_event_field_concept_id INTEGER NULL,
    PRIMARY KEY (note_id)
);

CREATE TABLE IF NOT EXISTS note_nlp (
    note_nlp_id BIGINT NOT NULL,
    note_id BIGINT NOT NULL,
    section_concept_id INTEGER NULL,
    snippet VARCHAR NULL,
    "offset" VARCHAR NULL,
    lexical_variant VARCHAR NOT NULL,
    note_nlp_concept_id INTEGER NULL,
    note_nlp_source_concept_id INTEGER NULL,
    nlp_system VARCHAR NULL,
    nlp_date DATE NOT NULL,
    nlp_datetime TIMESTAMP NULL,
    term_exists VARCHAR NULL,
    term_temporal VARCHAR NULL,
    term_modifiers VARCHAR NULL,
    PRIMARY KEY (note_nlp_id)
);

CREATE TABLE IF NOT EXISTS condition_occurrence (
    condition_occurrence_id BIGINT NOT NULL,
    person_id INTEGER NOT NULL,
    condition_concept_id INTEGER NOT NULL,
    condition_start_date DATE NOT NULL,
    condition_start_datetime TIMESTAMP NULL,
    condition_end_date DATE NULL,
    condition_end_datetime TIMESTAMP NULL,
    condition_type_concept_id INTEGER NOT NULL,
    condition_status_concept_id INTEGER NULL,
    stop_reason VARCHAR NULL,
    provider_id INTEGER NULL,
    visit_occurrence_id INTEGER NULL,
    visit_detail_id INTEGER NULL,
    condition_source_value VARCHAR NULL,
    condition_source_concept_id INTEGER NULL,
    condition_status_source_value VARCHAR NULL,
    PRIMARY KEY (condition_occurrence_id)
);

CREATE TABLE IF NOT EXISTS drug_exposure (
    drug_exposure_id BIGINT NOT NULL,
    person_id INTEGER NOT NULL,
    drug_concept_id INTEGER NOT NULL,
    drug_exposure_start_date DATE NOT NULL,
    drug_exposure_start_datetime TIMESTAMP NULL,
    drug_exposure_end_date DATE NOT NULL,
    drug_exposure_end_datetime TIMESTAMP NULL,
    verbatim_end_date DATE NULL,
    drug_type_concept_id INTEGER NOT NULL,
    stop_reason VARCHAR NULL,
    refills INTEGER NULL,
    quantity NUMERIC NULL,
    days_supply INTEGER NULL,
    sig VARCHAR NULL,
    route_concept_id INTEGER NULL,
    lot_number VARCHAR NULL,
    provider_id INTEGER NULL,
    visit_occurrence_id INTEGER NULL,
    visit_detail_id INTEGER NULL,
    drug_source_value VARCHAR NULL,
    drug_source_concept_id INTEGER NULL,
    route_source_value VARCHAR NULL,
    dose_unit_source_value VARCHAR NULL,
    PRIMARY KEY (drug_exposure_id)
);

CREATE TABLE IF NOT EXISTS procedure_occurrence (
    procedure_occurrence_id BIGINT NOT NULL,
    person_id INTEGER NOT NULL,
    procedure_concept_id INTEGER NOT NULL,
    procedure_date DATE NOT NULL,
    procedure_datetime TIMESTAMP NULL,
    procedure_end_date DATE NULL,
    procedure_end_datetime TIMESTAMP NULL,
    procedure_type_concept_id INTEGER NOT NULL,
    modifier_concept_id INTEGER NULL,
    quantity INTEGER NULL,
    provider_id INTEGER NULL,
    visit_occurrence_id INTEGER NULL,
    visit_detail_id INTEGER NULL,
    procedure_source_value VARCHAR NULL,
    procedure_source_concept_id INTEGER NULL,
    modifier_source_value VARCHAR NULL,
    PRIMARY KEY (procedure_occurrence_id)
);
