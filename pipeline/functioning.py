"""The ``clin_functioning`` spaCy component: functioning statements in rehabilitation and nursing notes (ICF d4).

Why: "ambulates 150 ft with a rolling walker, min assist" is what a therapy note is made of, and the NER model
(OMOP domain labels, trained on case reports and abstracts) does not find it. This component finds the activity
(walking, stairs, transfers, changing and keeping a body position, lifting and carrying, hand and arm use, wheelchair
mobility, transportation and driving: ICF chapter d4, mobility) with rules, labels the span OBSERVATION (the OMOP
domain of ICF codes) and reads three modifiers from the span's sentence into ``span._.functioning``:

- ``assistance``: the level of help, one of :data:`ASSISTANCE_LEVELS` (therapy shorthand included: "min A", "CGA",
  "SBA", "mod I");
- ``device``: the assistive device named ("rolling walker", "quad cane", "sliding board", ...);
- ``distance``: a distance ("150 ft", "1 km").

It finds spans only (``span._.detector`` :data:`DETECTOR`); which ICF category a span is goes to the linker, into
:data:`TARGET` with the user's ClaML in the index (WHO's ICF cannot ship): ``build_pipeline(functioning=True)`` and
``clin-linker run --functioning`` set the linker's ``detector_targets`` so, while the NER's mentions keep their own
targets. Negation and history go to ConText, as for every other mention. A span that overlaps a longer mention
already in ``doc.ents`` gives way to it.
"""
# no `from __future__ import annotations`: spaCy validates factory signatures at run time

import re
from typing import Dict, List, Optional, Tuple

from spacy.language import Language
from spacy.tokens import Doc
from spacy.util import filter_spans

from ..ontologies.icf_claml import VOCABULARY_ID as ICF_VOCABULARY_ID
from ..ontologies.store import ConceptStore
from . import extensions  # noqa: F401  (registers the shared Span extensions)

LABEL = "OBSERVATION"
#: ``span._.detector`` of the spans this component finds.
DETECTOR = "functioning"
#: Where functioning spans are coded: the vocabulary id of the ``icf-claml`` source.
TARGET = ICF_VOCABULARY_ID

#: Activities of ICF chapter d4, as rehabilitation and nursing notes write them. At a position the first
#: alternative that matches wins, so the longer forms come first ("stand pivot transfer" before "stand").
_ACTIVITIES = [
    # walking and moving around (d450-d469)
    r"(?:gait training|gait|ambulat\w*|walk(?!er)\w*)(?:\s+(?:in|on|over|around|to)\s+(?:the\s+)?[a-z]+(?:\s+[a-z]+)?)?"
    r"(?:\s+\d+(?:\.\d+)?\s*(?:ft|feet|foot|m|meters?|metres?|km|miles?|yards?|laps?|lengths?)\b)?",
    r"(?:household|community|hallway)\s+(?:ambulation|mobility|distances)",
    r"(?:stair\s+(?:negotiation|climbing)|stairs|step-ups?|curb\s+negotiation|obstacle\s+negotiation)",
    r"(?:climb\w*|ascend\w*|descend\w*|went up and down)(?:\s+\d+)?(?:\s+(?:stairs|steps|flights? of stairs))?",
    r"(?:negotiated|navigat\w*)\s+(?:the\s+)?[a-z]+(?:\s+[a-z]+)?",
    r"step(?:s|ped|ping)?\s+over(?:\s+\w+)?",
    r"(?:mov\w+ around|crawl\w*|creep\w*|run|runs|running|jog\w*|jump\w*|hop\w*|swim\w*|swam)",
    r"(?:wheelchair\s+(?:propulsion|mobility)|(?:self-)?propel\w*(?:\s+(?:a|his|her|the|manual|power))*\s+wheelchair"
    r"|drives?\s+(?:his|her|a)\s+power\s+wheelchair)",
    # changing and maintaining body position, transferring (d410-d429)
    r"gets?\s+in(?:to)?\s+and\s+out\s+of\s+(?:the\s+|a\s+)?(?:car|bed|tub|shower)",
    r"(?:(?:stand|squat)\s+pivot|sliding\s+board|slide\s+board|toilet|tub|shower|car|commode|chair|lateral"
    r"|bed\s+to\s+(?:chair|wheelchair|stretcher|commode))?\s*transfer(?:s|red|ring)?",
    r"(?:sit(?:ting)?[- ]to[- ](?:stand|supine)|supine[- ]to[- ]sit|sit-to-stand|chair\s+to\s+commode"
    r"|rose\s+to\s+standing|stood(?:\s+up)?|stand(?:s|ing)?(?:\s+up)?|came\s+to\s+sitting|sat(?:\s+up)?"
    r"|sit(?:s|ting)?(?:\s+up)?|lay\s+down|lying(?:\s+(?:down|prone|supine))?|returned\s+to\s+supine"
    r"|roll(?:s|ed|ing)?|scoot\w*|kneel\w*|squat\w*|bend\w*|bent(?:\s+down)?|shift\w*\s+weight|weight\s+shift\w*"
    r"|pivot\w*)(?:\s+(?:balance|tolerance))?",
    r"(?:static|dynamic)\s+(?:sitting|standing)(?:\s+balance)?",
    # carrying, moving and handling objects (d430-d449)
    r"(?:lift\w*|carr(?:y|ies|ied|ying)|set\s+(?:the\s+)?\w+\s+down|reach\w*|grasp\w*|grip\w*|pick\w*\s+up"
    r"|manipulat\w*|releas\w*|push\w*|pull\w*|throw\w*|catch\w*|kick\w*|button\w*|fasten\w*|leg\s+press"
    r"|turning\s+the\s+\w+)",
    # transportation and driving (d470-d489)
    r"(?:rides?|rode|riding|take|took|taking)\s+(?:the\s+|a\s+)?(?:bus|subway|train|bicycle|bike|horse)",
    r"(?:ride\s+as\s+a\s+passenger(?:\s+in\s+a\s+car)?|driv\w+|drove|driven|cycling)(?:\s+(?:with|a)\s+\w+(?:\s+\w+)?)?",
]
_ACTIVITY = re.compile(r"\b(?:" + "|".join(f"(?:{a})" for a in _ACTIVITIES) + r")\b", re.IGNORECASE)

