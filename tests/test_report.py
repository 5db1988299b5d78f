"""The review report (issue 16): ``clin-linker run`` writes it, ``clin-linker report`` rewrites it, and what it
shows agrees with the DuckDB output of a real run of the shipped pipeline on the sample notes. Expected numbers
come from the database, never from constants: the linker's defaults change. One test opens the report in headless
Chromium and reads the page the browser built."""
from __future__ import annotations

import contextlib
import html
import io
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pytest

from duckdb_rows import query
from clin_linker.beam_jobs.cli import main
from clin_linker.beam_jobs.cli.run import sample_notes_path
from clin_linker.beam_jobs.report import DEFAULT_MAX_NOTES, SIZE_BUDGET, write_report
from clin_linker.beam_jobs.report.data import REJECTED_SHOWN

ROOT = Path(__file__).resolve().parents[1]
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Page(HTMLParser):
    """What the tests read off a report (as written, or as the browser's DOM): the summary numbers, the highlighted
    mentions (attributes + their own words), every id, the evidence links and the figures holding an <svg>."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.stats: dict[str, str] = {}
        self.marks: list[dict] = []
        self.ids: set[str] = set()
        self.evidence: list[str] = []
        self.figures_with_svg: set[str] = set()
        self.texts: dict[str, str] = {}  # element id -> its text, for a few ids
        self._stack: list[tuple[str, dict]] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = {k: v or "" for k, v in attrs}
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "mark" and "entity" in attrs.get("class", "").split():
            self.marks.append({**attrs, "text": ""})
        if tag == "a" and "evidence" in attrs.get("class", ""):
            self.evidence.append(attrs["href"])
        if tag == "svg":
            figure = next((a["id"] for t, a in reversed(self._stack) if t == "figure"), None)
            if figure:
                self.figures_with_svg.add(figure)
        if tag not in _VOID:
            self._stack.append((tag, attrs))

    def handle_endtag(self, tag):
        while self._stack:
            if self._stack.pop()[0] == tag:
                break

    def handle_data(self, data):
        if not self._stack:
            return
        tag, attrs = self._stack[-1]
        if "data-stat" in attrs:
            self.stats[attrs["data-stat"]] = self.stats.get(attrs["data-stat"], "") + data
        if tag == "mark" and self.marks:
            self.marks[-1]["text"] += data
        for _, outer in self._stack:
            if outer.get("id") in ("filter-count", "patient-data"):
                self.texts[outer["id"]] = self.texts.get(outer["id"], "") + data

    def stat(self, name: str) -> int:
        return int(self.stats[name].strip())



@pytest.fixture(scope="module")
def coded_run(default_index, tmp_path_factory):
    """The sample notes through `clin-linker run --code` (the report of a coding run shows the most); stdout kept."""
    db = tmp_path_factory.mktemp("report") / "omop.duckdb"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["run", "--out", str(db), "--index", str(default_index), "--code", "--threads", "1"])
    assert code == 0, out.getvalue()
    return db, out.getvalue()


@pytest.fixture(scope="module")
def report(coded_run) -> tuple[Path, str]:
    db, _ = coded_run
    path = db.with_name(db.name + ".report.html")
    return path, path.read_text(encoding="utf-8")


def _notes() -> dict[int, str]:
    rows = [json.loads(line) for line in sample_notes_path().read_text(encoding="utf-8").splitlines() if line]
    return {row["note_id"]: row["note_text"] for row in rows}


def _between_mentions(text: str, spans: list[tuple[int, int]]) -> list[str]:
    """The note's text outside its mentions, stripped pieces."""
    cuts = [0] + [i for span in sorted(spans) for i in span] + [len(text)]
    return [piece for a, b in zip(cuts[::2], cuts[1::2]) if (piece := text[a:b].strip())]


def test_run_ends_by_printing_the_report_it_wrote(coded_run, report):
    db, stdout = coded_run
    path, _ = report
    last = stdout.strip().splitlines()[-1]
    assert last.startswith("report") and str(path) in last
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # it holds note text: its owner's only


