"""`nas finetune`: fine-tune an exported student (or a teacher, for comparison) with the
transformers `Trainer`, on sequence classification or causal language modelling.

Data without splits get a seeded 80/10/10 train/dev/test split. Classification reports accuracy
and macro-F1 on dev (each epoch) and test; causal-LM reports perplexity. Results are written next
to the student (`finetune-<task>.json`) and, for a student exported from a trial, attached to that
trial's study in the storage as `finetune:<trial_id>` (Optuna freezes finished trials, so the
study holds the attribute, keyed by trial).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from supernet import teachers
from supernet.config import DataConfig
from supernet.data import load_rows

log = logging.getLogger(__name__)


@dataclass
class FinetuneResult:
    model: str
    task: str
    metrics: dict[str, float]
    train_examples: int
    test_examples: int
    epochs: float
    seed: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def macro_f1(pred: np.ndarray, gold: np.ndarray) -> float:
    scores = []
    for label in np.unique(gold):
        tp = np.sum((pred == label) & (gold == label))
        fp = np.sum((pred == label) & (gold != label))
        fn = np.sum((pred != label) & (gold == label))
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores))


def _model_dir(model: str) -> Path:
    """An exported student directory, or a teacher id (offline ids resolve to their files)."""
    if model.startswith("offline:"):
        teachers.load_teacher(model)  # makes sure a GGUF teacher has its cached HF directory
        directory = teachers.resolve(model).directory
        assert directory is not None
        return directory
    path = Path(model)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"finetune: {model!r} is not a model directory (no config.json) nor an offline teacher id")
    return path


def _data_config(data: str, text_column: str, max_examples: int | None, seed: int) -> DataConfig:
    if data.startswith("offline:") or not Path(data).exists():
        return DataConfig(dataset=data, text_column=text_column, max_examples=max_examples, seed=seed)
    return DataConfig(files=[data], text_column=text_column, max_examples=max_examples, seed=seed)


def finetune(model: str, data: str, text_column: str = "text", label_column: str | None = "label",
             task: str = "classification", epochs: float = 1.0, seq_len: int = 128, batch_size: int = 16,
             lr: float = 5e-5, max_examples: int | None = None, seed: int = 0, storage: str | None = None,
             output_dir: Path | None = None) -> FinetuneResult:
    from transformers import (
        AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer, DataCollatorForLanguageModeling,
        DataCollatorWithPadding, Trainer, TrainingArguments,
    )

    if task not in ("classification", "causal-lm"):
        raise ValueError(f"--task: got {task!r}; allowed: classification, causal-lm")
    if task == "classification" and not label_column:
        raise ValueError("--label-column: classification needs a label column")
    directory = _model_dir(model)  # checked before the data are read
    rows, text = load_rows(_data_config(data, text_column, max_examples, seed),
                           (label_column,) if task == "classification" else ())
    rows = rows.filter(lambda r: isinstance(r[text], str) and bool(r[text].strip()))
    split = rows.train_test_split(test_size=0.2, seed=seed)
    dev_test = split["test"].train_test_split(test_size=0.5, seed=seed)
    parts = {"train": split["train"], "dev": dev_test["train"], "test": dev_test["test"]}

    tokenizer = AutoTokenizer.from_pretrained(directory)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if task == "classification":
        labels = sorted(set(parts["train"][label_column]))
        index = {label: i for i, label in enumerate(labels)}
        net = AutoModelForSequenceClassification.from_pretrained(directory, num_labels=len(labels))
        net.config.pad_token_id = tokenizer.pad_token_id

        def encode(batch: dict[str, list[Any]]) -> dict[str, Any]:
            enc = tokenizer(batch[text], truncation=True, max_length=seq_len)
            enc["labels"] = [index[label] for label in batch[label_column]]
            return enc
        collator = DataCollatorWithPadding(tokenizer)
    else:
        net = AutoModelForCausalLM.from_pretrained(directory)

        def encode(batch: dict[str, list[Any]]) -> dict[str, Any]:
            return tokenizer(batch[text], truncation=True, max_length=seq_len)
        collator = DataCollatorForLanguageModeling(tokenizer, mlm=False)
    columns = parts["train"].column_names
    encoded = {k: v.map(encode, batched=True, remove_columns=columns) for k, v in parts.items()}

    def metrics(eval_pred: Any) -> dict[str, float]:
        logits, gold = eval_pred
        pred = np.argmax(logits, axis=-1)
        return {"accuracy": float(np.mean(pred == gold)), "macro_f1": macro_f1(pred, gold)}

    out = output_dir or (directory / f"finetune-{task}" if not model.startswith("offline:") else
                         Path("runs") / "finetune" / model.replace(":", "-"))
    args = TrainingArguments(
        output_dir=str(out), num_train_epochs=epochs, per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=batch_size, learning_rate=lr, seed=seed, eval_strategy="epoch",
        save_strategy="no", report_to=[], logging_steps=50, use_cpu=not torch.cuda.is_available(),
        bf16=torch.cuda.is_available(), disable_tqdm=False,
    )
    trainer = Trainer(model=net, args=args, train_dataset=encoded["train"], eval_dataset=encoded["dev"],
                      data_collator=collator, compute_metrics=metrics if task == "classification" else None)
    trainer.train()
    test = trainer.evaluate(encoded["test"], metric_key_prefix="test")
    if task == "classification":
        dev = trainer.evaluate(encoded["dev"], metric_key_prefix="dev")
        result = {"test_accuracy": test["test_accuracy"], "test_macro_f1": test["test_macro_f1"],
                  "dev_accuracy": dev["dev_accuracy"]}
    else:
        result = {"test_loss": test["test_loss"], "test_perplexity": math.exp(test["test_loss"])}
    outcome = FinetuneResult(str(model), task, result, len(parts["train"]), len(parts["test"]), epochs, seed)
    record_path = (directory if not model.startswith("offline:") else out) / f"finetune-{task}.json"
    record_path.parent.mkdir(parents=True, exist_ok=True)
    record_path.write_text(json.dumps(outcome.to_dict(), indent=2))
    attach_to_trial(directory, outcome, storage)
    return outcome


def attach_to_trial(directory: Path, outcome: FinetuneResult, storage: str | None) -> None:
    """For an exported student, store the result on its trial's study in the storage."""
    import optuna

    card = directory / "distilnas.json"
    if not card.is_file():
        return
    info = json.loads(card.read_text())
    url = storage or info.get("storage")
    if not url:
        return
    study = optuna.load_study(study_name=info["study"], storage=url)
    study.set_user_attr(f"finetune:{info['trial_id']}", {**outcome.to_dict(), "model": str(directory)})
