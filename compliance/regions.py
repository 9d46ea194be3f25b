"""Where a customer is: ISO 3166-1 alpha-2 countries and ISO 3166-2 subdivisions, as the snippet sends them
(`account.country` "DE", `account.region` "US-CA")."""

from __future__ import annotations

import re

# ISO 3166-1 alpha-2, officially assigned codes.
COUNTRIES = frozenset("""
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ
CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO
FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE
JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO
MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW
PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM
TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW
""".split())

# The 27 member states of the European Union (where Directive 2023/2673's withdrawal button applies).
EU_COUNTRIES = ("AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IT",
                "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK")

# ISO 3166-2: the country's alpha-2 code, a hyphen, and up to three letters or digits ("US-CA", "FR-75C").
SUBDIVISION = re.compile(r"^([A-Z]{2})-([A-Z0-9]{1,3})$")


def country_problem(code: str) -> str | None:
    """Why `code` is not an ISO 3166-1 alpha-2 country (upper case), or None."""
    if code not in COUNTRIES:
        return "must be an ISO 3166-1 alpha-2 country code, such as US or DE"
    return None


def region_problem(code: str) -> str | None:
    """Why `code` is not an ISO 3166-2 subdivision of a known country (upper case), or None."""
    match = SUBDIVISION.fullmatch(code)
    if match is None or match.group(1) not in COUNTRIES:
        return "must be an ISO 3166-2 subdivision code, such as US-CA"
    return None


def country_of(region: str) -> str:
    """The country of an ISO 3166-2 code ("US" for "US-CA")."""
    return region.split("-", 1)[0]
