"""The experiment report: per flow with variants, each arm's customers (accounts, by their last outcome),
their deflect rate (compared as soon as decisions come in) and save rate (compared once watch windows
close: only days up to selectors.closed_through), each against the control (reports.stats).

The rule, shown with every verdict: each arm's sample size is fixed in advance
(stats.sample_size_per_arm for EXPERIMENT_DETECT_POINTS); the verdict is taken on the data of the first
day every arm has reached it, and does not change with later looks. A variant wins when its
Holm-adjusted p-value is under ALPHA and its lift is positive (the largest such lift, if several); the
control wins when every variant is significantly worse. The winner is called on the save rate: the
deflect rate's verdict is shown as an early signal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.conf import settings
from django.db.models import F, Sum

from flows.models import Variant

from . import stats
from .models import DailyStat
from .selectors import ReportFilter, closed_through

SRM_NOTE = ("The split of customers differs from the weights more than chance allows (chi-square p = {p:.2g}): "
            "check the assignment (or a change of weights during the test) before trusting these numbers.")


@dataclass
class Arm:
    variant_id: int
    code: str
    name: str
    is_control: bool
    weight: int
    is_active: bool
    sessions: int = 0
    decisions: int = 0            # accounts decided, every day
    deflected: int = 0
    closed_decisions: int = 0     # accounts decided on days whose windows have closed
    saved: int = 0
    # Per day, cumulative later: (day, count, decisions) of each metric.
    daily: dict[str, dict[date, list[int]]] = field(default_factory=lambda: {"deflected": {}, "saved": {}})
    deflected_result: stats.Comparison | None = None
    saved_result: stats.Comparison | None = None


def _rule(needed: int, comparisons: int) -> str:
    return (f"Each arm needs {needed:,} decisions (set in advance to detect {settings.EXPERIMENT_DETECT_POINTS} points "
            f"at {stats.POWER:.0%} power, {stats.ALPHA:.0%} false-positive rate Holm-corrected over {comparisons} "
            f"variant{'s' if comparisons != 1 else ''}); the verdict is taken on the first day every arm has them. "
            f"A variant wins when its Holm-adjusted p < {stats.ALPHA} with a positive lift; the control wins when "
            f"every variant is significantly worse.")


def _verdict(arms: list[Arm], control: Arm, metric: str, needed: int) -> dict[str, Any]:
    """The metric's fixed-horizon verdict: winner code (or None), the day it was taken, and how many more
    decisions per arm are needed before it can be."""
    days = sorted({day for arm in arms for day in arm.daily[metric]})
    totals = {arm.code: [0, 0] for arm in arms}
    horizon = None
    for day in days:
        for arm in arms:
            count, decisions = arm.daily[metric].get(day, (0, 0))
            totals[arm.code][0] += count
            totals[arm.code][1] += decisions
        if all(totals[arm.code][1] >= needed for arm in arms):
            horizon = day
            break
    fewest = min(totals[arm.code][1] for arm in arms) if arms else 0
    if horizon is None:
        return {"winner": None, "decided_on": None, "more_per_arm": max(needed - fewest, 0)}
    variants = [arm for arm in arms if arm is not control]
    c_count, c_decisions = totals[control.code]
    results = stats.with_holm([stats.compare(count=totals[v.code][0], decisions=totals[v.code][1],
                                             control_count=c_count, control_decisions=c_decisions, beat=False)
                                for v in variants])
    better = [(r.lift, v.code) for v, r in zip(variants, results, strict=True)
              if r.significant and r.lift is not None and r.lift > 0]
    winner = max(better)[1] if better else None
    if winner is None and results and all(r.significant and (r.lift or 0) < 0 for r in results):
        winner = control.code
    return {"winner": winner, "decided_on": horizon, "more_per_arm": 0}


def _metric(arms: list[Arm], control: Arm | None, metric: str, totals: dict[str, tuple[int, int]]) -> None:
    """Each arm's comparison of the metric on all the period's data (shown), Holm-adjusted."""
    for arm in arms:
        count, decisions = totals[arm.code]
        arm_result: stats.Comparison
        if control is None or arm is control:
            arm_result = stats.Comparison(count=count, decisions=decisions, rate=stats.rate(count, decisions))
        else:
            arm_result = stats.compare(count=count, decisions=decisions, control_count=totals[control.code][0],
                                       control_decisions=totals[control.code][1])
        setattr(arm, f"{metric}_result", arm_result)
    if control is not None:
        variants = [arm for arm in arms if arm is not control]
        adjusted = stats.with_holm([getattr(arm, f"{metric}_result") for arm in variants])
        for arm, result in zip(variants, adjusted, strict=True):
            setattr(arm, f"{metric}_result", result)


def experiments(report: ReportFilter) -> list[dict[str, Any]]:
    """Per flow with variants in the period, its arms and verdicts (see the module's docstring)."""
    closed = closed_through()
    rows = (report.rollups(DailyStat).filter(variant__isnull=False)
            .values("flow_id", "flow__name", "variant_id", "day")
            .annotate(sessions=Sum("sessions"),
                      decided=Sum(F("deflected_nevermind") + F("deflected_offer") + F("canceled_accounts")),
                      deflected=Sum(F("deflected_nevermind") + F("deflected_offer")),
                      saved=Sum(F("saved_nevermind") + F("saved_offer")))
            .order_by())
    rows = list(rows)
    variants = {v.pk: v for v in Variant.objects.filter(pk__in={row["variant_id"] for row in rows})}
    flows: dict[int, dict[str, Any]] = {}
    arms: dict[int, Arm] = {}
    for row in rows:
        variant = variants[row["variant_id"]]
        flow = flows.setdefault(row["flow_id"], {"flow": row["flow__name"], "arms": []})
        arm = arms.get(variant.pk)
        if arm is None:
            arm = arms[variant.pk] = Arm(variant_id=variant.pk, code=variant.code, name=variant.name,
                                         is_control=variant.is_control, weight=variant.weight,
                                         is_active=variant.is_active)
            flow["arms"].append(arm)
        arm.sessions += row["sessions"] or 0
        arm.decisions += row["decided"] or 0
        arm.deflected += row["deflected"] or 0
        arm.daily["deflected"][row["day"]] = [row["deflected"] or 0, row["decided"] or 0]
        if row["day"] <= closed:
            arm.closed_decisions += row["decided"] or 0
            arm.saved += row["saved"] or 0
            arm.daily["saved"][row["day"]] = [row["saved"] or 0, row["decided"] or 0]
    result = []
    for flow in sorted(flows.values(), key=lambda f: f["flow"]):
        flow_arms: list[Arm] = sorted(flow["arms"], key=lambda a: (not a.is_control, a.code))
        control = next((arm for arm in flow_arms if arm.is_control), None)
        _metric(flow_arms, control, "deflected", {a.code: (a.deflected, a.decisions) for a in flow_arms})
        _metric(flow_arms, control, "saved", {a.code: (a.saved, a.closed_decisions) for a in flow_arms})
        comparisons = max(len(flow_arms) - 1, 1)
        needed = stats.sample_size_per_arm(points=settings.EXPERIMENT_DETECT_POINTS / 100, comparisons=comparisons)
        verdicts = ({metric: _verdict(flow_arms, control, metric, needed) for metric in ("deflected", "saved")}
                    if control is not None else {})
        srm_p = stats.chi_square_p_value([a.decisions for a in flow_arms], [a.weight for a in flow_arms])
        total = sum(a.decisions for a in flow_arms)
        weights = sum(a.weight for a in flow_arms)
        result.append({
            "flow": flow["flow"], "control": control, "arms": flow_arms, "needed": needed,
            "rule": _rule(needed, comparisons),
            "verdicts": verdicts, "winner": verdicts["saved"]["winner"] if verdicts else None,
            "split": [{"code": a.code, "weight_share": a.weight / weights if weights else None,
                       "share": a.decisions / total if total else None} for a in flow_arms],
            "srm_p": srm_p, "srm_warning": SRM_NOTE.format(p=srm_p) if srm_p is not None and srm_p < stats.SRM_ALPHA
            else "",
        })
    return result


def summary(experiment: dict[str, Any]) -> dict[str, Any]:
    """An experiment as report_summary prints it (DESIGN §8): rates and lifts as fractions."""
    def metric(result: stats.Comparison | None) -> dict[str, Any]:
        assert result is not None  # experiments() compares every arm
        return {"count": result.count, "rate": result.rate, "lift": result.lift, "interval": result.interval,
                "p_beat_control": result.p_beat_control}

    return {"flow": experiment["flow"], "winner": experiment["winner"],
            "variants": [{"code": arm.code, "is_control": arm.is_control, "decisions": arm.decisions,
                          "deflected": metric(arm.deflected_result), "saved": metric(arm.saved_result)}
                         for arm in experiment["arms"]]}

