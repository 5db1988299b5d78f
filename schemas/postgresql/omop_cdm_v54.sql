-- OMOP CDM v5.4 DDL, PostgreSQL dialect: the tables clin-linker reads and writes.
-- Column names, order, types and NOT NULL flags follow the OHDSI CommonDataModel v5.4 DDL
-- (inst/ddl/5.4/postgresql/OMOPCDM_postgresql_5.4_ddl.sql).
--
-- Deliberate deviations from the official DDL:
--   * note.note_id, note_nlp.note_nlp_id and note_nlp.note_id are bigint, not integer:
--     note_nlp_id is a deterministic 63-bit hash of (note_id, start, end, concept, nlp_system),
--     so a re-run produces the same ids and upserts instead of duplicating; note ids from source
--     systems are int64.
--   * condition_occurrence_id, drug_exposure_id and procedure_occurrence_id are bigint, not integer: rows
--     derived from notes (`clin-linker run --derive-clinical-tables`) get a deterministic 63-bit hash of
--     (table, person, concept, date), so a mention repeated in notes or re-runs lands on the same row.
--   * note, note_nlp and concept declare their PRIMARY KEY inline (the official DDL adds the same keys
--     in a separate primary_keys script), so INSERT ... ON CONFLICT DO NOTHING makes writes idempotent.
--     condition_occurrence, drug_exposure and procedure_occurrence carry their official primary keys too.
--   * CREATE TABLE IF NOT EXISTS and no @cdmDatabaseSchema prefix: the script can run repeatedly
--     against the current schema (set search_path beforehand).
-- Local concept ids (>= 2,000,000,000) still fit concept_id integer (max 2,147,483,647).
-- "offset" is a reserved word: always quote it.

CREATE TABLE IF NOT EXISTS concept (
    concept_id integer NOT NULL,
    concept_name varchar(255) NOT NULL,
    domain_id varchar(20) NOT NULL,
    vocabulary_id varchar(20) NOT NULL,
    concept_class_id varchar(20) NOT NULL,
    standard_concept varchar(1) NULL,
    concept_code varchar(50) NOT NULL,
    valid_start_date date NOT NULL,
    valid_end_date date NOT NULL,
    invalid_reason varchar(1) NULL,
    PRIMARY KEY (concept_id)
);

CREATE TABLE IF NOT EXISTS note (
    note_id bigint NOT NULL,
    person_id integer NOT NULL,
    note_date date NOT NULL,
    note_datetime timestamp NULL,
    note_type_concept_id integer NOT NULL,
    note_class_concept_id integer NOT NULL,
    note_title varchar(250) NULL,
    note_text text NOT NULL,
    encoding_concept_id integer NOT NULL,
    language_concept_id integer NOT NULL,
    provider_id integer NULL,
    visit_occurrence_id integer NULL,
    visit_detail_id integer NULL,
    note_source_value varchar(50) NULL,
    note_event_id bigint NULL,
    note_event_field_concept_id integer NULL,
    PRIMARY KEY (note_id)
);

CREATE TABLE IF NOT EXISTS note_nlp (
    note_nlp_id bigint NOT NULL,
    note_id bigint NOT NULL,
    section_concept_id integer NULL,
    snippet varchar(250) NULL,
    "offset" varchar(50) NULL,
    lexical_variant varchar(250) NOT NULL,
    note_nlp_concept_id integer NULL,
    note_nlp_source_concept_id integer NULL,
    nlp_system varchar(250) NULL,
    nlp_date date NOT NULL,
    nlp_datetime timestamp NULL,
    term_exists varchar(1) NULL,
    term_temporal varchar(50) NULL,
    term_modifiers varchar(2000) NULL,
    PRIMARY KEY (note_nlp_id)
);

CREATE TABLE IF NOT EXISTS condition_occurrence (
    condition_occurrence_id bigint NOT NULL,
    person_id integer NOT NULL,
    condition_concept_id integer NOT NULL,
    condition_start_date date NOT NULL,
    condition_start_datetime timestamp NULL,
    condition_end_date date NULL,
    condition_end_datetime timestamp NULL,
    condition_type_concept_id integer NOT NULL,
    condition_status_concept_id integer NULL,
    stop_reason varchar(20) NULL,
    provider_id integer NULL,
    visit_occurrence_id integer NULL,
    visit_detail_id integer NULL,
    condition_source_value varchar(50) NULL,
    condition_source_concept_id integer NULL,
    condition_status_source_value varchar(50) NULL,
    PRIMARY KEY (condition_occurrence_id)
);

CREATE TABLE IF NOT EXISTS drug_exposure (
    drug_exposure_id bigint NOT NULL,
    person_id integer NOT NULL,
    drug_concept_id integer NOT NULL,
    drug_exposure_start_date date NOT NULL,
    drug_exposure_start_datetime timestamp NULL,
    drug_exposure_end_date date NOT NULL,
    drug_exposure_end_datetime timestamp NULL,
    verbatim_end_date date NULL,
    drug_type_concept_id integer NOT NULL,
    stop_reason varchar(20) NULL,
    refills integer NULL,
    quantity numeric NULL,
    days_supply integer NULL,
    sig text NULL,
    route_concept_id integer NULL,
    lot_number varchar(50) NULL,
    provider_id integer NULL,
    visit_occurrence_id integer NULL,
    visit_detail_id integer NULL,
    drug_source_value varchar(50) NULL,
    drug_source_concept_id integer NULL,
    route_source_value varchar(50) NULL,
    dose_unit_source_value varchar(50) NULL,
    PRIMARY KEY (drug_exposure_id)
);

CREATE TABLE IF NOT EXISTS procedure_occurrence (
    procedure_occurrence_id bigint NOT NULL,
    person_id integer NOT NULL,
    procedure_concept_id integer NOT NULL,
    procedure_date date NOT NULL,
    procedure_datetime timestamp NULL,
    procedure_end_date date NULL,
    procedure_end_datetime timestamp NULL,
    procedure_type_concept_id integer NOT NULL,
    modifier_concept_id integer NULL,
    quantity integer NULL,
    provider_id integer NULL,
    visit_occurrence_id integer NULL,
    visit_detail_id integer NULL,
    procedure_source_value varchar(50) NULL,
    procedure_source_concept_id integer NULL,
    modifier_source_value varchar(50) NULL,
    PRIMARY KEY (procedure_occurrence_id)
);
