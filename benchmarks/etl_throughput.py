"""Documents/s of the shipped pipeline against a peer built from PyPI (QuickUMLS + medspaCy ConText), in one run.

Why: a user choosing a clinical-notes ETL will compare us with the usual dictionary baseline. This puts both on
the same documents, the same machine and the same vocabulary, and says how many mentions each found, so a fast
system that finds nothing does not look good.

What is measured (documents: the first ``--limit`` case reports of ``--data``, CodiEsp English dev by default, about
300 words each; every model is loaded and both systems warmed up on a few *other* documents before the clock runs):

* **ours**: ``build_pipeline()`` (sentencizer, abbreviations, ``clin_ner``, ``clin_linker`` into the default
  ICD-10-CM + HPO store, sections, ConText), timed as ``list(nlp.pipe(texts))``. Onnxruntime threads:
  ``CLIN_LINKER_THREADS`` (``--threads`` sets it), else all cores.
* **peer**: ``medspacy.load`` with medspaCy's tokenizer, PyRuSH sentence splitter, the ``medspacy_quickumls``
  matcher and ConText (its default rules), timed the same way. QuickUMLS runs with the defaults a user gets:
  jaccard similarity, threshold 0.7, window 5, min_match_length 3, best_match, overlapping_criteria "score".
  Its dictionary holds exactly our names: every name (preferred, synonyms, inclusion and index terms, lay and
  abbreviation names) of every concept of the default concept store. QuickUMLS needs UMLS RRF files, so a
  minimal MRCONSO.RRF / MRSTY.RRF is written from the store (CUI = our concept key; semantic type T047 "Disease or
  Syndrome" for ICD-10-CM, T184 "Sign or Symptom" for HPO, T033 "Finding" otherwise, all in QuickUMLS's default
  accepted types, so none of our names is filtered out) and the database is built by ``quickumls.install``'s
  own functions with ``-L -U`` (lowercase, unicode-normalised, like medspaCy's bundled sample) once per store
  version into ``<clin-linker home>/benchmarks/quickumls-<store version>`` (reused later; the build time is printed).
  QuickUMLS reads NLTK's English stop words; where the NLTK corpus is not installed (offline machines) NLTK's
  list is written beside that database. PyRuSH's loguru DEBUG log (each sentence boundary, with the note's
  words, on stderr) is disabled, as any user would; it would also slow the peer down.
* **mentions**: ``doc.ents`` of each system; for ours also how many were linked to a concept (the peer's are
  linked by construction), and for both how many ConText negated.
* ``--profile``: each stage of each pipeline on its own over the documents (``make_doc``, then every component's
  ``pipe`` as ``nlp.pipe`` calls it), seconds and share; our linker's mention-vector memo is emptied first, so
  it pays what the timed run paid.
* ``--job``: the Beam job end to end,
  ``clin-linker run --notes FILE --out X.duckdb --no-report -- --runner=FnApiRunner`` (1 worker) and the same plus
  ``--direct_running_mode=multi_processing --direct_num_workers=2`` (2 workers), as subprocesses. Documents/s come
  from the Beam pipeline's wall time that the job records (``clin_linker_run.seconds``: reading, the workers
  loading their models, the pipeline, staging the rows; not the index check before it nor the final load into
  DuckDB); the whole process's wall time is printed too. With 100 notes the workers' model loading is a large
  part of that time; the in-process figures above are the steady state.

    python benchmarks/etl_throughput.py [--data FILE.jsonl] [--limit 100] [--threads 2] [--profile] [--job]
"""
from __future__ import annotations

import argparse
import inspect
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from spacy.language import Language

    from clin_linker.ontologies.store import ConceptStore

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data" / "coding" / "codiesp_en" / "dev.jsonl"
#: Documents after the measured ones that warm both systems up (onnxruntime sessions, caches, lazy loads).
WARMUP_DOCS = 5
#: QuickUMLS settings: the component's defaults, spelled out so the printout and the docstring can say them.
QUICKUMLS_SETTINGS = {"threshold": 0.7, "similarity_name": "jaccard", "window": 5, "min_match_length": 3}
#: UMLS semantic type given to each vocabulary's concepts (all in quickumls.constants.ACCEPTED_SEMTYPES).
SEMTYPES = {"ICD10CM": ("T047", "B2.2.1.2.1", "Disease or Syndrome"), "HPO": ("T184", "A2.2.2", "Sign or Symptom")}
OTHER_SEMTYPE = ("T033", "A2.2", "Finding")
#: nltk_data's corpora/stopwords/english (179 words), for machines without the NLTK corpus.
NLTK_ENGLISH_STOPWORDS = """i me my myself we our ours ourselves you you're you've you'll you'd your yours yourself
yourselves he him his himself she she's her hers herself it it's its itself they them their theirs themselves what
which who whom this that that'll these those am is are was were be been being have has had having do does did
doing a an the and but if or because as until while of at by for with about against between into through during
before after above below to from up down in out on off over under again further then once here there when where
why how all any both each few more most other some such no nor not only own same so than too very s t can will
just don don't should should've now d ll m o re ve y ain aren aren't couldn couldn't didn didn't doesn doesn't
hadn hadn't hasn hasn't haven haven't isn isn't ma mightn mightn't mustn mustn't needn needn't shan shan't shouldn
shouldn't wasn wasn't weren weren't won won't wouldn wouldn't""".split()