def test_summary_agrees_with_the_database(coded_run, report):
    db, _ = coded_run
    page = Page(report[1])
    notes = _notes()
    assert page.stat("notes_read") == page.stat("notes_coded") == len(notes)
    assert page.stat("notes_dead_lettered") == 0
    # counted from NOTE_NLP itself (its term_modifiers text), not from the tables the report reads
    total, linked = query(db, "select count(*), count(*) filter (note_nlp_source_concept_id <> 0) from note_nlp")[0]
    assert (page.stat("mentions"), page.stat("linked"), page.stat("nil")) == (total, linked, total - linked)
    labels = query(db, "select regexp_extract(term_modifiers, 'label=([A-Z_]+)', 1), count(*) from note_nlp "
                        "group by 1")
    assert {label: page.stat(f"label_{label}") for label, _ in labels} == dict(labels)
    flags = query(db, "select count(*) filter (term_modifiers like '%negated=true%'), "
                       "count(*) filter (term_modifiers like '%subject=family%'), "
                       "count(*) filter (term_modifiers like '%conditional=true%'), "
                       "count(*) filter (term_exists = 'N') from note_nlp")[0]
    assert (page.stat("flag_negated"), page.stat("flag_family"), page.stat("flag_hypothetical"),
            page.stat("not_asserted")) == flags
    assert page.stats["nlp_system"] == query(db, "select any_value(nlp_system) from note_nlp")[0][0]
    ranked, accepted = query(db, "select count(*), count(*) filter (accepted) from clin_linker_note_code")[0]
    assert (page.stat("codes_ranked"), page.stat("codes_accepted")) == (ranked, accepted) and ranked > 0
    # the most frequent code of each vocabulary, by its rows in NOTE_NLP
    for vocabulary, code, n in query(
            db, "select vocabulary_id, concept_code, n from (select c.vocabulary_id, c.concept_code, count(*) n "
                "from note_nlp x join concept c on c.concept_id = x.note_nlp_source_concept_id where c.concept_id <> 0 "
                "group by all) qualify row_number() over (partition by vocabulary_id order by n desc, concept_code) "
                "= 1"):
        key = f"{vocabulary}:{code}"
        assert page.stat(f"top_{key}") == n, key
    # the NIL threshold shown is the one the linker applied: linked at or above it, NIL below it
    threshold = float(page.stats["nil_threshold"])
    assert query(db, "select count(*) from clin_linker_mention where score is not null "
                      "and (concept_key is null) <> (score < ?)", [threshold])[0][0] == 0


def test_plots_are_inline_svg(report):
    page = Page(report[1])
    assert page.figures_with_svg == {"plot-scores", "plot-domains", "plot-codes"}
    assert "NIL threshold" in report[1]  # the threshold's line has a legend entry in the score plot


def test_every_mention_is_highlighted_in_its_note_text_with_its_code(coded_run, report):
    db, _ = coded_run
    page = Page(report[1])
    notes = _notes()
    rows = query(db, "select m.note_id, m.start_char, m.end_char, coalesce(m.concept_key, 'NIL'), n.lexical_variant, "
                      "m.negated, m.family, m.hypothetical from clin_linker_mention m "
                      "join note_nlp n using (note_nlp_id)")
    marks = {m["id"]: m for m in page.marks}
    assert len(marks) == len(page.marks) == len(rows)  # every note of the sample run is shown (fewer than 50)
    for note_id, start, end, code, text, negated, family, hypothetical in rows:
        mark = marks[f"m-{note_id}-{start}-{end}"]
        assert mark["data-code"] == code and mark["text"] == text == notes[note_id][start:end]
        classes = mark["class"].split()
        assert ("neg" in classes, "fam" in classes, "hyp" in classes) == (negated, family, hypothetical)
        assert ("nil" in classes) == (code == "NIL")
    # and so is the text between them, line by line (displaCy turns line breaks into <br>)
    unescaped = html.unescape(report[1])
    for note_id, text in notes.items():
        for piece in _between_mentions(text, [(s, e) for n, s, e, *_ in rows if n == note_id]):
            assert all(line in unescaped for line in re.split(r"\s*[\r\n]+\s*", piece) if line), (note_id, piece)


