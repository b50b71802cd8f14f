import pytest

from commands.capabilities import (
    DEFAULT_CAPABILITIES,
    Capability,
    CapabilityVocabulary,
    default_vocabulary,
)


@pytest.mark.parametrize(
    ("token", "key"),
    [
        ("public-order", "public-order"),
        ("public_order", "public-order"),
        ("Public Order", "public-order"),
        ("patrol", "patrol"),
        ("dog-team", "dog-team"),
        ("dog team", "dog-team"),
        ("DOG_TEAM", "dog-team"),
        ("dog", "dog-team"),
        ("dogs", "dog-team"),
        ("K9", "dog-team"),
        ("canine", "dog-team"),
        ("sniffer dogs", "dog-team"),
        ("sniffer_dogs", "dog-team"),
        ("eod", "eod"),
        ("explosives", "eod"),
        ("bomb-disposal", "eod"),
        ("IED", "eod"),
        ("ct", "ct"),
        ("counter-terrorism", "ct"),
        ("counterterrorism", "ct"),
        ("SWAT", "ct"),
        ("mounted", "mounted"),
        ("horse", "mounted"),
        ("cavalry", "mounted"),
        ("medical", "medical"),
        ("medic", "medical"),
        ("medics", "medical"),
        ("liaison", "liaison"),
        ("lo", "liaison"),
        ("  patrol  ", "patrol"),
    ],
)
def test_default_vocabulary_resolves_keys_and_aliases(token: str, key: str) -> None:
    capability = default_vocabulary().resolve(token)
    assert capability is not None
    assert capability.key == key


@pytest.mark.parametrize("token", ["", "  ", "catering", "dog-teamz", "-", "dog--team-x"])
def test_resolve_unknown_returns_none(token: str) -> None:
    assert default_vocabulary().resolve(token) is None


def test_default_vocabulary_order_and_labels() -> None:
    vocabulary = default_vocabulary()
    assert [c.key for c in vocabulary] == [
        "public-order",
        "patrol",
        "dog-team",
        "eod",
        "ct",
        "mounted",
        "medical",
        "liaison",
    ]
    assert vocabulary.get("dog-team").label == "Dog teams (detection)"
    assert tuple(vocabulary) == DEFAULT_CAPABILITIES


@pytest.mark.parametrize(
    ("token", "first"),
    [
        ("dgo", "dog-team"),
        ("patorl", "patrol"),
        ("medcal", "medical"),
        ("mountd", "mounted"),
        ("explosive", "eod"),
        ("pub", "public-order"),
        ("counter", "ct"),
        ("liason", "liaison"),
    ],
)
def test_suggest_puts_closest_first(token: str, first: str) -> None:
    suggestions = default_vocabulary().suggest(token)
    assert suggestions[0].key == first
    assert len(suggestions) <= 3
    assert len({c.key for c in suggestions}) == len(suggestions)


@pytest.mark.parametrize("token", ["", "   ", "zzzzzz"])
def test_suggest_nothing(token: str) -> None:
    assert default_vocabulary().suggest(token) == []


def test_suggest_limit() -> None:
    assert len(default_vocabulary().suggest("m", limit=1)) == 1
    assert default_vocabulary().suggest("medic", limit=0) == []


def test_get_is_exact_key_only() -> None:
    vocabulary = default_vocabulary()
    assert vocabulary.get("eod").key == "eod"
    with pytest.raises(KeyError):
        vocabulary.get("explosives")
    with pytest.raises(KeyError):
        vocabulary.get("unknown")


@pytest.mark.parametrize(
    ("capabilities", "message"),
    [
        ([], "at least one capability"),
        ([Capability("Dog-Team", "Dogs")], "'Dog-Team'"),
        ([Capability("dog team", "Dogs")], "'dog team'"),
        ([Capability("-dog", "Dogs")], "'-dog'"),
        ([Capability("dog", "  ")], "non-empty label"),
        ([Capability("dog", "Dogs"), Capability("dog", "Hounds")], "defined twice"),
        (
            [Capability("dog", "Dogs", ("k9",)), Capability("k9", "K9")],
            "alias 'k9' of capability 'dog' clashes with capability 'k9'",
        ),
        (
            [Capability("dog", "Dogs", ("k9",)), Capability("hound", "Hounds", ("K9",))],
            "alias 'K9' of capability 'hound' clashes with capability 'dog'",
        ),
        ([Capability("dog", "Dogs", ("!!",))], "alias '!!'"),
    ],
)
def test_invalid_vocabulary(capabilities: list[Capability], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CapabilityVocabulary(capabilities)


def test_alias_equal_to_own_key_is_allowed() -> None:
    vocabulary = CapabilityVocabulary([Capability("dog", "Dogs", ("dog", "DOG"))])
    assert vocabulary.resolve("Dog") == vocabulary.get("dog")


def test_from_spec_parses_entries() -> None:
    vocabulary = CapabilityVocabulary.from_spec(
        "dog-team=Dog teams:k9|dogs;eod=Explosives (EOD):bomb|ied;patrol=Patrol"
    )
    assert list(vocabulary) == [
        Capability("dog-team", "Dog teams", ("k9", "dogs")),
        Capability("eod", "Explosives (EOD)", ("bomb", "ied")),
        Capability("patrol", "Patrol", ()),
    ]
    assert vocabulary.resolve("bomb") == vocabulary.get("eod")
    assert vocabulary.resolve("medic") is None


def test_from_spec_tolerates_whitespace_and_trailing_separators() -> None:
    vocabulary = CapabilityVocabulary.from_spec(" dog-team = Dog teams : k9 | dogs ; patrol=Patrol: ; ")
    assert list(vocabulary) == [
        Capability("dog-team", "Dog teams", ("k9", "dogs")),
        Capability("patrol", "Patrol", ()),
    ]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "spec is empty"),
        (" ; ; ", "spec is empty"),
        ("dog-team", r"entry 1 \('dog-team'\) has no '='"),
        ("patrol=Patrol;dogs", r"entry 2 \('dogs'\) has no '='"),
        ("=Dogs", "has no key"),
        ("dog-team=", "has no label"),
        ("dog-team=:k9", "has no label"),
        ("dog-team=Dogs:k9||dogs", "empty alias"),
        ("Dog Team=Dogs", "'Dog Team'"),
        ("dog=Dogs;dog=Hounds", "defined twice"),
        ("dog=Dogs:k9;hound=Hounds:k9", "alias 'k9' of capability 'hound' clashes with capability 'dog'"),
    ],
)
def test_from_spec_rejects_malformed_input(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CapabilityVocabulary.from_spec(spec)
