"""Publicity windows, the calendar they count in, and the policy that sets them."""

from __future__ import annotations

import itertools
from datetime import date, timedelta

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from registry.domain.policy import (
    DEFAULT_POLICY,
    Policy,
    add_months,
    period_end,
)
from registry.domain.publicity import (
    Grade,
    PenaltyType,
    PublicityWindow,
    is_in_publication,
    most_severe,
    publicity_window,
    repair_allowed_from,
)
from registry.errors import InvalidInput

P = DEFAULT_POLICY
D = date(2024, 1, 15)
FINE = [PenaltyType.fine]
dates = st.dates(min_value=date(1990, 1, 1), max_value=date(2200, 12, 31))
grades = st.sampled_from(list(Grade))
penalty_types = st.lists(st.sampled_from(list(PenaltyType)), min_size=1, max_size=4)


def day(s: str) -> date:
    return date.fromisoformat(s)


# --- calendar ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        ("2024-01-15", 1, "2024-02-15"),
        ("2024-01-31", 1, "2024-02-29"),  # leap year: clamps to Feb 29
        ("2023-01-31", 1, "2023-02-28"),  # common year: clamps to Feb 28
        ("2100-01-31", 1, "2100-02-28"),  # century, not a leap year
        ("2000-01-31", 1, "2000-02-29"),  # 400-year rule: a leap year
        ("2024-03-31", 1, "2024-04-30"),
        ("2024-08-31", 3, "2024-11-30"),
        ("2024-02-29", 12, "2025-02-28"),
        ("2024-02-29", 48, "2028-02-29"),
        ("2024-11-30", 3, "2025-02-28"),
        ("2024-12-15", 1, "2025-01-15"),
        ("2024-05-31", 0, "2024-05-31"),
        ("2024-03-31", -1, "2024-02-29"),
    ],
)
def test_add_months_clamps_to_month_end(start: str, months: int, expected: str) -> None:
    """Adding months keeps the day number, or takes the month's last day when it has none."""
    assert add_months(day(start), months) == day(expected)


def test_period_end_is_the_day_after_the_last_counted_day() -> None:
    """A period excludes its start day (民法典 art. 201); its end is exclusive."""
    assert period_end(day("2024-01-15"), 3) == day("2024-04-16")
    assert period_end(day("2024-01-31"), 1) == day("2024-03-01")  # last day Feb 29
    assert period_end(day("2023-01-31"), 1) == day("2023-03-01")  # last day Feb 28
    assert period_end(day("2024-01-15"), 0) == day("2024-01-15")  # empty period


@given(dates, st.integers(min_value=0, max_value=120))
def test_add_months_properties(start: date, months: int) -> None:
    """The result lies in the right month and never past the start's day number."""
    result = add_months(start, months)
    assert (result.year * 12 + result.month) - (start.year * 12 + start.month) == months
    assert result.day <= start.day
    if result.day < start.day:
        assert (result + timedelta(days=1)).day == 1  # clamped to the month's last day


# --- policy --------------------------------------------------------------------


def test_policy_defaults_match_the_domain() -> None:
    """Defaults are the current rules of DOMAIN.md."""
    assert P.window_months("minor") == (0, 3)
    assert P.window_months("general") == (3, 12)
    assert P.window_months("serious") == (12, 36)
    assert P.publish_minor is True
    assert P.period_start == "decision_date"
    assert P.blacklist_objection_window_days == 10
    assert (P.objection_answer_days, P.objection_decide_days) == (10, 3)
    assert (P.mask_keep_head, P.mask_keep_tail, P.mask_char) == (6, 4, "*")
    assert "subject_consent" in P.bureau_query_purposes