def test_code_lists_link_to_their_evidence(coded_run, report):
    db, _ = coded_run
    page = Page(report[1])
    # a note's list shows every accepted code and the best few not accepted (what nearly made it)
    shown = query(db, "select note_id, accepted, evidence from clin_linker_note_code qualify accepted or row_number() "
                       "over (partition by note_id, accepted order by code_rank) <= ?", [REJECTED_SHOWN])
    assert report[1].count('<tr class="accepted">') == sum(1 for _, accepted, _ in shown if accepted) > 0
    assert report[1].count('<tr class="rejected">') == sum(1 for _, accepted, _ in shown if not accepted)
    assert page.evidence and all(href.startswith("#") and href[1:] in page.ids for href in page.evidence)
    # the evidence that is a mention links to that mention
    mentions = set(query(db, "select note_id, start_char, end_char from clin_linker_mention"))
    spans = {(note_id, e["start"], e["end"]) for note_id, _, evidence in shown for e in json.loads(evidence)}
    assert spans & mentions and {f"#m-{n}-{s}-{e}" for n, s, e in spans & mentions} <= set(page.evidence)


def test_redacted_report_holds_no_note_text(coded_run, tmp_path):
    db, _ = coded_run
    out = write_report(db, tmp_path / "redacted.html", redact=True)
    text = html.unescape(out.path.read_text(encoding="utf-8"))
    assert out.redacted and "--redact" in Page(out.path.read_text(encoding="utf-8")).texts["patient-data"]
    mentions = query(db, "select note_id, start_char, end_char from clin_linker_mention")
    checked = 0
    for note_id, note in _notes().items():
        for piece in _between_mentions(note, [(s, e) for n, s, e in mentions if n == note_id]):
            if len(piece) >= 20:  # long enough not to be words a card or a code name also holds
                assert piece not in text, (note_id, piece)
                checked += 1
    assert checked > 30
    assert len(Page(out.path.read_text(encoding="utf-8")).marks) == len(query(db, "select 1 from clin_linker_mention"))


def test_report_is_self_contained_and_within_its_budget(report):
    path, page = report
    # the budget is for DEFAULT_MAX_NOTES notes: the sample run's notes must fit their share of it
    shown = len(Page(page).ids & {f"note-{i}" for i in _notes()})
    assert path.stat().st_size <= SIZE_BUDGET * shown / DEFAULT_MAX_NOTES
    # nothing to fetch: no linked file, no external script, style or image (url(#id) is an SVG clip path in the page)
    assert not re.search(r"<(link|img|iframe|object|embed)\b|<script[^>]*\bsrc=|@import|url\((?!#)", page)
    # the only absolute URLs are SVG's XML namespaces, which nothing fetches
    assert {u for u in re.findall(r"https?://[^\s\"'<>)]+", page) if not u.startswith("http://www.w3.org/")} == set()
    assert "Content-Security-Policy" in page and "default-src 'none'" in page


def test_report_command_picks_notes_and_says_when_text_is_gone(coded_run, tmp_path, capsys):
    db, _ = coded_run
    note_id = sorted(_notes())[3]
    assert main(["report", "--db", str(db), "--notes", str(note_id), "--out", str(tmp_path / "one.html")]) == 0
    assert str(tmp_path / "one.html") in capsys.readouterr().out
    page = Page((tmp_path / "one.html").read_text(encoding="utf-8"))
    assert {m["id"].split("-")[1] for m in page.marks} == {str(note_id)}
    moved = tmp_path / "moved.duckdb"
    shutil.copy(db, moved)
    con = duckdb.connect(str(moved))
    con.execute("update clin_linker_run set note_files = ?", [json.dumps([str(tmp_path / "gone.jsonl")])])
    con.close()
    out = write_report(moved, tmp_path / "gone.html", [note_id])
    assert out.without_text == 1
    text = out.path.read_text(encoding="utf-8")
    assert "gone.jsonl cannot be read here" in text and _notes()[note_id][:60] not in html.unescape(text)


