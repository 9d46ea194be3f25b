"""Rule resolution and validation (compliance/rules.py): pure functions, checked against properties."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from compliance import presets, rules
from compliance.regions import COUNTRIES, EU_COUNTRIES

RULES = st.fixed_dictionaries({}, optional={
    "cancel_button": st.sampled_from(rules.CANCEL_BUTTONS),
    "offers": st.sampled_from(rules.OFFER_BUDGETS),
    "receipt": st.booleans(),
})
COUNTRY = st.sampled_from(sorted(COUNTRIES))
REGION = st.builds(lambda country, tail: f"{country}-{tail}", COUNTRY,
                   st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=3))


@st.composite
def sections(draw):  # noqa: ANN001, ANN201
    codes = draw(st.lists(st.one_of(COUNTRY, REGION), max_size=6, unique=True))
    section = {"regions": {code: draw(RULES) for code in codes}}
    if draw(st.booleans()):
        section["default"] = draw(RULES)
    return section


@given(sections(), REGION)
def test_a_region_overrides_its_country_which_overrides_the_default(section, region):
    country = region.split("-")[0]
    resolved = rules.resolve(section, country=country, region=region)
    for name, built_in in rules.BUILT_IN.items():
        expected = built_in
        for layer in (section.get("default", {}), section["regions"].get(country, {}),
                      section["regions"].get(region, {})):
            expected = layer.get(name, expected)
        assert resolved[name] == expected
    assert resolved["region"] == region


@given(sections(), st.one_of(st.just(""), COUNTRY))
def test_resolved_rules_always_carry_every_rule_and_only_them(section, country):
    resolved = rules.resolve(section, country=country)
    assert set(resolved) == {"region", *rules.BUILT_IN}
    assert resolved["region"] == country
    assert isinstance(resolved["receipt"], bool)


@given(sections())
def test_every_generated_section_is_valid(section):
    assert rules.section_problems(section) == []


def test_a_region_alone_implies_its_country():
    section = {"regions": {"US": {"offers": "one"}, "US-MN": {"receipt": False}}}
    assert rules.resolve(section, region="US-MN") == {"region": "US-MN", "cancel_button": "every_step",
                                                      "offers": "one", "receipt": False}


def test_without_a_section_the_built_in_rules_apply_and_a_receipt_is_on():
    assert rules.resolve(None) == {"region": "", "cancel_button": "every_step", "offers": "any", "receipt": True}


def test_the_source_of_a_rule_is_documentation_not_a_rule():
    section = {"default": {"offers": "one", "source": "counsel's memo of 2026-10-01"}}
    assert rules.section_problems(section) == []
    assert "source" not in rules.resolve(section)


def test_problems_name_their_path_and_what_is_allowed():
    problems = rules.section_problems({
        "default": {"cancel_button": "sometimes", "offers": 1, "receipt": "yes", "colour": "red"},
        "regions": {"XX": {}, "us-ca": {}, "US-CA": {"offers": "few"}, "DE": []},
        "extra": True,
    })
    assert problems == [
        "compliance.extra: unknown field (the fields: default, regions)",
        "compliance.default.cancel_button: must be one of every_step, last_step",
        "compliance.default.offers: must be one of any, one, none",
        "compliance.default.receipt: must be true or false",
        "compliance.default.colour: unknown rule (the rules: cancel_button, offers, receipt; and source)",
        "compliance.regions.XX: not a country or region code: use an ISO 3166-1 alpha-2 country code, "
        "such as US or DE",
        "compliance.regions.us-ca: not a country or region code: use an ISO 3166-2 subdivision code, such as US-CA",
        "compliance.regions.US-CA.offers: must be one of any, one, none",
        "compliance.regions.DE: must be an object",
    ]


def test_a_section_that_is_not_an_object_is_refused():
    assert rules.section_problems([]) == ["compliance: must be an object"]
    assert rules.section_problems({"regions": []}) == ["compliance.regions: must be an object"]


def test_offers_are_cut_to_the_rules_budget():
    assert rules.limit_offers([1, 2, 3], {"offers": "any"}) == [1, 2, 3]
    assert rules.limit_offers([1, 2, 3], {"offers": "one"}) == [1]
    assert rules.limit_offers([1, 2, 3], {"offers": "none"}) == []
    assert rules.limit_offers([1, 2], {}) == [1, 2]  # a session from before rules: as it always was


def test_the_presets_are_valid_and_follow_their_laws():
    section = presets.section()
    assert rules.section_problems(section) == []
    assert rules.resolve(section, region="US-MN")["offers"] == "none"
    assert rules.resolve(section, region="US-CA")["offers"] == "one"
    assert rules.resolve(section, country="DE")["offers"] == "one"  # §312k BGB over the EU's button
    assert rules.resolve(section, country="FR") == {"region": "FR", "cancel_button": "every_step",
                                                    "offers": "any", "receipt": True}
    assert set(EU_COUNTRIES) <= set(section["regions"]) and len(EU_COUNTRIES) == 27
    assert all(entry["source"] for entry in section["regions"].values())
    assert "§17602" in section["regions"]["US-CA"]["source"] and "§325G" in section["regions"]["US-MN"]["source"]
    assert "2023/2673" in section["regions"]["FR"]["source"] and "§312k" in section["regions"]["DE"]["source"]