def test_policy_accepts_the_older_serious_minimum() -> None:
    """The older 6-month serious minimum is a valid setting."""
    assert Policy(serious_min_months=6).window_months("serious") == (6, 36)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"general_min_months": 13}, "general_min_months=13 exceeds general_max_months=12"),
        ({"serious_min_months": 40}, "serious_min_months=40 exceeds serious_max_months=36"),
        ({"minor_max_months": 13}, "minor_max_months=13 exceeds general_max_months"),
        ({"serious_min_months": 2}, "general_min_months=3 exceeds serious_min_months=2"),
        ({"minor_min_months": -1}, "minor_min_months=-1 must be a whole number"),
        ({"objection_answer_days": True}, "objection_answer_days=True"),
        (
            {
                "serious_max_months": 0,
                "serious_min_months": 0,
                "general_max_months": 0,
                "general_min_months": 0,
                "minor_max_months": 0,
            },
            "serious_max_months must be > 0",
        ),
        ({"period_start": "listing_date"}, "period_start='listing_date'"),
        ({"bureau_query_purposes": ()}, "at least one purpose"),
        ({"bureau_query_purposes": ("a", "a")}, "duplicates"),
        ({"bureau_query_purposes": ("a", " b")}, "empty or padded"),
        ({"mask_char": "**"}, "one character"),
        ({"mask_char": ""}, "one character"),
        ({"mask_keep_tail": -4}, "mask_keep_tail=-4"),
    ],
)
def test_policy_rejects_inconsistent_settings(kwargs: dict[str, object], message: str) -> None:
    """A policy is validated when built; the message names the setting."""
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        Policy(**kwargs)  # type: ignore[arg-type]  # deliberately wrong values


def test_policy_window_months_rejects_unknown_grade() -> None:
    """Grade names are checked."""
    with pytest.raises(ValueError, match="unknown grade 'grave'"):
        P.window_months("grave")


def test_policy_is_frozen() -> None:
    """Settings cannot change after validation."""
    with pytest.raises(AttributeError):
        P.serious_min_months = 6  # type: ignore[misc]  # the point of the test


def test_policy_from_env_reads_prefixed_variables() -> None:
    """REGISTRY_POLICY_* variables override defaults; others and empty ones are ignored."""
    policy = Policy.from_env(
        {
            "REGISTRY_POLICY_SERIOUS_MIN_MONTHS": "6",
            "REGISTRY_POLICY_PUBLISH_MINOR": "false",
            "REGISTRY_POLICY_PERIOD_START": "publication_date",
            "REGISTRY_POLICY_BUREAU_QUERY_PURPOSES": "credit_assessment, subject_consent,",
            "REGISTRY_POLICY_MASK_CHAR": "",
            "UNRELATED": "1",
        }
    )
    assert policy.serious_min_months == 6
    assert policy.publish_minor is False
    assert policy.period_start == "publication_date"
    assert policy.bureau_query_purposes == ("credit_assessment", "subject_consent")
    assert policy.mask_char == "*"
    assert Policy.from_env({}) == DEFAULT_POLICY


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"REGISTRY_POLICY_SERIOUS_MIN_MONTHS": "twelve"}, "REGISTRY_POLICY_SERIOUS_MIN_MONTHS"),
        ({"REGISTRY_POLICY_PERIOD_START": "today"}, "REGISTRY_POLICY_PERIOD_START"),
        ({"REGISTRY_POLICY_GENERAL_MIN_MONTHS": "24"}, "general_min_months=24"),
    ],
)
def test_policy_from_env_rejects_bad_values(env: dict[str, str], message: str) -> None:
    """A bad variable fails at start with its name or the setting in the message."""
    with pytest.raises(ValueError, match=message):
        Policy.from_env(env)


# --- publicity windows ---------------------------------------------------------


@pytest.mark.parametrize(
    ("grade", "earliest", "latest"),
    [
        (Grade.minor, "2024-01-15", "2024-04-16"),
        (Grade.general, "2024-04-16", "2025-01-16"),
        (Grade.serious, "2025-01-16", "2027-01-16"),
    ],
)
def test_window_per_grade(grade: Grade, earliest: str, latest: str) -> None:
    """Each grade gets its policy window from the decision date."""
    w = publicity_window(grade, FINE, D, P)
    assert w.published
    assert (w.start, w.earliest_end, w.latest_end) == (D, day(earliest), day(latest))
    assert w.last_day_shown == day(latest) - timedelta(days=1)
    assert grade.value in w.reason