@dataclass
class Measured:
    """One system's timed pass."""

    name: str
    load_s: float
    seconds: float
    docs: int
    mentions: int
    linked: int | None
    negated: int

    @property
    def docs_per_s(self) -> float:
        return self.docs / self.seconds


def read_texts(path: Path, limit: int) -> tuple[list[str], list[str]]:
    """The first ``limit`` texts, and up to WARMUP_DOCS texts after them (the first ones if there are none)."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    texts = [r.get("text", r.get("note_text")) for r in rows]
    measured = texts[:limit]
    warmup = texts[limit:limit + WARMUP_DOCS] or texts[:WARMUP_DOCS]
    return measured, warmup


def benchmark_home() -> Path:
    from clin_linker.ontologies.default_index import clin_linker_home

    return clin_linker_home() / "benchmarks"


def time_pipeline(name: str, nlp: Language, load_s: float, texts: list[str], warmup: list[str],
                  linked: Callable[[object], bool] | None) -> tuple[Measured, list]:
    """``list(nlp.pipe(texts))`` after one pass over ``warmup``."""
    list(nlp.pipe(warmup))
    started = time.perf_counter()
    docs = list(nlp.pipe(texts))
    seconds = time.perf_counter() - started
    ents = [e for d in docs for e in d.ents]
    return Measured(name, load_s, seconds, len(docs), len(ents),
                    sum(map(linked, ents)) if linked else None,
                    sum(bool(getattr(e._, "is_negated", False)) for e in ents)), docs


def build_ours() -> Language:
    from clin_linker.pipeline.build import build_pipeline

    return build_pipeline()


def empty_memos(nlp: Language) -> None:
    """Forget our linker's mention vectors, so a later pass pays for encoding as a fresh run does."""
    from clin_linker.pipeline.build import linker_of

    candidates = linker_of(nlp).resources.candidates
    memo = getattr(candidates, "_memo", None)
    if memo is not None:
        memo.clear()


# --- the peer -------------------------------------------------------------------------------------------------


def write_rrf(store: ConceptStore, rrf_dir: Path) -> int:
    """MRCONSO.RRF + MRSTY.RRF holding every name of ``store``; returns the number of names written."""
    rrf_dir.mkdir(parents=True, exist_ok=True)
    vocabulary = {c.concept_key: c.vocabulary_id for c in store.concepts()}
    names = store.names().to_pylist()
    with open(rrf_dir / "MRCONSO.RRF", "w", encoding="utf-8") as conso:
        for i, row in enumerate(names):
            key, text = row["concept_key"], " ".join(row["name"].replace("|", " ").split())
            preferred = row["name_type"] == "preferred"
            code = key.split(":", 1)[-1]
            # CUI|LAT|TS|LUI|STT|SUI|ISPREF|AUI|SAUI|SCUI|SDUI|SAB|TTY|CODE|STR|SRL|SUPPRESS|CVF|
            conso.write(f"{key}|ENG|{'P' if preferred else 'S'}|L{i}|PF|S{i}|{'Y' if preferred else 'N'}|A{i}||"
                        f"{code}||{vocabulary[key]}|{'PT' if preferred else 'SY'}|{code}|{text}|0|N||\n")
    with open(rrf_dir / "MRSTY.RRF", "w", encoding="utf-8") as sty:
        for i, (key, vocab) in enumerate(vocabulary.items()):
            tui, stn, label = SEMTYPES.get(vocab, OTHER_SEMTYPE)
            # CUI|TUI|STN|STY|ATUI|CVF|
            sty.write(f"{key}|{tui}|{stn}|{label}|AT{i}||\n")
    return len(names)


