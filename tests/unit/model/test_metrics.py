"""Metrics against hand-computed values."""

from model.metrics import classification_report, format_report


def test_report_values():
    y_true = [0, 0, 1, 1, 2, 2]
    y_pred = [0, 1, 1, 1, 2, 0]
    r = classification_report(y_true, y_pred, ["a", "b", "c"])
    assert r["n"] == 6
    assert r["accuracy"] == 4 / 6
    assert r["confusion"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    # a: p=1/2 r=1/2 f=1/2; b: p=2/3 r=1 f=0.8; c: p=1 r=1/2 f=2/3
    assert abs(r["per_class"]["b"]["f1"] - 0.8) < 1e-12
    assert abs(r["macro_f1"] - (0.5 + 0.8 + 2 / 3) / 3) < 1e-12
    assert abs(r["weighted_f1"] - (0.5 + 0.8 + 2 / 3) / 3) < 1e-12
    text = format_report(r, "title")
    assert "macro-F1" in text and "confusion" in text


def test_macro_f1_counts_classes_seen_in_truth_or_prediction():
    r = classification_report([0, 0], [0, 1], ["a", "b", "c"])
    assert r["per_class"]["c"]["support"] == 0
    # classes a (f1 2/3) and b (predicted, f1 0) count, as in scikit-learn; c (absent) does not
    assert abs(r["macro_f1"] - 1 / 3) < 1e-12
