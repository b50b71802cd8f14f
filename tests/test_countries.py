import pytest

from commands.countries import (
    Country,
    UnknownCountry,
    all_countries,
    country_by_code,
    resolve_country,
    suggest_countries,
)


@pytest.mark.parametrize(
    ("text", "code", "name"),
    [
        ("PL", "PL", "Poland"),
        ("pl", "PL", "Poland"),
        ("POL", "PL", "Poland"),
        ("pol", "PL", "Poland"),
        ("poland", "PL", "Poland"),
        ("  Poland  ", "PL", "Poland"),
        ("Republic of Poland", "PL", "Poland"),
        ("united   kingdom", "GB", "United Kingdom"),
        ("United\tKingdom", "GB", "United Kingdom"),
        ("United Kingdom of Great Britain and Northern Ireland", "GB", "United Kingdom"),
        ("turkiye", "TR", "Türkiye"),
        ("Türkiye", "TR", "Türkiye"),
        ("turkey", "TR", "Türkiye"),
        ("cote d'ivoire", "CI", "Côte d'Ivoire"),
        ("Côte d’Ivoire", "CI", "Côte d'Ivoire"),
        ("ivory coast", "CI", "Côte d'Ivoire"),
        ("curacao", "CW", "Curaçao"),
        ("aland islands", "AX", "Åland Islands"),
        ("Korea, Republic of", "KR", "South Korea"),
    ],
)
def test_resolves_codes_and_names(text: str, code: str, name: str) -> None:
    country = resolve_country(text)
    assert (country.code, country.name) == (code, name)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("uk", "GB"),
        ("U.K.", "GB"),
        ("great britain", "GB"),
        ("britain", "GB"),
        ("england", "GB"),
        ("scotland", "GB"),
        ("wales", "GB"),
        ("northern ireland", "GB"),
        ("usa", "US"),
        ("US", "US"),
        ("U.S.A.", "US"),
        ("america", "US"),
        ("united states of america", "US"),
        ("czech republic", "CZ"),
        ("czechia", "CZ"),
        ("russia", "RU"),
        ("russian federation", "RU"),
        ("south korea", "KR"),
        ("korea", "KR"),
        ("north korea", "KP"),
        ("holland", "NL"),
        ("the netherlands", "NL"),
        ("vietnam", "VN"),
        ("viet nam", "VN"),
        ("iran", "IR"),
        ("syria", "SY"),
        ("laos", "LA"),
        ("moldova", "MD"),
        ("bolivia", "BO"),
        ("venezuela", "VE"),
        ("tanzania", "TZ"),
        ("taiwan", "TW"),
        ("macedonia", "MK"),
        ("north macedonia", "MK"),
        ("vatican", "VA"),
        ("holy see", "VA"),
        ("uae", "AE"),
        ("drc", "CD"),
        ("dr congo", "CD"),
        ("DR Congo", "CD"),
        ("congo-brazzaville", "CG"),
        ("congo brazzaville", "CG"),
        ("swaziland", "SZ"),
        ("eswatini", "SZ"),
        ("burma", "MM"),
        ("myanmar", "MM"),
        ("cape verde", "CV"),
        ("cabo verde", "CV"),
        ("east timor", "TL"),
        ("timor-leste", "TL"),
        ("bosnia & herzegovina", "BA"),
        ("st lucia", "LC"),
        ("St. Kitts and Nevis", "KN"),
        ("ST", "ST"),
        ("the gambia", "GM"),
        ("guinea bissau", "GW"),
    ],
)
def test_resolves_aliases(text: str, code: str) -> None:
    assert resolve_country(text).code == code


@pytest.mark.parametrize("text", ["kosovo", "Kosovo", "XK", "xkx"])
def test_kosovo_is_supported_with_user_assigned_code(text: str) -> None:
    assert resolve_country(text) == Country(code="XK", alpha3="XKX", name="Kosovo")


@pytest.mark.parametrize(("text", "code"), [("🇵🇱", "PL"), (":flag-fr:", "FR"), (":gb:", "GB")])
def test_resolves_flags_as_typed_in_slack(text: str, code: str) -> None:
    assert resolve_country(text).code == code


