"""The report's plots, drawn with matplotlib and inlined as SVG.

Why matplotlib: it is the longest-kept Python plotting library and writes a finished static SVG, so the report
needs no JavaScript plotting runtime (plotly, bokeh or vega-lite would inline 1-4 MB of JS or fetch it from a CDN),
opens offline, prints, and stays small: text is kept as SVG text (``svg.fonttype = none``), about 20-40 KB a plot.
Output is deterministic (a fixed hash salt per plot, no metadata), so two reports of the same run have the same
plots.
Only the object API is used (``Figure``, never pyplot): no GUI backend, no global state.
"""
from __future__ import annotations

import io
from collections.abc import Callable

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from .data import SCORE_BIN, ReportData
from .style import LINKED_COLOR, NIL_COLOR, domain_color

_SIZE = (6.4, 3.4)  # inches; the SVG scales to its column of the page
#: No <metadata> block: no date (same run, same file) and no RDF links to purl.org / creativecommons.org.
_NO_METADATA = {"Date": None, "Creator": None, "Format": None, "Type": None}
_STYLE = {"svg.fonttype": "none", "font.size": 11, "axes.spines.top": False, "axes.spines.right": False}


def _svg(name: str, draw: Callable[[Axes], None]) -> str:
    """Draw one plot and return it as an inline ``<svg>`` element (no XML prolog; ids salted by ``name``, so two
    plots on the page never share one)."""
    with matplotlib.rc_context({**_STYLE, "svg.hashsalt": name}):
        fig = Figure(figsize=_SIZE)
        draw(fig.add_subplot())
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", metadata=_NO_METADATA, bbox_inches="tight")
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def score_distribution(data: ReportData) -> str:
    """Linked and NIL mentions by linker score, stacked, with the NIL threshold marked: where the rule cuts."""
    linked = {start: n for start, is_linked, n in data.score_bins if is_linked}
    nil = {start: n for start, is_linked, n in data.score_bins if not is_linked}
    starts = sorted(set(linked) | set(nil))

    def draw(ax: Axes) -> None:
        ax.bar(starts, [linked.get(s, 0) for s in starts], width=SCORE_BIN, align="edge", color=LINKED_COLOR,
               label="linked")
        ax.bar(starts, [nil.get(s, 0) for s in starts], width=SCORE_BIN, align="edge", color=NIL_COLOR,
               bottom=[linked.get(s, 0) for s in starts], label="NIL")
        threshold = data.run.nil_threshold
        if threshold is not None:
            ax.axvline(threshold, color="#c0392b", linestyle="--", linewidth=1.2,
                       label=f"NIL threshold {threshold:g}")
        ax.set_xlabel("linker score of the best candidate")
        ax.set_ylabel("mentions")
        ax.legend(frameon=False)

    return _svg("score_distribution", draw)


def mentions_per_domain(data: ReportData) -> str:
    """Mentions per domain label, linked part in the domain's colour and NIL part hatched grey."""
    rows = list(reversed(data.mentions_by_label))  # barh draws bottom-up: the largest domain on top
    labels = [label for label, _, _ in rows]
    linked = [n_linked for _, _, n_linked in rows]

    def draw(ax: Axes) -> None:
        ax.barh(labels, linked, color=[domain_color(label) for label in labels], edgecolor="#555")
        ax.barh(labels, [n - n_linked for _, n, n_linked in rows], left=linked, color="white", edgecolor=NIL_COLOR,
                hatch="///")
        ax.set_xlabel("mentions")
        ax.legend(handles=[Patch(facecolor="white", edgecolor="#555", label="linked (domain colour)"),
                           Patch(facecolor="white", edgecolor=NIL_COLOR, hatch="///", label="NIL")],
                  frameon=False, loc="lower right")

    return _svg("mentions_per_domain", draw)


def codes_per_note(data: ReportData) -> str:
    """How many distinct linked codes each coded note got (notes without any at 0)."""
    def draw(ax: Axes) -> None:
        ax.bar([c for c, _ in data.codes_per_note], [n for _, n in data.codes_per_note], width=0.8,
               color=LINKED_COLOR)
        ax.set_xlabel("distinct linked codes in the note")
        ax.set_ylabel("notes")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.yaxis.get_major_locator().set_params(integer=True)

    return _svg("codes_per_note", draw)


#: (id, title, drawing function) of every plot, in page order.
PLOTS = (
    ("plot-scores", "Score distribution of linked and NIL mentions", score_distribution),
    ("plot-domains", "Mentions per domain", mentions_per_domain),
    ("plot-codes", "Codes per note", codes_per_note),
)