#: Assistance levels, most specific first ("modified independent" before "independent").
ASSISTANCE_LEVELS: List[Tuple[str, str]] = [
    ("modified independent", r"modified\s+independen\w*|mod\s*(?-i:I)\b"),
    ("dependent", r"(?<!in)dependent|total\s+assist\w*"),
    ("maximal assist", r"max(?:imal)?\s*(?:assist\w*|(?-i:A)\b)|maxA\b"),
    ("moderate assist", r"mod(?:erate)?\s*(?:assist\w*|(?-i:A)\b)|modA\b"),
    ("minimal assist", r"min(?:imal)?\s*(?:assist\w*|(?-i:A)\b)|minA\b"),
    ("contact guard", r"contact\s+guard|CGA\b"),
    ("standby assist", r"stand-?by\s+assist\w*|SBA\b"),
    ("supervision", r"supervis\w*"),
    ("independent", r"independen\w*|without\s+(?:assistance|help|difficulty)"),
]
_ASSISTANCE = [(level, re.compile(r"\b(?:" + pattern + ")", re.IGNORECASE)) for level, pattern in ASSISTANCE_LEVELS]
_DEVICE = re.compile(
    r"\b(?:rolling|front-wheeled|four-wheeled|hemi-)?\s*walker\b|\brollator\b|\b(?:RW|FWW)\b|\b(?:quad|single point)\s+cane\b"
    r"|\bcane\b|\bcrutches\b|\b(?:manual|power)\s+wheelchair\b|\bwheelchair\b|\bgait belt\b|\bgrab bars?\b"
    r"|\bhandrails?\b|\bbed rails\b|\bparallel bars\b|\b(?:sliding|slide|transfer) board\b|\bHoyer lift\b"
    r"|\bslide sheet\b|\btub transfer bench\b|\breacher\b|\bhand controls\b|\bbuilt-up handles?\b|\bAFO\b",
    re.IGNORECASE)
