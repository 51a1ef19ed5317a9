"""An observer's "my nights" page: runs from the schedule, the archive's files of each.

Runs come from the demo's schedule.json (what the scheduling database was loaded
from); file counts from the owner role's view of the database, filtered the way the
access rules state (public, or owned by the observer).
"""

from __future__ import annotations

import re

from tests.web.conftest import owner_rows, public_dids


def test_anonymous_is_sent_to_login(client, archive):
    reply = client.get("/nights")
    assert reply.status_code == 303 and reply.headers["location"].startswith("/login?next=")


def test_staff_without_observer_id_gets_a_message(client, staff_account):
    client.login(*staff_account)
    reply = client.get("/nights")
    assert reply.status_code == 200 and 'id="nights-message"' in reply.text


def test_observer_sees_their_runs_with_counts(client, server, archive, observer):
    client.login(observer.login, observer.password)
    reply = client.get("/nights")
    assert reply.status_code == 200
    assert 'href="/nights">My nights</a>' in reply.text
    runs = [r for r in archive.schedule["runs"] if observer.obid in r["obids"]]
    assert runs
    shown = dict(re.findall(r'data-run="([^"]+)">.*?<td class="files">(?:<a [^>]*>)?(\d+)',
                            reply.text, re.S))
    assert set(shown) == {str(r["run_id"]) for r in runs}
    public = public_dids(server.database)
    for run in runs:
        rows = owner_rows(server.database,
                          "SELECT obs_publisher_did, owner_ids FROM lick.files WHERE "
                          "lower(telescope) = lower(%s) AND night BETWEEN %s AND %s",
                          (run["telescope"], run["first_night"], run["last_night"]))
        visible = [d for d, owners in rows if d in public or observer.obid in owners]
        assert int(shown[str(run["run_id"])]) == len(visible), run


def test_an_unreachable_schedule_is_a_503_page(server, archive, observer):
    from tests.conftest import embedded_url, running_server
    from tests.web.conftest import WebClient

    database = server.database
    bogus = (embedded_url(database, "no_such_schedule") if database.settings.embedded
             else database.settings.database.url.rsplit("/", 1)[0] + "/no_such_schedule")
    with running_server(database, {"LICK_ARCHIVE_SCHEDULE_DSN": bogus}) as other:
        web = WebClient(other.base_url)
        try:
            web.login(observer.login, observer.password)
            reply = web.get("/nights")
            assert reply.status_code == 503 and "retry-after" in reply.headers
            assert "no_such_schedule" not in reply.text, reply.text[-1500:]
            assert "scheduling database" in reply.text, reply.text[-1500:]
            assert "text/html" in reply.headers[
                "content-type"], reply.text[-1500:]
            assert web.get("/search?size=5").status_code == 200
        finally:
            web.close()
