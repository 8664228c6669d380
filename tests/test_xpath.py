"""The Windows event-query XPath subset: parsed by hand-written rules, evaluated three-valued."""
from __future__ import annotations

import pytest

from logsource_checker.collectors.xpath import Event, XPathError, evaluate, parse

SEC = "Security"
P = "Microsoft-Windows-Security-Auditing"

# (query, event id, provider, expected verdict, a word the reason must hold when None)
CASES = [
    ("*", 4624, P, True, None),
    ("*[System[(EventID=4624 or EventID=4625)]]", 4625, P, True, None),
    ("*[System[(EventID=4624 or EventID=4625)]]", 4634, P, False, None),
    ("*[System[(EventID >=4624 and EventID <=4626)]]", 4626, P, True, None),
    ("*[System[(EventID >=4624 and EventID <=4626)]]", 4627, P, False, None),
    ("*[System[EventID!=5156]]", 5156, P, False, None),
    ("*[System[EventID!=5156]]", 4624, P, True, None),
    ("*[System[EventID < 10]]", 9, P, True, None),
    ("*[System[EventID > 10]]", 9, P, False, None),
    ("*[System[not(EventID=4624)]]", 4624, P, False, None),
    ("*[System[not(EventID=4624)]]", 4625, P, True, None),
    ("*[System/EventID=4688]", 4688, P, True, None),
    ("Event/System[EventID=4688]", 4688, P, True, None),
    ("*[System[(EventID='5156')]]", 5156, P, True, None),
    ("*[System[Provider[@Name='Microsoft-Windows-Security-Auditing'] and EventID=4624]]", 4624, P, True, None),
    ("*[System[Provider[@Name='Service Control Manager'] and EventID=4624]]", 4624, P, False, None),
    ("*[System[Provider[@Name='Service Control Manager']]]", 7045, None, None, "provider"),
    # what we do not know of an event: Level, Keywords, event data, unknown functions
    ("*[System[Level=4]]", 4624, P, None, "Level"),
    ("*[System[Level=4 and EventID=7045]]", 4624, P, False, None),      # EventID decides: false and unknown
    ("*[System[Level=4 or EventID=4624]]", 4624, P, True, None),        # true or unknown
    ("*[System[band(Keywords,9007199254740992)]]", 4624, P, None, "keywords"),
    ("*[EventData[Data[@Name='TargetUserName']='admin']]", 4624, P, None, "event data"),
    ("*[System[EventID=4624]] and *[EventData[Data[1]='x']]", 4625, P, False, None),
    ("*[System[EventID=4624]] and *[EventData[Data[1]='x']]", 4624, P, None, "event data"),
    ("*[System[contains(EventID, '46')]]", 4624, P, None, "subset"),
    # time windows are ignored with a note
    ("*[System[EventID=4624 and TimeCreated[timediff(@SystemTime) <= 86400000]]]", 4624, P, True, None),
    ("*[System[EventID=4624 and TimeCreated[timediff(@SystemTime) <= 86400000]]]", 4625, P, False, None),
    ("*[System[(EventID=0x1210)]]", 4624, P, True, None),
    ("Event/System/EventID=4624", 4624, P, True, None),
    ("*[System[Provider[@Name='x' or @Name='Microsoft-Windows-Security-Auditing']]]", 4624, P, True, None),
    ("*[System[not(EventID=1) and not(EventID=2) or EventID=1]]", 1, P, True, None),   # and binds tighter
    ("*[System[not(EventID=1) and (not(EventID=2) or EventID=1)]]", 1, P, False, None),
    ("*[System[Security[@UserID='S-1-5-18']]]", 4624, P, None, "Security"),
    ("*[System[EventID=4624]]", None, P, None, "EventID is not known"),
]


@pytest.mark.parametrize("query, event_id, provider, expected, word", CASES)
def test_evaluate(query, event_id, provider, expected, word):
    result = evaluate(parse(query), Event(SEC, event_id, provider))
    assert result.value is expected, (query, result)
    if word is not None:
        assert any(word.casefold() in note.casefold() for note in result.notes), result.notes


def test_time_window_is_noted():
    result = evaluate(parse("*[System[TimeCreated[timediff(@SystemTime) <= 3600000]]]"), Event(SEC, 1, P))
    assert result.value is True and any("ignored" in n for n in result.notes)


@pytest.mark.parametrize("query", [
    "", "*[", "*[System[EventID=]]", "*[System[EventID=4624]", "*[System[(EventID=4624]]", "EventID == 4624",
    "*[System[EventID=4624]] | *", "*[System[EventID=1 = 2]]", "not(1, 2)", "*[System[EventID=$x]]",
    "(" * 200 + "1" + ")" * 200,
])
def test_outside_the_subset_is_an_error(query):
    with pytest.raises(XPathError):
        parse(query)


def test_overlong_query_is_refused():
    with pytest.raises(XPathError):
        parse("*[System[" + " or ".join(f"EventID={i}" for i in range(20000)) + "]]")