def test_window_month_end_clamping_and_leap_years() -> None:
    """A decision on Jan 31 or Feb 29 ends on the clamped month end."""
    w = publicity_window(Grade.minor, FINE, day("2023-11-30"), P)
    assert w.last_day_shown == day("2024-02-29")  # Nov 30 + 3 months, leap February
    w = publicity_window(Grade.minor, FINE, day("2022-11-30"), P)
    assert w.last_day_shown == day("2023-02-28")
    w = publicity_window(Grade.general, FINE, day("2024-02-29"), P)
    assert w.last_day_shown == day("2025-02-28")
    assert w.earliest_end == day("2024-05-30")  # last minimum day May 29
    w = publicity_window(Grade.serious, FINE, day("2024-02-29"), P)
    assert w.last_day_shown == day("2027-02-28")
    w = publicity_window(Grade.serious, FINE, day("2025-02-28"), P)
    assert w.last_day_shown == day("2028-02-28")


def test_warning_only_is_not_published() -> None:
    """A decision whose only penalty is a warning has an empty, unpublished window."""
    for penalty in ([PenaltyType.warning], [PenaltyType.warning, PenaltyType.warning]):
        w = publicity_window(Grade.serious, penalty, D, P)
        assert not w.published
        assert w.start == w.earliest_end == w.latest_end == D
        assert w.last_day_shown is None
        assert "warning" in w.reason
        assert not is_in_publication(w, D)


def test_warning_beside_other_penalties_is_ignored() -> None:
    """A warning together with a fine publishes like the fine alone."""
    alone = publicity_window(Grade.general, FINE, D, P)
    both = publicity_window(Grade.general, [PenaltyType.warning, PenaltyType.fine], D, P)
    assert (both.start, both.earliest_end, both.latest_end) == (
        alone.start,
        alone.earliest_end,
        alone.latest_end,
    )
    assert both.published


def test_several_penalty_types_take_the_longest_window() -> None:
    """Per-type grades raise the window to the most severe grade, never lower it."""
    types = [PenaltyType.fine, PenaltyType.licence_revocation]
    w = publicity_window(
        Grade.general, types, D, P, type_grades={PenaltyType.licence_revocation: Grade.serious}
    )
    assert w.latest_end == publicity_window(Grade.serious, FINE, D, P).latest_end
    assert "most severe" in w.reason
    assert "longest period" in w.reason
    lowered = publicity_window(
        Grade.serious, types, D, P, type_grades={PenaltyType.fine: Grade.minor}
    )
    assert lowered.latest_end == publicity_window(Grade.serious, FINE, D, P).latest_end


def test_grade_of_a_warning_does_not_count() -> None:
    """A warning's per-type grade is ignored with the warning."""
    w = publicity_window(
        Grade.minor,
        [PenaltyType.warning, PenaltyType.fine],
        D,
        P,
        type_grades={PenaltyType.warning: Grade.serious},
    )
    assert w.latest_end == publicity_window(Grade.minor, FINE, D, P).latest_end


def test_several_types_without_type_grades_use_the_decision_grade() -> None:
    """Without per-type grades the decision's grade fixes the window."""
    types = list(PenaltyType)
    assert publicity_window(Grade.general, types, D, P).latest_end == day("2025-01-16")


def test_minor_withheld_when_policy_says_so() -> None:
    """publish_minor=False keeps minor records off publication, but not graver ones."""
    policy = Policy(publish_minor=False)
    w = publicity_window(Grade.minor, FINE, D, policy)
    assert not w.published
    assert "minor" in w.reason
    assert publicity_window(Grade.general, FINE, D, policy).published
    raised = publicity_window(
        Grade.minor, FINE, D, policy, type_grades={PenaltyType.fine: Grade.general}
    )
    assert raised.published


