"""The phase transition table and the parameter container (pure code)."""

from __future__ import annotations

import itertools

import pytest

from vo_service.errors import UsageFault
from vo_service.params import Params
from vo_service.uws.errors import InvalidPhaseChange
from vo_service.uws.model import (
    FINAL_PHASES,
    TRANSITIONS,
    Phase,
    check_transition,
    new_job_id,
)


def test_every_phase_has_a_row() -> None:
    assert set(TRANSITIONS) == set(Phase)


def test_final_phases_only_lead_to_archived() -> None:
    for phase in FINAL_PHASES:
        assert TRANSITIONS[phase] <= {Phase.ARCHIVED}


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (Phase.COMPLETED, Phase.QUEUED),
        (Phase.ERROR, Phase.EXECUTING),
        (Phase.ABORTED, Phase.QUEUED),
        (Phase.PENDING, Phase.EXECUTING),
        (Phase.PENDING, Phase.COMPLETED),
        (Phase.ARCHIVED, Phase.PENDING),
        (Phase.QUEUED, Phase.PENDING),
    ],
)
def test_illegal_transitions_raise(old: Phase, new: Phase) -> None:
    with pytest.raises(InvalidPhaseChange) as info:
        check_transition(old, new)
    assert info.value.status == 400
    assert str(old) in info.value.message


def test_normal_life_is_allowed() -> None:
    path = [Phase.PENDING, Phase.QUEUED, Phase.EXECUTING, Phase.COMPLETED, Phase.ARCHIVED]
    for old, new in itertools.pairwise(path):
        check_transition(old, new)


def test_parameters_are_case_insensitive_and_multivalued() -> None:
    params = Params([("query", "a"), ("UPLOAD", "t1,param:x"), ("Upload", "t2,param:y")])
    assert params.get("QUERY") == "a"
    assert params.get_all("upload") == ["t1,param:x", "t2,param:y"]
    assert "Query" in params
    assert "MAXREC" not in params
    assert params.names() == ["QUERY", "UPLOAD"]


def test_one_repeat_rule() -> None:
    """A single-valued parameter given twice with different values is refused; a
    /parameters POST replaces the values of the names it sends."""
    twice = Params([("QUERY", "a"), ("query", "b"), ("LANG", "ADQL"), ("lang", "ADQL")])
    assert twice.get("LANG") == "ADQL"
    with pytest.raises(UsageFault, match="QUERY given 2 times"):
        twice.get("QUERY")
    job = Params([("QUERY", "a"), ("UPLOAD", "t1,param:x"), ("MAXREC", "5")])
    later = job.replaced_by(Params([("query", "b"), ("UPLOAD", "t2,param:y")]))
    assert later.get("query") == "b"
    assert later.get_all("UPLOAD") == ["t2,param:y"]
    assert later.get("MAXREC") == "5"


@pytest.mark.parametrize(("name", "value"), [("QU\x00ERY", "x"), ("QUE\nRY", "x"),
                                             ("QUERY", "SELECT \x00"), ("", "x"),
                                             ("N" * 65, "x")])
def test_client_parameters_are_checked(name: str, value: str) -> None:
    with pytest.raises(UsageFault):
        Params.checked([(name, value)])


def test_job_ids_are_unguessable() -> None:
    ids = {new_job_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(job_id) >= 24 for job_id in ids)
