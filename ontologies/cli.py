"""``clin-linker vocab build``, ``clin-linker vocab convert-index`` and ``clin-linker index build``."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from .sources import DEFAULT_SOURCES, SOURCES


def _vocab_build(args: argparse.Namespace) -> int:
    from .sources import load_sources
    from .store import build_store

    manifest = build_store(load_sources(args.source or list(DEFAULT_SOURCES)), Path(args.out))
    print(json.dumps(manifest["counts"], indent=2))
    print(f"concept store written to {args.out} (version {manifest['store_version']})")
    return 0


def _vocab_convert_index(args: argparse.Namespace) -> int:
    from .icd10cm_index import convert_index

    counts = convert_index(Path(args.tsv), Path(args.out), version=args.version)
    print(json.dumps(counts, indent=2))
    print(f"index written to {args.out}; use it with --source icd10cm-index={args.out}")
    return 0


def _vocab_convert_gps(args: argparse.Namespace) -> int:
    from .snomed_gps import convert_gps

    counts = convert_gps(Path(args.tsv), Path(args.mondo), Path(args.out), version=args.version)
    print(json.dumps(counts, indent=2))
    print(f"GPS written to {args.out}; use it with --source snomed-gps={args.out}")
    return 0


def _index_build(args: argparse.Namespace) -> int:
    from .default_index import DEFAULT_ENCODER_DIR, ensure_default_index
    from .index import HnswParams, build_index

    if args.default:
        print(f"default index: {ensure_default_index(force=args.force)}")
        return 0
    if not args.store or not args.out:
        raise ValueError("give --store and --out (or --default for the embedded default index)")
    params = HnswParams(M=args.M, ef_construction=args.ef_construction, ef_search=args.ef_search)
    manifest = build_index(Path(args.store), Path(args.encoder or DEFAULT_ENCODER_DIR), Path(args.out), params,
                           threads=args.threads or None)
    print(json.dumps({k: manifest[k] for k in ("counts", "encoder", "hnsw", "timing_s")}, indent=2))
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    vocab = commands.add_parser("vocab", help="build a concept store from vocabulary sources")
    vocab_sub = vocab.add_subparsers(dest="vocab_command", metavar="ACTION", required=True)
    build = vocab_sub.add_parser(
        "build",
        help="read vocabulary sources into one normalized concept store",
        description="Read vocabulary sources into one concept store (Parquet tables + manifest). "
        f"Source kinds: {', '.join(SOURCES)}. A source is KIND (packaged data: icd10cm, icd10cm-index, hpo, "
        "icd10pcs, snomed-gps), "
        "KIND=PATH (athena=DIR, snomed-rf2=DIR, icf-claml=FILE.xml) or custom:VOCAB_ID=FILE.csv|.jsonl.",
    )
    build.add_argument("--source", action="append", metavar="SPEC",
                       help=f"a vocabulary source; repeat for several (default: {' '.join(DEFAULT_SOURCES)})")
    build.add_argument("--out", required=True, help="directory to write the store to")
    build.set_defaults(handler=_vocab_build)
    convert = vocab_sub.add_parser(
        "convert-index",
        help="convert the ICD-10-CM Alphabetic Index (CDC, flattened to TSV) into the compact package file",
        description="Convert the CDC ICD-10-CM Alphabetic Index, flattened to TSV (columns concept_id, name, "
        "table, qualifier, level, main_term, nonessential_modifiers, see, see_also), into the Parquet file "
        "that the source icd10cm-index reads. Keeps the main index and the Neoplasm Table "
        "(docs/vocabularies.md).",
    )
    convert.add_argument("--tsv", required=True, help="the flattened CDC index TSV")
    convert.add_argument("--out", required=True, help="the .parquet file to write")
    convert.add_argument("--version", default="unknown", help="the index release, e.g. FY2025 (stored in the file)")
    convert.set_defaults(handler=_vocab_convert_index)
    gps = vocab_sub.add_parser(
        "convert-gps",
        help="convert the SNOMED CT Global Patient Set (+ Mondo exact matches) into the compact package file",
        description="Convert the SNOMED CT Global Patient Set, as a TSV with columns concept_id (SNOMEDCT:<id>) and "
        "fsn, and Mondo's cross-references (TSV: concept_id, label, xref_id, predicate; only skos:exactMatch rows to "
        "a GPS id are used, their Mondo label becomes a synonym) into the Parquet file that the source snomed-gps "
        "reads (docs/vocabularies.md). Both are CC BY 4.0: keep the attribution (ontologies/data/NOTICE).",
    )
    gps.add_argument("--tsv", required=True, help="the GPS table (concept_id, fsn)")
    gps.add_argument("--mondo", required=True, help="Mondo cross-references (concept_id, label, xref_id, predicate)")
    gps.add_argument("--out", required=True, help="the .parquet file to write")
    gps.add_argument("--version", required=True, help="the GPS release, e.g. 2020-09 (stored in the file)")
    gps.set_defaults(handler=_vocab_convert_gps)

    index = commands.add_parser("index", help="build the hnswlib retrieval index of a concept store")
    index_sub = index.add_subparsers(dest="index_command", metavar="ACTION", required=True)
    ib = index_sub.add_parser(
        "build", help="embed every name of a store and build a cosine hnsw index",
        description="Embed every name of a concept store with the ONNX encoder and build an hnswlib cosine "
        "index; the manifest records the encoder id + hash, the store version, counts and hnsw parameters.",
    )
    ib.add_argument("--store", help="concept store directory (from `clin-linker vocab build`)")
    ib.add_argument("--out", help="index directory to write")
    ib.add_argument("--encoder", help="encoder artifact directory (default: the shipped encoder)")
    ib.add_argument("--default", action="store_true",
                    help="build (or reuse) the embedded default index in $CLIN_LINKER_HOME instead")
    ib.add_argument("--force", action="store_true", help="with --default: rebuild even if current")
    ib.add_argument("--M", type=int, default=32, help="hnsw graph degree (default 32)")
    ib.add_argument("--ef-construction", type=int, default=200, help="hnsw build beam (default 200)")
    ib.add_argument("--ef-search", type=int, default=128, help="hnsw query beam stored in the manifest (default 128)")
    ib.add_argument("--threads", type=int, default=0, help="threads for embedding/indexing (default: all cores)")
    ib.set_defaults(handler=_index_build)
