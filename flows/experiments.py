"""Splitting a Flow's customers between its variants.

A customer's place is a point in [0, 1) hashed from the flow and their account (internal_id, else
email, else subscription_id: DESIGN §8), so the split is deterministic and independent between flows.
The first visit records the variant (VariantAssignment); later visits read it back, so changing
weights, adding a variant or retiring one only affects customers not yet assigned (and those whose variant was retired).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from django.db import IntegrityError, transaction

from .models import Flow, Variant, VariantAssignment


def account_key(*, internal_id: str, email: str, subscription_id: str = "") -> str:
    """The customer, as experiments and reports count them: internal_id, else email, else subscription_id."""
    if internal_id:
        return f"id:{internal_id}"
    if email.strip():
        return f"email:{email.strip().lower()}"
    return f"sub:{subscription_id}"


def bucket(*, flow_id: int, key: str) -> float:
    digest = hashlib.sha256(f"{flow_id}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def pick(variants: Sequence[Variant], point: float) -> Variant | None:
    """The variant whose slice of [0, 1), in the given order and sized by weight, holds the point."""
    weighted = [variant for variant in variants if variant.weight > 0]
    total = sum(variant.weight for variant in weighted)
    if not total:
        return None
    edge = 0.0
    for variant in weighted:
        edge += variant.weight / total
        if point < edge:
            return variant
    return weighted[-1]


def variant_for(*, flow: Flow, key: str, variants: Sequence[Variant] | None = None) -> Variant | None:
    """The customer's variant of the flow, assigning one on the first visit; None without an experiment.

    `variants`: the flow's active variants by id when the caller has them (routing.published)."""
    if getattr(flow, "has_variants", True) is False:
        return None  # routing already knows (see routing._facts)
    if variants is None:
        variants = list(Variant.objects.filter(flow=flow, is_active=True).order_by("id"))
    if not variants:
        return None
    assignment = VariantAssignment.objects.filter(flow=flow, account_key=key).select_related("variant").first()
    if assignment is not None and assignment.variant.is_active:
        return assignment.variant
    chosen = pick(variants, bucket(flow_id=flow.pk, key=key))
    if chosen is None:
        return None
    if assignment is not None:
        # Their variant was retired: they move once, and stay where they land.
        VariantAssignment.objects.filter(pk=assignment.pk).update(variant=chosen)
        return chosen
    try:
        with transaction.atomic():
            VariantAssignment.objects.create(flow=flow, account_key=key, variant=chosen)
    except IntegrityError:
        # The same customer's other tab got there first: theirs stands.
        return VariantAssignment.objects.select_related("variant").get(flow=flow, account_key=key).variant
    return chosen
