"""What the digest calls things: Jira projects by key, Trello boards by name, and the source
beside a name that two sources share."""

from __future__ import annotations

from digest_worlds import AS_OF, digest_config

from trackpulse.digests.build import DigestData
from trackpulse.digests.content import project_labels


def test_projects_are_named_by_key_or_board_name_with_the_source_when_two_sources_share_a_name() -> None:
    rows = [{"source": "jira-cloud", "project": "ABC"}, {"source": "jira-dc", "project": "ABC"},
            {"source": "jira-dc", "project": "OPS"}, {"source": "trello", "project": "5f1c0000000000000000abcd"}]
    data = DigestData(digest=digest_config(), as_of=AS_OF, since=AS_OF, previous_since=AS_OF,
                      report={"projects": rows[:3]}, previous_report={"projects": rows[3:]}, extras={},
                      previous_extras={}, board_names={("trello", "5f1c0000000000000000abcd"): "Team board",
                                                       ("jira-cloud", "12"): "ABC board"})
    assert project_labels(data) == {
        ("jira-cloud", "ABC"): "ABC · jira-cloud", ("jira-dc", "ABC"): "ABC · jira-dc",
        ("jira-dc", "OPS"): "OPS", ("trello", "5f1c0000000000000000abcd"): "Team board"}
