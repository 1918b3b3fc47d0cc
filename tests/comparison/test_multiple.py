"""A comparison table read as one family (Holm): what each verdict stands on."""

from __future__ import annotations

from dataclasses import replace

import pytest

from comparison import Comparison, holm_corrected

ROW = Comparison("accuracy", 0.80, 0.83, 0.03, (0.001, 0.059), "McNemar", 0.03, "b better", 1000)


def test_each_verdict_stands_only_on_its_holm_adjusted_p_value() -> None:
    auc = replace(ROW, metric="auc_roc", p_value=0.04)
    weak = holm_corrected([ROW, auc], alpha=0.05)  # 0.03 x 2 = 0.06, then max(0.06, 0.04) = 0.06
    assert [found.p_holm for found in weak] == pytest.approx([0.06, 0.06])
    assert [found.verdict for found in weak] == ["no difference yet", "no difference yet"]
    assert weak[0].interval == ROW.interval and weak[0].p_value == 0.03  # the rest of the row as it was
    strong = holm_corrected([replace(ROW, p_value=0.01), replace(auc, verdict="a better")], alpha=0.05)
    assert [found.p_holm for found in strong] == pytest.approx([0.02, 0.04])
    assert [found.verdict for found in strong] == ["b better", "a better"]
    assert holm_corrected([ROW], alpha=0.05) == [ROW]  # one metric: nothing to correct
    assert ROW.as_row()["p (Holm)"] is None and strong[0].as_row()["p (Holm)"] == pytest.approx(0.02)
