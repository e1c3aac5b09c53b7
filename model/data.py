"""Training data: reading the three labelled sets and the held-out validation split.

The split is stratified by label within each data set, seeded, and done on
*normalised* text (lower-cased, whitespace collapsed; the tokenizer is
uncased) after dropping duplicates, so no validation text is also a training
text.  ``finsent train --splits-out DIR`` (or ``--splits-only``) writes the
validation CSVs that ``finsent evaluate`` reads.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from model.labels import SENTIMENT_TO_ID, TFNS_LABELS
from stream.base.config import machine_settings
from stream.base.errors import UserError
from stream.base.labels import SENTIMENTS, TOPICS
from stream.messages.text import model_input

if TYPE_CHECKING:  # pandas itself is imported where it is used: it costs seconds at CLI start-up
    import pandas as pd


@dataclass(frozen=True)
class SourceSpec:
    key: str  # short name used in metrics and file names
    file: str  # path relative to the data directory
    task: str  # topic | sentiment
    licence: str
    description: str


SOURCES: tuple[SourceSpec, ...] = (
    SourceSpec(
        "tfns",
        "sentiment/tfns_train.csv",
        "sentiment",
        "MIT",
        "Twitter Financial News sentiment v1.0.0 (zeroshot): 0 Bearish, 1 Bullish, 2 Neutral",
    ),
    SourceSpec(
        "fpb",
        "sentiment/fpb_train.csv",
        "sentiment",
        "CC BY-NC-SA 3.0 (non-commercial)",
        "Financial PhraseBank v1.0 (Malo et al. 2014), all agreement levels (50-100%)",
    ),
    SourceSpec(
        "topic",
        "topic/topic_train.csv",
        "topic",
        "MIT",
        "Twitter Financial News topic (zeroshot), 20 classes",
    ),
)

DEFAULT_DATA = Path("..") / "shared" / "data"


def default_data_dir() -> Path:
    """``$FINSENT_DATA`` or ``../shared/data`` relative to the project root (or cwd)."""
    given = machine_settings().data_dir
    if given:
        return given
    root = Path(__file__).resolve().parent.parent
    for base in (root, Path.cwd()):
        cand = (base / DEFAULT_DATA).resolve()
        if cand.is_dir():
            return cand
    return (root / DEFAULT_DATA).resolve()


_WS = re.compile(r"\s+")


def normalise(text: str) -> str:
    return _WS.sub(" ", str(text)).strip().lower()


@dataclass
class Split:
    key: str
    task: str
    train_text: list[str]
    train_label: list[int]  # model ids
    val_text: list[str]
    val_label: list[int]
    rows: int  # rows in the file
    duplicates: int  # rows dropped as duplicates
    sha256: str
    spec: SourceSpec

    # What the model reads: the texts through the one input contract (stream.messages.text.model_input).
    @property
    def train_inputs(self) -> list[str]:
        return [model_input(t) for t in self.train_text]

    @property
    def val_inputs(self) -> list[str]:
        return [model_input(t) for t in self.val_text]


def _label_ids(spec: SourceSpec, labels: pd.Series) -> np.ndarray:
    import pandas as pd  # only here: the CLI imports this module and pandas costs seconds

    raw = labels.astype(str).str.strip()
    if spec.task == "topic":
        ids = pd.to_numeric(raw, errors="coerce")
        bad = ids.isna() | (ids < 0) | (ids >= len(TOPICS))
    else:
        mapped = raw.map(lambda v: TFNS_LABELS.get(v, v.lower()))
        ids = mapped.map(SENTIMENT_TO_ID)
        bad = ids.isna()
    if bad.any():
        raise UserError(f"{spec.file}: unknown labels {sorted(set(raw[bad]))[:5]}")
    return ids.astype(np.int64).to_numpy()


def read_source(data_dir: Path, spec: SourceSpec) -> tuple[pd.DataFrame, str]:
    import pandas as pd  # only here: the CLI imports this module and pandas costs seconds

    path = Path(data_dir) / spec.file
    if not path.is_file():
        raise UserError(f"training data not found: {path} (pass --data DIR)")
    raw = path.read_bytes()
    try:
        df = pd.read_csv(path, dtype={"text": str}, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read CSV ({exc})") from None
    if "text" not in df or "label" not in df:
        raise UserError(f"{path}: expected columns text,label")
    df = df[df["text"].str.strip() != ""].copy()
    df["y"] = _label_ids(spec, df["label"])
    return df, hashlib.sha256(raw).hexdigest()


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of validation rows: ``round(fraction * n_c)`` (at least 1) per class."""
    rng = np.random.default_rng(seed)
    val = np.zeros(len(labels), dtype=bool)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        k = max(1, round(fraction * len(idx))) if len(idx) > 1 else 0
        val[idx[:k]] = True
    return val


def load_splits(data_dir: Path, val_fraction: float = 0.1, seed: int = 13, include=None) -> list[Split]:
    """Read the data sets (``include``: keys to use; default all) and split them."""
    if not 0 < val_fraction < 0.5:
        raise UserError("--val-fraction must be between 0 and 0.5")
    out = []
    for n, spec in enumerate(SOURCES):
        if include is not None and spec.key not in include:
            continue
        df, digest = read_source(data_dir, spec)
        rows = len(df)
        df["norm"] = df["text"].map(normalise)
        # duplicates (after normalising): keep the first row's text, the majority label
        majority = df.groupby("norm")["y"].agg(lambda s: s.value_counts().idxmax())
        first = df.drop_duplicates("norm", keep="first").set_index("norm")
        first["y"] = majority
        first = first.reset_index()
        labels = first["y"].to_numpy()
        val = stratified_split(labels, val_fraction, seed + n)
        out.append(
            Split(
                key=spec.key,
                task=spec.task,
                train_text=first.loc[~val, "text"].tolist(),
                train_label=labels[~val].tolist(),
                val_text=first.loc[val, "text"].tolist(),
                val_label=labels[val].tolist(),
                rows=rows,
                duplicates=rows - len(first),
                sha256=digest,
                spec=spec,
            )
        )
    return out


def val_csv_name(split: Split) -> str:
    return f"{split.spec.task}_{split.key}_val.csv" if split.task == "sentiment" else "topic_val.csv"


def write_val_csvs(splits: list[Split], out_dir: Path) -> list[Path]:
    """Write each validation split as ``text,label`` with model label names."""
    import pandas as pd  # only here: the CLI imports this module and pandas costs seconds

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for s in splits:
        names = SENTIMENTS if s.task == "sentiment" else TOPICS
        df = pd.DataFrame({"text": s.val_text, "label": [names[i] for i in s.val_label]})
        path = out_dir / val_csv_name(s)
        df.to_csv(path, index=False)
        paths.append(path)
    return paths