def ensure_quickumls_db(store: ConceptStore) -> tuple[Path, float | None]:
    """The QuickUMLS database of ``store``'s names, built once per store version; (directory, build seconds or None
    when reused)."""
    from quickumls.install import extract_from_mrconso, parse_and_encode_ngrams

    root = benchmark_home() / f"quickumls-{store.version}"
    db = root / "quickumls"
    if (db / "complete.flag").exists():
        return db, None
    started = time.perf_counter()
    n = write_rrf(store, root / "rrf")
    partial = root / "quickumls.partial"
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    # what `python -m quickumls.install -L -U RRF_DIR DB_DIR` does, minus its spaCy model download and prompts
    opts = argparse.Namespace(lowercase=True, normalize_unicode=True, language="ENG", database_backend="unqlite")
    for flag in ("lowercase.flag", "normalize-unicode.flag"):
        (partial / flag).touch()
    (partial / "language.flag").write_text(opts.language)
    (partial / "database_backend.flag").write_text(opts.database_backend)
    terms = extract_from_mrconso(str(root / "rrf" / "MRCONSO.RRF"), str(root / "rrf" / "MRSTY.RRF"), opts)
    parse_and_encode_ngrams(terms, str(partial / "umls-simstring.db"), str(partial / "cui-semtypes.db"),
                            database_backend=opts.database_backend)
    (partial / "complete.flag").touch()
    if db.exists():
        shutil.rmtree(db)
    partial.rename(db)
    seconds = time.perf_counter() - started
    print(f"built the QuickUMLS database of {n} names in {db} in {seconds:.0f} s (once per store version)")
    return db, seconds


def ensure_nltk_stopwords() -> None:
    """QuickUMLS reads NLTK's English stop words; offline machines lack the corpus, so write NLTK's own list."""
    import nltk

    try:
        nltk.corpus.stopwords.words("english")
        return
    except LookupError:
        pass
    data = benchmark_home() / "nltk_data"
    english = data / "corpora" / "stopwords" / "english"
    english.parent.mkdir(parents=True, exist_ok=True)
    english.write_text("\n".join(NLTK_ENGLISH_STOPWORDS) + "\n")
    nltk.data.path.insert(0, str(data))
    nltk.corpus.stopwords.words("english")


def build_peer(db: Path) -> Language:
    import medspacy
    from loguru import logger

    ensure_nltk_stopwords()
    # PyRuSH logs every sentence boundary, with the note's words, at DEBUG on stderr; no user keeps that on
    logger.disable("PyRuSH")
    nlp = medspacy.load(medspacy_enable=["medspacy_tokenizer", "medspacy_pyrush", "medspacy_context"])
    # medspacy.load would add QuickUMLS with its defaults too; adding it here names the settings we report
    nlp.add_pipe("medspacy_quickumls", before="medspacy_context",
                 config={"quickumls_fp": str(db), **QUICKUMLS_SETTINGS})
    return nlp


# --- profile ----------------------------------------------------------------------------------------------------


def profile(nlp: Language, texts: list[str]) -> list[tuple[str, float]]:
    """Seconds of ``make_doc`` and of each component over all ``texts``, called the way ``nlp.pipe`` calls them."""
    started = time.perf_counter()
    docs = [nlp.make_doc(t) for t in texts]
    rows = [("make_doc (tokenizer)", time.perf_counter() - started)]
    for name, proc in nlp.pipeline:
        started = time.perf_counter()
        if hasattr(proc, "pipe"):
            kwargs = {"batch_size": nlp.batch_size} if "batch_size" in inspect.signature(proc.pipe).parameters else {}
            docs = list(proc.pipe(docs, **kwargs))
        else:
            docs = [proc(d) for d in docs]
        rows.append((name, time.perf_counter() - started))
    return rows


def print_profile(title: str, rows: list[tuple[str, float]], docs: int) -> None:
    total = sum(s for _, s in rows)
    print(f"\nprofile, {title} ({docs} documents, {total:.1f} s in all, {docs / total:.2f} docs/s)")
    print(f"  {'stage':<28} {'seconds':>8} {'share':>7}")
    for name, seconds in rows:
        print(f"  {name:<28} {seconds:8.2f} {seconds / total:7.1%}")


# --- the Beam job -----------------------------------------------------------------------------------------------


JOB_MODES = {
    "Beam job, 1 worker": ["--runner=FnApiRunner"],
    "Beam job, 2 workers": ["--runner=FnApiRunner", "--direct_running_mode=multi_processing",
                            "--direct_num_workers=2"],
}


def cli_command() -> list[str]:
    script = Path(sys.executable).parent / "clin-linker"
    return [str(script)] if script.exists() else [sys.executable, "-m", "clin_linker.beam_jobs.cli"]


