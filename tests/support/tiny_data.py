"""A tiny data directory laid out like ../shared/data for training tests: the three labelled sets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def make_tiny_data(d: Path) -> Path:
    """tfns 60 rows, fpb 30 (one a duplicate after normalising), topic 80 (20 classes), random short headlines."""
    d = Path(d)
    (d / "sentiment").mkdir(parents=True, exist_ok=True)
    (d / "topic").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    words = ["stocks", "rise", "fall", "oil", "fed", "earnings", "beat", "miss", "ipo", "gold"]

    def text(i):
        return f"headline {i} " + " ".join(rng.choice(words, rng.integers(2, 12)))

    pd.DataFrame({"text": [text(i) for i in range(60)], "label": [i % 3 for i in range(60)]}).to_csv(
        d / "sentiment" / "tfns_train.csv", index=False)
    fpb = pd.DataFrame({"text": [text(100 + i) for i in range(30)],
                        "label": [["negative", "neutral", "positive"][i % 3] for i in range(30)],
                        "agreement": 100})
    fpb.loc[29, "text"] = fpb.loc[0, "text"].upper()  # a duplicate after normalising
    fpb.to_csv(d / "sentiment" / "fpb_train.csv", index=False)
    pd.DataFrame({"text": [text(200 + i) for i in range(80)], "label": [i % 20 for i in range(80)]}).to_csv(
        d / "topic" / "topic_train.csv", index=False)
    return d