def test_report_of_a_database_without_a_run_is_a_clear_error(tmp_path, capsys):
    db = tmp_path / "empty.duckdb"
    duckdb.connect(str(db)).close()
    assert main(["report", "--db", str(db)]) == 2
    assert "clin_linker_run is missing" in capsys.readouterr().err


def test_readme_command_1_ends_with_the_report_and_no_report_writes_none(default_index, tmp_path):
    """README command 1's run as written (sample notes, default index), in a fresh folder."""
    env = {**os.environ, "CLIN_LINKER_THREADS": os.environ.get("CLIN_LINKER_THREADS", "1")}
    script = Path(sys.executable).with_name("clin-linker")  # the console script README command 1 calls
    cli = [str(script), "run"] if script.exists() else [sys.executable, "-m", "clin_linker.beam_jobs.cli", "run"]
    done = subprocess.run([*cli, "--out", "demo.duckdb"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1].startswith("report            demo.duckdb.report.html")
    assert Page((tmp_path / "demo.duckdb.report.html").read_text(encoding="utf-8")).stat("notes_read") == len(_notes())
    notes = tmp_path / "one.jsonl"
    notes.write_text(json.dumps({"note_id": 1, "note_text": "Denies chest pain."}) + "\n")
    done = subprocess.run([*cli, "--notes", str(notes), "--out", "quiet.duckdb", "--no-report"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    assert not (tmp_path / "quiet.duckdb.report.html").exists() and "report " not in done.stdout


def test_readme_shows_the_report():
    """README stays a front door (at most 150 lines) and shows the per-note view with a link to the report's page."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 150
    assert "docs/report.md" in readme and "docs/report-note-view.png" in readme
    assert (ROOT / "docs" / "report-note-view.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _chromium(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                           "--disable-background-networking", "--disable-component-update", "--disable-sync",
                           f"--user-data-dir={profile}", *args], capture_output=True, text=True, timeout=180)


def test_the_browser_shows_summary_plots_and_a_highlighted_mention(chromium, coded_run, report, tmp_path):
    db, _ = coded_run
    path, _ = report
    done = _chromium(chromium, tmp_path / "profile", "--virtual-time-budget=5000", "--dump-dom", path.as_uri())
    assert done.returncode == 0 and "<body" in done.stdout, done.stderr[-2000:]
    dom = Page(done.stdout)
    notes_read, mentions = query(db, "select notes_read, (select count(*) from note_nlp) from clin_linker_run")[0]
    assert dom.stat("notes_read") == notes_read and dom.stat("mentions") == mentions
    assert dom.figures_with_svg == {"plot-scores", "plot-domains", "plot-codes"}
    note_id, start, end, code, text = query(
        db, "select m.note_id, m.start_char, m.end_char, m.concept_key, n.lexical_variant from clin_linker_mention m "
            "join note_nlp n using (note_nlp_id) where m.concept_key is not null order by m.note_id, m.start_char "
            "limit 1")[0]
    mark = next(m for m in dom.marks if m["id"] == f"m-{note_id}-{start}-{end}")
    assert mark["data-code"] == code and mark["text"] == text and mark["style"].startswith("background")
    assert code in done.stdout[done.stdout.index(f'id="m-{note_id}-{start}-{end}"'):][:3000]  # its label and card
    shown = len(_notes())
    assert dom.texts["filter-count"] == f"{shown} of {shown} notes shown"  # the page's script ran
    assert "Patient data" in dom.texts["patient-data"]
    # a screenshot of the per-note view, one mention's card open (#anchor): a real, not blank, image
    shot = tmp_path / "note.png"
    done = _chromium(chromium, tmp_path / "profile", "--hide-scrollbars", "--window-size=1280,4000",
                     f"--screenshot={shot}", f"{path.as_uri()}#m-{note_id}-{start}-{end}")
    assert done.returncode == 0 and shot.exists(), done.stderr[-2000:]
    from PIL import Image

    with Image.open(shot) as image:
        assert image.size == (1280, 4000) and len(image.convert("RGB").getcolors(1 << 24)) > 50