def run_job(texts: list[str], beam_args: list[str], tmp: Path, tag: str) -> str:
    """One ``clin-linker run`` over ``texts``; a result line, or the error it ended with."""
    import duckdb

    notes = tmp / "notes.jsonl"
    if not notes.exists():
        notes.write_text("".join(json.dumps({"note_id": i + 1, "note_text": t}) + "\n" for i, t in enumerate(texts)),
                         encoding="utf-8")
    out = tmp / f"{tag}.duckdb"
    command = [*cli_command(), "run", "--notes", str(notes), "--out", str(out), "--no-report", "--", *beam_args]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-12:])
        return f"FAILED (exit {done.returncode}) after {wall:.0f} s:\n{tail}"
    try:
        with duckdb.connect(str(out), read_only=True) as con:
            seconds = con.execute("select seconds from clin_linker_run").fetchall()[-1][0]
            rows = con.execute("select count(*) from note_nlp").fetchone()[0]
    except Exception as error:  # the CLI's output schema is changing under us; say what broke
        return f"ran in {wall:.0f} s, but its output could not be read: {error}"
    return (f"{len(texts) / seconds:6.2f} docs/s  (Beam run {seconds:.1f} s incl. the workers' model loading; "
            f"whole process {wall:.0f} s; {rows} NOTE_NLP rows)")


# --- main -------------------------------------------------------------------------------------------------------


def print_table(results: Iterable[Measured]) -> None:
    print(f"\n{'system':<36} {'load s':>7} {'seconds':>8} {'docs/s':>7} {'mentions':>9} {'linked':>7} {'negated':>8}")
    for r in results:
        linked = "all" if r.linked is None else str(r.linked)
        print(f"{r.name:<36} {r.load_s:7.1f} {r.seconds:8.1f} {r.docs_per_s:7.2f} {r.mentions:9d} {linked:>7} "
              f"{r.negated:8d}")


def load_average() -> str:
    """The 1-minute load average: on a shared machine, other processes' load skews every figure here."""
    return f"load average {os.getloadavg()[0]:.1f} (other processes share these cores)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="JSONL with a 'text' (or 'note_text') field")
    ap.add_argument("--limit", type=int, default=100, help="documents measured (default 100)")
    ap.add_argument("--threads", type=int, default=0,
                    help="onnxruntime threads for ours, via CLIN_LINKER_THREADS (default: as set, else all cores)")
    ap.add_argument("--profile", action="store_true", help="also time each pipeline stage on its own")
    ap.add_argument("--job", action="store_true", help="also run the Beam job with 1 and with 2 workers")
    args = ap.parse_args()
    if args.threads:
        os.environ["CLIN_LINKER_THREADS"] = str(args.threads)
    texts, warmup = read_texts(args.data, args.limit)
    words = sum(len(t.split()) for t in texts)
    threads = os.environ.get("CLIN_LINKER_THREADS", f"all cores ({os.cpu_count()})")
    print(f"{len(texts)} documents from {args.data.name} ({words / len(texts):.0f} words each on average), "
          f"{len(warmup)} others to warm up; {os.cpu_count()} cores; CLIN_LINKER_THREADS={threads}; "
          f"{load_average()}")

    from clin_linker.ontologies.default_index import ensure_default_index
    from clin_linker.ontologies.index import store_dir_of
    from clin_linker.ontologies.store import ConceptStore

    started = time.perf_counter()
    ours_nlp = build_ours()
    ours_load = time.perf_counter() - started
    store = ConceptStore(store_dir_of(ensure_default_index()))
    db, built = ensure_quickumls_db(store)
    if built is None:
        print(f"QuickUMLS database: {db} (built on an earlier run; delete it to time the build)")
    started = time.perf_counter()
    peer_nlp = build_peer(db)
    peer_load = time.perf_counter() - started
    print(f"vocabulary: default store {store.version}, {len(store)} concepts, "
          f"{store.manifest['counts']['names']} names (both systems)")
    print(f"ours: {' -> '.join(ours_nlp.pipe_names)}")
    print(f"peer: {' -> '.join(peer_nlp.pipe_names)}; QuickUMLS {QUICKUMLS_SETTINGS}")

    ours, _ = time_pipeline("ours (build_pipeline)", ours_nlp, ours_load, texts, warmup,
                            lambda e: e._.concept is not None)
    peer, _ = time_pipeline("peer (QuickUMLS + medspaCy ConText)", peer_nlp, peer_load, texts, warmup, None)
    print_table([ours, peer])
    print(f"ratio ours / peer (docs/s): {ours.docs_per_s / peer.docs_per_s:.2f}")

    if args.profile:
        empty_memos(ours_nlp)
        print_profile("ours", profile(ours_nlp, texts), len(texts))
        print_profile("peer", profile(peer_nlp, texts), len(texts))

    if args.job:
        del ours_nlp, peer_nlp  # the subprocesses load their own models
        print("\nBeam job (clin-linker run, default index, no report):")
        with tempfile.TemporaryDirectory(prefix="etl-throughput-") as tmp:
            for tag, (label, beam_args) in enumerate(JOB_MODES.items()):
                print(f"  {label:<22} {run_job(texts, beam_args, Path(tmp), f'job{tag}')}", flush=True)
    print(f"\nat the end: {load_average()}")


if __name__ == "__main__":
    main()