#: Where case reports use the same words for something else: "carried out", "transferred to the ICU" (a transfer
#: to a place other than a seat or bed), the "ascending/descending" colon or aorta, "reached a BMI of", "release of" a
#: drug, a "driver" mutation, "stands out", "long-standing", "in the sitting position".
_NOT_AN_ACTIVITY = re.compile(
    r"\bcarr(?:y|ies|ied|ying)\s+out\b"
    r"|\btransfer(?:s|red|ring)?\s+(?:\w+\s+)?(?:to|from)\s+(?!(?:the\s+|a\s+|his\s+|her\s+)?(?:bed|chair|wheelchair"
    r"|commode|toilet|mat|tub|shower|car|stretcher|recliner|couch|edge|sitting|standing|supine))"
    r"|\b(?:ascending|descending)\s+(?:colon|aorta|aortic|thoracic|limb|tract|pathway|pelvis|oral|dose)"
    r"|\breach\w*\s+(?:a|an|the|normal|values?|levels?|\d)|\breleas\w*\s+(?:of|assay)|\bfrontal\s+release"
    r"|\bdriver\b|\b(?:stands?|stood)\s+out\b|\blong-standing\b|\b(?:sitting|standing|supine)\s+position\b",
    re.IGNORECASE)
#: "in sitting", "in standing": the position an activity is done in, not an activity of its own.
_POSITION_CONTEXT = re.compile(r"\bin\s+$", re.IGNORECASE)
_DISTANCE = re.compile(r"\b\d+(?:\.\d+)?\s*(?:ft|feet|foot|m|meters?|metres?|km|miles?|yards?)\b", re.IGNORECASE)


def modifiers(text: str, activity: Tuple[int, int] = (0, 0)) -> Dict[str, Optional[str]]:
    """Assistance level, device and distance named in ``text`` (a sentence); None where it names none.

    ``activity`` (offsets in ``text``): a device named outside the activity wins over one inside it ("bed to
    wheelchair transfers via Hoyer lift": the Hoyer lift), which is kept only when it is the only one
    ("propels his manual wheelchair").
    """
    assistance = next((level for level, pattern in _ASSISTANCE if pattern.search(text)), None)
    devices = sorted(_DEVICE.finditer(text), key=lambda m: activity[0] <= m.start() and m.end() <= activity[1])
    distance = _DISTANCE.search(text)
    return {"assistance": assistance, "device": " ".join(devices[0].group().split()) if devices else None,
            "distance": distance.group() if distance else None}


def check_functioning_target(store: ConceptStore) -> None:
    """Refuse, before any note is read, a store without :data:`TARGET`: nothing could code the spans found."""
    if not any(c.vocabulary_id == TARGET for c in store.concepts()):
        raise ValueError(
            f"--functioning codes functioning statements into {TARGET}, and the concept store at {store.directory} "
            f"holds no {TARGET} concept. WHO's ICF cannot ship with clin-linker: build a store with your ClaML file, "
            "e.g. `clin-linker vocab build --out store/ --source icd10cm --source hpo --source icf-claml=icf.xml` "
            "and `clin-linker index build --store store/ --out index/`, then pass --index index/")


class ClinFunctioning:
    def __init__(self, nlp: Language, name: str):
        self.name = name

    def __call__(self, doc: Doc) -> Doc:
        found = []
        devices = [(m.start(), m.end()) for m in _DEVICE.finditer(doc.text)]
        for match in _ACTIVITY.finditer(doc.text):
            start, end = match.span()
            start += len(match.group()) - len(match.group().lstrip())  # "\s*transfer" may start on the space
            if any(d_start <= start and end <= d_end for d_start, d_end in devices):
                continue  # "rolling" walker, "gait" belt, Hoyer "lift", "tub transfer" bench: part of a device
            if match.group().lower().startswith(("sitting", "standing")) and \
                    _POSITION_CONTEXT.search(doc.text[max(0, start - 4):start]):
                continue
            if any(m.start() <= start < m.end() for m in _NOT_AN_ACTIVITY.finditer(doc.text, max(0, start - 5), end + 40)):
                continue
            span = doc.char_span(start, end, label=LABEL, alignment_mode="expand")
            if span is None:
                continue
            span._.detector = DETECTOR
            sentence = span.sent if doc.has_annotation("SENT_START") else doc[:]
            offset = sentence.start_char
            span._.functioning = modifiers(sentence.text, (start - offset, end - offset))
            found.append(span)
        doc.ents = filter_spans(list(doc.ents) + found)
        return doc


@Language.factory("clin_functioning", assigns=["doc.ents", "span._.functioning", "span._.detector"])
def make_clin_functioning(nlp: Language, name: str) -> ClinFunctioning:
    """Rule-based finder of ICF d4 (mobility) activity statements; see the module docstring."""
    return ClinFunctioning(nlp, name)
