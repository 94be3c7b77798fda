"""The compensation schedule format (issue 14.5): threshold, step-up counted from the start or the
threshold, a flat amount per event, per-consumer rate when many are affected, rules per sub-type —
checked against a plain reference by hypothesis, plus the schedule's validation."""

from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from urja.servicedesk import compensation as comp


def reference(rule, units, many):
    """Unit by unit: the obvious reading of the rule."""
    threshold = rule.get("threshold", 0)
    if units <= 0 or units <= threshold:
        return D(0)
    rate = D(str(rule["many_rate"] if many and "many_rate" in rule else rule["rate"]))
    if rule["basis"] == "flat":
        total = rate
    else:
        origin = threshold if rule.get("count_from", "start") == "threshold" else 0
        total = D(0)
        for k in range(origin + 1, units + 1):  # the k-th unit of delay, counted from the origin
            n = k - origin
            if "higher_rate" in rule and n > rule["higher_after"]:
                higher = D(str(rule["higher_rate"]))
                if many and "many_rate" in rule:
                    higher = higher * rate / D(str(rule["rate"]))
                total += higher
            else:
                total += rate
        total += D(str(rule.get("per_event", 0)))
    cap = rule.get("cap_lt", rule.get("cap"))
    if cap is not None and total > cap:
        total = D(str(cap))
    return total.quantize(D("0.01"))


def _with_higher(r):
    out = {k: v for k, v in r.items() if k != "higher"}
    if "higher" in r:
        out["higher_after"], out["higher_rate"] = r["higher"]
    return out


rules = st.fixed_dictionaries(
    {"basis": st.sampled_from(["per_hour", "per_day", "flat"]), "rate": st.integers(1, 500)},
    optional={
        "threshold": st.integers(0, 10),
        "count_from": st.sampled_from(["start", "threshold"]),
        "per_event": st.integers(0, 300),
        "many_rate": st.integers(1, 500),
        "cap_lt": st.integers(50, 5000),
        "higher": st.tuples(st.integers(1, 12), st.integers(1, 900)),
    },
).map(_with_higher)


@given(rule=rules, units=st.integers(-3, 80), many=st.booleans())
def test_compute_equals_the_unit_by_unit_reading(rule, units, many):
    comp.validate_rule("x", rule)
    assert comp.compute(rule, units_late=units, many_affected=many).amount == reference(rule, units, many)


def test_threshold_and_its_origin():
    rule = {"basis": "per_hour", "rate": 50, "threshold": 2, "higher_after": 3, "higher_rate": 100}
    assert comp.compute(rule, units_late=2).amount == 0  # nothing below the threshold
    assert comp.compute(rule, units_late=5).amount == D("350.00")  # 3 × 50 + 2 × 100, counted from the start
    rule["count_from"] = "threshold"
    assert comp.compute(rule, units_late=5).amount == D("150.00")  # 3 units past the threshold, all at 50
    assert comp.compute({**rule, "per_event": 200}, units_late=5).amount == D("350.00")


def test_rules_per_subtype_and_what_the_award_was_for():
    rule = {"basis": "per_hour", "rate": 50, "subtypes": {"dt_failure": {"basis": "per_day", "rate": 300}}}
    comp.validate_rule("supply", rule)
    dt = comp.for_subtype(rule, "dt_failure")
    assert (dt["basis"], dt["rate"]) == ("per_day", 300) and "subtypes" not in dt
    assert comp.for_subtype(rule, "fuse_call")["rate"] == 50
    assert comp.describe(comp.compute(dt, units_late=2)) == "2 days of delay"
    assert comp.describe(comp.compute(rule, units_late=1)) == "1 hour of delay"
    assert comp.describe(comp.compute({"basis": "flat", "rate": 500}, units_late=1)) == "the event"


@pytest.mark.parametrize(
    "bad",
    [
        {"basis": "per_hour", "rate": 50, "count_from": "midnight"},
        {"basis": "per_hour", "rate": 50, "threshold": -1},
        {"basis": "per_hour", "rate": 50, "subtypes": {"dt": {"basis": "weekly"}}},
        {"basis": "per_hour", "rate": 50, "subtypes": ["dt"]},
    ],
)
def test_bad_schedules_are_refused(bad):
    with pytest.raises(ValueError):
        comp.validate_rule("x", bad)