def test_period_counted_from_publication_when_configured() -> None:
    """With period_start=publication_date the window starts at publication."""
    policy = Policy(period_start="publication_date")
    published = day("2024-02-01")
    w = publicity_window(Grade.general, FINE, D, policy, published)
    assert w.start == published
    assert w.latest_end == day("2025-02-02")
    assert "publication" in w.reason
    with pytest.raises(InvalidInput) as info:
        publicity_window(Grade.general, FINE, D, policy)
    assert info.value.field == "publication_date"


def test_period_counted_from_decision_ignores_publication_date() -> None:
    """With the default start, a later publication date does not move the window."""
    w = publicity_window(Grade.general, FINE, D, P, day("2024-02-01"))
    assert w.start == D


def test_publication_before_decision_is_invalid() -> None:
    """A decision cannot be published before it was made."""
    with pytest.raises(InvalidInput) as info:
        publicity_window(Grade.general, FINE, D, P, D - timedelta(days=1))
    assert info.value.field == "publication_date"


def test_publication_on_decision_day_is_valid() -> None:
    """Publishing on the decision day itself is fine."""
    policy = Policy(period_start="publication_date")
    assert publicity_window(Grade.general, FINE, D, policy, D).start == D


def test_no_penalty_types_is_invalid() -> None:
    """At least one penalty type is required, and the accepted values are listed."""
    with pytest.raises(InvalidInput) as info:
        publicity_window(Grade.general, [], D, P)
    assert info.value.field == "penalty_types"
    assert info.value.accepted is not None
    assert "licence_revocation" in info.value.accepted


def test_unknown_penalty_type_or_grade_is_invalid() -> None:
    """Raw strings are accepted when they name a member, refused otherwise."""
    w = publicity_window("general", ["fine"], D, P)  # type: ignore[arg-type, list-item]  # raw input
    assert w.published
    with pytest.raises(InvalidInput) as info:
        publicity_window(Grade.general, ["parking"], D, P)  # type: ignore[list-item]  # raw input
    assert info.value.field == "penalty_types"
    with pytest.raises(InvalidInput) as info:
        publicity_window("grave", FINE, D, P)  # type: ignore[arg-type]  # raw input
    assert info.value.field == "grade"
    with pytest.raises(InvalidInput) as info:
        publicity_window(Grade.minor, FINE, D, P, type_grades={PenaltyType.fine: "x"})  # type: ignore[dict-item]  # raw input
    assert info.value.field == "type_grades[fine]"


# --- is_in_publication at its edges ---------------------------------------------

WINDOW = publicity_window(Grade.minor, FINE, D, P)  # shown 2024-01-15 .. 2024-04-15


@pytest.mark.parametrize(
    ("today", "shown"),
    [
        ("2024-01-14", False),  # day before start
        ("2024-01-15", True),  # start day
        ("2024-01-16", True),
        ("2024-04-14", True),
        ("2024-04-15", True),  # last day shown: Jan 15 + 3 months
        ("2024-04-16", False),  # latest_end: publication stopped by itself
        ("2024-04-17", False),
    ],
)
def test_is_in_publication_edges(today: str, shown: bool) -> None:
    """Shown on start <= today < latest_end."""
    assert is_in_publication(WINDOW, day(today)) is shown


def test_revoked_decision_is_never_shown() -> None:
    """Revocation takes the record down at once, well within the 5 working days."""
    assert not is_in_publication(WINDOW, D, revoked=True)
    assert not is_in_publication(WINDOW, day("2024-03-01"), revoked=True)


@pytest.mark.parametrize(
    ("today", "shown"),
    [("2024-02-29", True), ("2024-03-01", False), ("2024-03-02", False)],
)
def test_repair_ends_publication_on_its_date(today: str, shown: bool) -> None:
    """An approved repair ends publication on the approval day (exclusive)."""
    assert is_in_publication(WINDOW, day(today), repaired_on=day("2024-03-01")) is shown


