"""Rules that follow the cancellation laws in force in late 2026, to copy into a `compliance` section (the
admin shows them; docs/flow-format.md and the demo's flow document ship them). Each names the rule it
follows; they are a starting point for the business's own counsel, not legal advice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .regions import EU_COUNTRIES


@dataclass(frozen=True)
class Preset:
    name: str
    source: str
    regions: dict[str, dict[str, Any]]


# US federal: the FTC's 2024 click-to-cancel rule (16 CFR 425) was vacated by the 8th Circuit in July 2025
# and rulemaking restarted in 2026; ROSCA enforcement continues. The default designs for "as easy to cancel
# as to stay": a Cancel button on every step, and a receipt.
DEFAULT = {"cancel_button": "every_step", "offers": "any", "receipt": True}
DEFAULT_SOURCE = ("US federal: ROSCA (15 U.S.C. §8403); the FTC's click-to-cancel rule was vacated by the 8th "
                  "Circuit in July 2025. As easy to cancel as to stay.")

PRESETS = (
    Preset("California", "Automatic Renewal Law as amended by AB 2863, Bus. & Prof. Code §17602, in force "
           "1 July 2025: cancel online, one save offer only beside a Cancel control",
           {"US-CA": {"cancel_button": "every_step", "offers": "one", "receipt": True}}),
    Preset("Minnesota", "Minn. Stat. §325G.56-.62, in force 1 January 2025: no retention offers during "
           "cancellation unless the customer asks",
           {"US-MN": {"cancel_button": "every_step", "offers": "none", "receipt": True}}),
    Preset("European Union", "Directive (EU) 2023/2673 (Art. 11a of Directive 2011/83/EU), the withdrawal "
           "button, applying from 19 June 2026: a labelled button reachable at once, a confirmation, an "
           "acknowledgement on a durable medium",
           {code: {"cancel_button": "every_step", "receipt": True} for code in EU_COUNTRIES}),
    Preset("Germany", "§312k BGB, the cancellation button: reachable at once, a confirmation page, an "
           "acknowledgement on a durable medium with date and time",
           {"DE": {"cancel_button": "every_step", "offers": "one", "receipt": True}}),
)


def section(*presets: Preset) -> dict[str, Any]:
    """A `compliance` section with the default and the presets' regions (later presets win where they
    name the same region: Germany's rules over the EU's for DE)."""
    regions: dict[str, dict[str, Any]] = {}
    for preset in presets or PRESETS:
        regions.update({code: {**rules, "source": preset.source} for code, rules in preset.regions.items()})
    return {"default": {**DEFAULT, "source": DEFAULT_SOURCE}, "regions": regions}
