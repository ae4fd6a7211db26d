"""Release labels in both of AWS's forms: what Spark they run and which features they have."""

from __future__ import annotations

import pytest

from emr_cmk_notebook.core import releases


@pytest.mark.parametrize(
    ("label", "spark", "livy", "ttl", "sessions"),
    [
        ("emr-6.13.0", None, False, False, False),
        ("emr-6.14.0", None, True, False, False),
        ("emr-7.7.0", "3.5", True, False, False),
        ("emr-7.8.0", "3.5", True, True, False),
        ("emr-7.13.0", "3.5", True, True, True),
        ("emr-spark-8.0.0", "4.0", True, True, True),
    ],
)
def test_each_form_maps_to_its_spark_and_feature_floors(label, spark, livy, ttl, sessions):
    assert releases.spark_of(label) == spark
    assert releases.supports(label, releases.LIVY_ENDPOINT) is livy
    assert releases.supports(label, releases.LIVY_TTL) is ttl
    assert releases.supports(label, releases.SESSIONS) is sessions


def test_the_runtime_for_apache_spark_sorts_after_every_emr_7_release():
    assert releases.parse_release("emr-spark-8.0.0") > releases.parse_release("emr-7.99.9")
    assert str(releases.parse_release("emr-spark-8.0.0")) == "emr-spark-8.0.0"


@pytest.mark.parametrize("label", ["emr-latest", "emr-spark-8.0-preview", "emr-7.13", "spark-8.0"])
def test_a_label_in_neither_form_is_not_judged(label):
    assert releases.parse_release(label) is None
    assert releases.supports(label, releases.SESSIONS) is None
    assert releases.spark_of(label) is None
