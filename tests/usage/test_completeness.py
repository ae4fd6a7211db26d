"""Which event selectors leave out the KMS calls EMR Serverless makes (shapes from the
CloudTrail API reference and the user guide's examples)."""

from __future__ import annotations

import pytest

from emr_cmk_notebook.usage.completeness import Completeness, selector_gaps

MANAGEMENT = {"Field": "eventCategory", "Equals": ["Management"]}


@pytest.mark.parametrize(
    ("answer", "gap"),
    [
        (
            {"EventSelectors": [{"ReadWriteType": "All", "IncludeManagementEvents": True}]},
            None,
        ),
        (
            {
                "EventSelectors": [
                    {
                        "ReadWriteType": "All",
                        "IncludeManagementEvents": True,
                        "ExcludeManagementEventSources": ["kms.amazonaws.com"],
                    }
                ]
            },
            "excludes KMS events (ExcludeManagementEventSources kms.amazonaws.com)",
        ),
        (
            {"EventSelectors": [{"ReadWriteType": "WriteOnly", "IncludeManagementEvents": True}]},
            "logs only write events, and GenerateDataKey and Decrypt are read-only",
        ),
        (
            {"EventSelectors": [{"ReadWriteType": "All", "IncludeManagementEvents": False}]},
            "logs no management events (KMS calls are management events)",
        ),
        (
            {
                "AdvancedEventSelectors": [
                    {
                        "Name": "Log all management events except KMS events",
                        "FieldSelectors": [
                            MANAGEMENT,
                            {"Field": "eventSource", "NotEquals": ["kms.amazonaws.com"]},
                        ],
                    }
                ]
            },
            "excludes KMS events (an advanced event selector on eventSource)",
        ),
        (
            {
                "AdvancedEventSelectors": [
                    {
                        "Name": "Write-only management events",
                        "FieldSelectors": [MANAGEMENT, {"Field": "readOnly", "Equals": ["false"]}],
                    }
                ]
            },
            "logs only write events, and GenerateDataKey and Decrypt are read-only",
        ),
        (
            {
                "AdvancedEventSelectors": [
                    {
                        "Name": "S3 data events only",
                        "FieldSelectors": [
                            {"Field": "eventCategory", "Equals": ["Data"]},
                            {"Field": "resources.type", "Equals": ["AWS::S3::Object"]},
                        ],
                    }
                ]
            },
            "logs no management events (KMS calls are management events)",
        ),
        (
            {"AdvancedEventSelectors": [{"Name": "All", "FieldSelectors": [MANAGEMENT]}]},
            None,
        ),
    ],
)
def test_selectors_that_leave_out_kms_calls_are_named(answer: dict, gap: str | None) -> None:
    assert selector_gaps(answer) == ([gap] if gap else [])


def test_reasons_join_into_one_line() -> None:
    assert Completeness().line() is None
    line = Completeness(("no trail logs eu-west-1", "trail t stopped logging")).line()
    assert line == "may be incomplete: no trail logs eu-west-1; trail t stopped logging"
