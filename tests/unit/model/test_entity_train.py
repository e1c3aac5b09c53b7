"""A tiny end-to-end ``train-entities`` run (random tiny encoder, CPU, seconds): the training loop it shares
with ``train`` and ``distill`` (model.train.fit) gives a loadable checkpoint with an entity head."""

import json
import random

from model.entity_train import EntityTrainConfig, train_entities
from model.train import TrainConfig, train
from tests.support.tiny_data import make_tiny_data
from tests.support.tiny_model import make_tiny_base


def test_tiny_entity_training_run_writes_a_checkpoint_with_an_entity_head(tmp_path, capsys):
    data = make_tiny_data(tmp_path / "data")
    (data / "targeted").mkdir()
    rng = random.Random(1)
    names = ["Acme", "Globex", "Initech", "Umbrella", "Hooli"]
    with open(data / "targeted" / "sentfin.jsonl", "w") as f:
        for i in range(60):
            a, b = rng.sample(names, 2)
            f.write(json.dumps({"text": f"{a} beats {b} in quarter {i}",
                                "entities": {a: rng.choice(["positive", "neutral"]),
                                             b: rng.choice(["negative", "neutral"])}}) + "\n")
    init = train(TrainConfig(data=data, out=tmp_path / "ck", base=make_tiny_base(tmp_path / "base"), epochs=1,
                             batch_size=8, val_fraction=0.2, device="cpu", progress=False, seed=3))
    out = train_entities(EntityTrainConfig(init=init, data=data, out=tmp_path / "ent", epochs=2, batch_size=8,
                                           val_fraction=0.2, device="cpu", progress=False, seed=3, contrast=10))
    conf = json.loads((out / "config.json").read_text())
    assert conf["model_version"].startswith("finsent-minilm6-ent-") and conf["entity_head"]
    assert conf["training"]["entity_data"]["sentfin"]["train_texts"] > 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["history"]) == 2 and metrics["best_epoch"] in (1, 2)
    assert {"tfns", "fpb", "topic"} <= set(metrics["validation"])
    assert metrics["validation"]["entity_sentfin"]["entities"] > 0  # the entity set's report
    assert "saved" in capsys.readouterr().err
