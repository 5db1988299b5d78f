"""OMOP domain <-> span label: mention labels ARE the OMOP domains, upper-cased (DESIGN §1)."""
from __future__ import annotations

#: Labels the detectors emit, in OMOP domain spelling.
DOMAIN_LABELS = {
    "Condition": "CONDITION",
    "Drug": "DRUG",
    "Procedure": "PROCEDURE",
    "Measurement": "MEASUREMENT",
    "Observation": "OBSERVATION",
    "Device": "DEVICE",
}


def label_for_domain(domain_id: str) -> str:
    return DOMAIN_LABELS.get(domain_id, domain_id.upper().replace(" ", "_"))