@pytest.mark.parametrize(
    ("code", "name"),
    [
        ("KR", "South Korea"),
        ("KP", "North Korea"),
        ("IR", "Iran"),
        ("TW", "Taiwan"),
        ("VE", "Venezuela"),
        ("BO", "Bolivia"),
        ("MD", "Moldova"),
        ("TZ", "Tanzania"),
        ("RU", "Russia"),
        ("VN", "Vietnam"),
        ("LA", "Laos"),
        ("SY", "Syria"),
        ("VA", "Vatican City"),
        ("CD", "DR Congo"),
        ("FM", "Micronesia"),
        ("PS", "Palestine"),
        ("GB", "United Kingdom"),
        ("US", "United States"),
        ("CZ", "Czechia"),
        ("TR", "Türkiye"),
        ("NL", "Netherlands"),
    ],
)
def test_display_names_are_short_common_names(code: str, name: str) -> None:
    assert country_by_code(code).name == name


def test_no_display_name_has_iso_inversions_or_qualifiers() -> None:
    awkward = [c.name for c in all_countries() if "," in c.name or "(" in c.name]
    assert awkward == []


def test_every_country_resolves_from_its_own_name_and_codes() -> None:
    for country in all_countries():
        assert resolve_country(country.name) == country
        assert resolve_country(country.code) == country
        assert resolve_country(country.alpha3) == country


def test_all_countries_sorted_by_name_ignoring_accents() -> None:
    names = [c.name for c in all_countries()]
    assert names.index("Afghanistan") < names.index("Åland Islands") < names.index("Albania")
    assert names.index("Tunisia") < names.index("Türkiye") < names.index("Turkmenistan")
    assert len(names) == len(set(names)) >= 249


@pytest.mark.parametrize(("code", "expected"), [("pl", "PL"), ("POL", "PL"), (" gbr ", "GB"), ("XK", "XK")])
def test_country_by_code(code: str, expected: str) -> None:
    assert country_by_code(code).code == expected


@pytest.mark.parametrize("code", ["", "ZZ", "UK", "poland", "ZZZ"])
def test_country_by_code_unknown(code: str) -> None:
    with pytest.raises(KeyError):
        country_by_code(code)


@pytest.mark.parametrize(
    ("typo", "first"),
    [
        ("polnad", "Poland"),
        ("germny", "Germany"),
        ("frnace", "France"),
        ("untied kingdom", "United Kingdom"),
        ("spian", "Spain"),
        ("switz", "Switzerland"),
        ("Untied States", "United States"),
        ("itlay", "Italy"),
    ],
)
def test_typo_raises_with_closest_suggestion_first(typo: str, first: str) -> None:
    with pytest.raises(UnknownCountry) as excinfo:
        resolve_country(typo)
    error = excinfo.value
    assert error.query == typo
    assert error.suggestions[0].name == first
    assert 1 <= len(error.suggestions) <= 3
    assert f"Did you mean {first}" in str(error)


def test_suggestions_are_deduplicated_by_country() -> None:
    # "britian" is close to several GB aliases ("britain", "great britain"): GB must appear once.
    codes = [c.code for c in suggest_countries("britian", limit=10)]
    assert codes[0] == "GB"
    assert len(codes) == len(set(codes))


def test_suggest_respects_limit() -> None:
    assert len(suggest_countries("s", limit=3)) <= 3
    assert len(suggest_countries("sw", limit=2)) == 2
    assert suggest_countries("poland", limit=0) == []


@pytest.mark.parametrize("text", ["", "   ", "123", "!!!", "--", "42 42", "…"])
def test_empty_or_junk_input_is_rejected_without_suggestions(text: str) -> None:
    with pytest.raises(UnknownCountry) as excinfo:
        resolve_country(text)
    assert excinfo.value.suggestions == ()


def test_empty_input_message() -> None:
    with pytest.raises(UnknownCountry, match="No country given"):
        resolve_country("")


@pytest.mark.parametrize("text", ["zz", "xyzzy", "qqqqqq"])
def test_unknown_without_close_match(text: str) -> None:
    with pytest.raises(UnknownCountry, match="Unknown country") as excinfo:
        resolve_country(text)
    assert excinfo.value.suggestions == ()


def test_unknown_country_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="polnad"):
        resolve_country("polnad")
