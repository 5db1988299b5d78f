"""The report's colours, shared by the highlighted note text and the plots so that a domain looks the same in both."""
from __future__ import annotations

#: Background of a mention per OMOP domain label (light, so black text stays readable; told apart by hue).
DOMAIN_COLORS = {
    "CONDITION": "#f7b2ad",
    "DRUG": "#a9d1f7",
    "PROCEDURE": "#b4e3a7",
    "MEASUREMENT": "#fde29b",
    "OBSERVATION": "#d9c2f0",
    "DEVICE": "#cfd8dc",
}
#: A label outside the six domains (a custom detector's).
OTHER_COLOR = "#e0e0e0"
#: Linked and NIL in the plots.
LINKED_COLOR = "#3b75af"
NIL_COLOR = "#a0a0a0"


def domain_color(label: str) -> str:
    return DOMAIN_COLORS.get(label.upper(), OTHER_COLOR)
