"""ReportData -> one self-contained HTML page: Jinja2 template, inline CSS/JS, inline SVG plots, and every note's
mentions highlighted by spaCy's displaCy entity renderer.

Why displaCy: it is the renderer spaCy users already read entities in; its ``manual`` mode takes character spans
(the run's NOTE_NLP offsets), escapes the note text, and its ``template`` option lets each mention carry the
review details (code, name, score, candidates, vocabulary, section, flags) in a card shown on hover or focus, and
classes that make negated, family, hypothetical and uncertain mentions look different. Everything put into the
page is escaped: displaCy escapes the text, Jinja2 autoescapes the rest, and the card markup escapes each value.
"""
from __future__ import annotations

from html import escape
from importlib import resources

from jinja2 import Environment
from markupsafe import Markup
from spacy import displacy

from .data import FLAGS, REJECTED_SHOWN, Mention, NoteView, ReportData
from .plots import PLOTS
from .style import DOMAIN_COLORS, OTHER_COLOR

#: One mention, as displaCy's ``template`` option (one line: the note text is shown with ``white-space: pre-wrap``,
#: so template whitespace would show). displaCy fills text, label and bg; the rest comes from each span's params.
_MENTION = ('<mark class="entity m{cls}" id="{anchor}" tabindex="0" data-code="{code}" data-flags="{flags}" '
            'style="background: {bg}">{text}<span class="lbl">{label}<b>{code}</b>{badges}</span>'
            '<span class="card" role="tooltip">{card}</span></mark>')
#: Class per flag (CSS draws them); NIL mentions get "nil".
_FLAG_CLASS = {"negated": "neg", "family": "fam", "hypothetical": "hyp", "uncertain": "unc", "historical": "hist"}
#: Flags that make NOTE_NLP.term_exists 'N' (pipeline.omop.assertion); without any, a mention is "affirmed".
_NOT_ASSERTED = ("negated", "family", "hypothetical", "uncertain")
#: Candidates a mention's card lists (a coding run keeps more per mention than a reader needs).
CARD_CANDIDATES = 5
#: Separator of the mentions when the note text is not shown (redacted or unavailable).
_GAP = " \u2026 "


def _score(value: float | None) -> str:
    return "none" if value is None else f"{value:.3f}"


def _card(m: Mention, nil_threshold: float | None) -> str:
    """The details shown on hover, focus or when linked to (``#anchor``), every value escaped; lines are ``<br>``
    apart (the card is most of the page's bytes)."""
    if m.concept_key:
        head = f"<b>{escape(m.concept_key)}</b> {escape(m.concept_name)}"
    else:
        below = f" (best score below the NIL threshold {nil_threshold:g})" if nil_threshold is not None else ""
        head = f"<b>NIL</b> no concept{below}"
    lines = [
        head,
        f"{escape(m.label)} · score {_score(m.score)} · vocabulary {escape(m.vocabulary_id or '-')}",
        f"section {escape(m.section or '(before any section)')} · flags {', '.join(m.flags) or 'none'} · "
        f"term_exists {escape(m.term_exists)}",
        "<b>top candidates</b>",
        *(f"{i}. {escape(c.concept_key)} {escape(c.concept_name)} · {c.score:.3f}"
          for i, c in enumerate(m.candidates[:CARD_CANDIDATES], start=1)),
    ]
    return "<br>".join(lines)


def _params(m: Mention, nil_threshold: float | None) -> dict[str, str]:
    flags = list(m.flags)
    if not any(f in m.flags for f in _NOT_ASSERTED):
        flags.append("affirmed")
    if m.concept_key is None:
        flags.append("nil")
    classes = [_FLAG_CLASS[f] for f in m.flags] + (["nil"] if m.concept_key is None else [])
    return {
        "cls": "".join(f" {c}" for c in classes),
        "anchor": m.anchor,
        "code": escape(m.concept_key or "NIL"),
        "flags": " ".join(flags),
        "badges": "".join(f'<i class="flag">{f}</i>' for f in m.flags),
        "card": _card(m, nil_threshold),
    }


def _shown_mentions(mentions: list[Mention]) -> list[Mention]:
    """Mentions that can be drawn in the text: overlaps (not made by one run, but possible in hand-edited data)
    keep the first."""
    kept: list[Mention] = []
    for m in sorted(mentions, key=lambda m: (m.start, m.end)):
        if not kept or m.start >= kept[-1].end:
            kept.append(m)
    return kept


def note_html(note: NoteView, nil_threshold: float | None) -> Markup:
    """The note's text with every mention highlighted; without text (redacted or unavailable) the mentions alone,
    in note order, separated by an ellipsis, so no word around them is shown."""
    mentions = _shown_mentions(note.mentions)
    if note.text is not None:
        # "\r" would become a line break of its own in the page; a space keeps every offset
        text = note.text.replace("\r", " ")
        ents = [{"start": m.start, "end": m.end, "label": m.label, "params": _params(m, nil_threshold)}
                for m in mentions]
    else:
        pieces, ents, offset = [], [], 0
        for m in mentions:
            pieces.append(m.text)
            ents.append({"start": offset, "end": offset + len(m.text), "label": m.label,
                         "params": _params(m, nil_threshold)})
            offset += len(m.text) + len(_GAP)
        text = _GAP.join(pieces)
    html = displacy.render({"text": text, "ents": ents}, style="ent", manual=True, jupyter=False, page=False,
                           options={"colors": DOMAIN_COLORS, "template": _MENTION})
    return Markup(html)


def _asset(name: str) -> Markup:
    return Markup(resources.files(__package__).joinpath("templates", name).read_text(encoding="utf-8"))


def render_report(data: ReportData, db: str) -> str:
    """The whole page as one HTML string (``db``: the database it reports on, named at the top)."""
    env = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
    template = env.from_string(resources.files(__package__).joinpath("templates", "report.html.j2")
                               .read_text(encoding="utf-8"))
    notes = [(note, note_html(note, data.run.nil_threshold)) for note in data.notes]
    codes = sorted({m.concept_key for note in data.notes for m in note.mentions if m.concept_key})
    return template.render(
        data=data, run=data.run, db=db, notes=notes, codes=codes, flags=FLAGS, rejected_shown=REJECTED_SHOWN,
        plots=[(plot_id, title, Markup(draw(data))) for plot_id, title, draw in PLOTS],
        colors=DOMAIN_COLORS, other_color=OTHER_COLOR, css=_asset("report.css"), js=_asset("report.js"),
    )
