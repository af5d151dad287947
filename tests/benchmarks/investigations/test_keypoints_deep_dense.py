"""The deep-dense investigation: outcomes, 3MOS grouping (the embedding's held-out pairs apart), table."""

from __future__ import annotations

import numpy as np

from benchmarks.investigations.keypoints_deep_dense import group, outcome, summary
from benchmarks.keypoints import Case


def _case(set_name: str, name: str) -> Case:
    img, ok = np.ones((4, 4), np.float32), np.ones((4, 4), bool)
    return Case(set_name, name, img, ok, "amplitude", img, ok, "optical", np.eye(3))


def test_3mos_cases_are_split_by_the_embeddings_held_out_pairs() -> None:
    assert group(_case("3MOS opt-SAR", "SEN_city_8-h1")) == "3MOS held-out"
    assert group(_case("3MOS opt-SAR", "SEN_water_3")) == "3MOS trained-on (contaminated)"
    assert group(_case("OSdataset opt-SAR", "pair2-h0")) == "OSdataset opt-SAR"


def test_outcomes_and_the_table_put_the_contaminated_rows_last() -> None:
    rows: list[dict[str, object]] = [{"error": 1.0, "accepted": True}, {"error": 4.0, "accepted": True},
                                     {"error": 1.0, "accepted": False}]
    assert [outcome(r) for r in rows] == ["correct", "wrong", "refused"]
    groups = ["3MOS trained-on (contaminated)", "3MOS held-out", "3MOS held-out"]
    table = summary([r | {"group": g, "features": "cfog", "cpu_s": 2.0}
                     for r, g in zip(rows, groups, strict=True)])
    lines = table.splitlines()
    assert lines[2] == "| 3MOS held-out | cfog | 2 | 0 | 1 | 1 | 4.00 | 2.00 |"
    assert lines[3].startswith("| 3MOS trained-on (contaminated) | cfog | 1 | 1 | 0 | 0 | 1.00 |")
