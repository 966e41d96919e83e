"""Trust: the visible AI-generated label and machine-readable provenance."""

from swapline.trust.label import LabelSettings, LabelStamp, has_label, label_score
from swapline.trust.provenance import PROVENANCE_KEY, provenance_record

__all__ = ["PROVENANCE_KEY", "LabelSettings", "LabelStamp", "has_label", "label_score", "provenance_record"]