def test_repair_allowed_from_is_the_earliest_end() -> None:
    """Repair may be applied for from the end of the minimum period."""
    w = publicity_window(Grade.general, FINE, D, P)
    assert repair_allowed_from(w) == w.earliest_end == day("2024-04-16")
    assert repair_allowed_from(publicity_window(Grade.minor, FINE, D, P)) == D


def test_grade_rank_not_string_order() -> None:
    """Severity is rank order; StrEnum's < would be alphabetical."""
    assert [g.rank for g in (Grade.minor, Grade.general, Grade.serious)] == [0, 1, 2]
    assert most_severe([Grade.general, Grade.minor]) is Grade.general
    assert most_severe([Grade.minor, Grade.serious, Grade.general]) is Grade.serious
    with pytest.raises(ValueError, match="at least one"):
        most_severe([])


def test_window_is_a_struct_that_round_trips() -> None:
    """Windows serialise with msgspec for the shell to store."""
    w = publicity_window(Grade.general, FINE, D, P)
    assert msgspec.json.decode(msgspec.json.encode(w), type=PublicityWindow) == w


# --- properties ------------------------------------------------------------------


policies = st.builds(
    lambda mn, gn, sn, mx, gx, sx, start: Policy(
        minor_min_months=mn,
        general_min_months=mn + gn,
        serious_min_months=mn + gn + sn,
        minor_max_months=max(mx, mn),
        general_max_months=max(mx, mn) + gx + gn,
        serious_max_months=max(mx, mn) + gx + gn + sx + sn + 1,
        period_start=start,
    ),
    *[st.integers(min_value=0, max_value=24)] * 6,
    st.sampled_from(["decision_date", "publication_date"]),
)


@given(grades, penalty_types, dates, policies, st.integers(min_value=0, max_value=400))
def test_window_bounds_are_ordered(
    grade: Grade, types: list[PenaltyType], decided: date, policy: Policy, delay: int
) -> None:
    """start <= earliest_end <= latest_end, and unpublished windows are empty."""
    w = publicity_window(grade, types, decided, policy, decided + timedelta(days=delay))
    assert w.start <= w.earliest_end <= w.latest_end
    if not w.published:
        assert w.start == w.latest_end
    elif policy.window_months(grade.value)[1] > 0:
        assert w.start < w.latest_end


@given(dates, penalty_types, policies)
def test_window_is_monotone_in_grade(
    decided: date, types: list[PenaltyType], policy: Policy
) -> None:
    """A more serious grade never gets an earlier earliest_end or latest_end."""
    windows = [publicity_window(g, types, decided, policy, decided) for g in Grade]
    for lesser, graver in itertools.pairwise(windows):
        assert lesser.earliest_end <= graver.earliest_end
        assert lesser.latest_end <= graver.latest_end


@given(grades, dates, st.dictionaries(st.sampled_from(list(PenaltyType)), grades))
def test_type_grades_only_lengthen(
    grade: Grade, decided: date, type_grades: dict[PenaltyType, Grade]
) -> None:
    """Grading penalty types can lengthen a window, never shorten it."""
    types = [PenaltyType.fine, PenaltyType.confiscation]
    plain = publicity_window(grade, types, decided, P)
    graded = publicity_window(grade, types, decided, P, type_grades=type_grades)
    assert plain.latest_end <= graded.latest_end
    assert plain.earliest_end <= graded.earliest_end


@given(grades, dates, st.integers(min_value=-40, max_value=1200))
def test_shown_exactly_inside_the_window(grade: Grade, decided: date, offset: int) -> None:
    """is_in_publication agrees with the half-open window on every day."""
    w = publicity_window(grade, FINE, decided, P)
    today = decided + timedelta(days=offset)
    assert is_in_publication(w, today) == (w.start <= today < w.latest_end)
