"""Small builders shared by the UWS tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from vo_service.params import Params
from vo_service.uws.model import Job, Phase, new_job_id


def make_job(
    owner: str | None = "alice",
    *,
    phase: Phase = Phase.PENDING,
    duration: int = 600,
    destruction: datetime | None = None,
    params: list[tuple[str, str]] | None = None,
    run_id: str | None = None,
) -> Job:
    now = datetime.now(UTC)
    return Job(
        job_id=new_job_id(),
        owner_id=owner,
        phase=phase,
        creation_time=now,
        execution_duration=duration,
        destruction=destruction or now + timedelta(days=1),
        run_id=run_id,
        parameters=Params(params or [("LANG", "ADQL"), ("QUERY", "SELECT 1")]),
    )
