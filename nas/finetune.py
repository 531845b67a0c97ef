"""`nas finetune`: fine-tune an exported student (or a teacher, for comparison) with the
transformers `Trainer`, on sequence classification or causal language modelling.

Data get a seeded train/dev/test split (80/10/10, or the sizes asked for), fixed by `split_seed`
so that every model and every training seed is scored on the same test rows. The training seed is
set before the classification head is created, so the same student and seed give the same
result. Several learning rates are a sweep: each is trained, and the one with the best dev score
is reported (the choice never looks at test). With `teacher`, a fine-tuned teacher directory
(written by `save_to`), the loss adds its soft labels: (1 - w) CE + w T^2 KL(teacher_T || student_T).
Classification reports accuracy and macro-F1 on dev and test; causal-LM reports perplexity. Results are written next
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
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from transformers import Trainer

from nas.config import FINETUNE_EPOCHS, FINETUNE_LRS
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
    lr: float = 0.0
    dev_by_lr: dict[str, float] | None = None  # the sweep: dev score per learning rate
    teacher: str | None = None

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
        raise FileNotFoundError(
            f"finetune: {model!r} is not a model directory (no config.json) nor an offline teacher id"
        )
    return path


def _data_config(data: str, text_column: str, max_examples: int | None, seed: int) -> DataConfig:
    if data.startswith("offline:") or not Path(data).exists():
        return DataConfig(dataset=data, text_column=text_column, max_examples=max_examples, seed=seed)
    return DataConfig(files=[data], text_column=text_column, max_examples=max_examples, seed=seed)


def finetune(
    model: str,
    data: str,
    text_column: str = "text",
    label_column: str | None = "label",
    task: str = "classification",
    *,
    epochs: float = FINETUNE_EPOCHS,
    seq_len: int = 128,
    batch_size: int = 16,
    lr: float | Sequence[float] = FINETUNE_LRS,
    max_examples: int | None = None,
    seed: int = 0,
    split_seed: int = 0,
    split_sizes: tuple[int, int, int] | None = None,
    teacher: str | None = None,
    kd_temperature: float = 2.0,
    kd_weight: float = 0.5,
    save_to: Path | None = None,
    storage: str | None = None,
    output_dir: Path | None = None,
) -> FinetuneResult:
    from transformers import (
        AutoModelForCausalLM,
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorForLanguageModeling,
        DataCollatorWithPadding,
        TrainingArguments,
        set_seed,
    )

    lrs = [float(lr)] if isinstance(lr, (int, float)) else [float(x) for x in lr]
    if task not in ("classification", "causal-lm"):
        raise ValueError(f"--task: got {task!r}; allowed: classification, causal-lm")
    if task == "classification" and not label_column:
        raise ValueError("--label-column: classification needs a label column")
    if not lrs or any(x <= 0 for x in lrs):
        raise ValueError(f"--lr: got {lrs}; give one or more positive learning rates")
    if teacher is not None and task != "classification":
        raise ValueError("--teacher: task distillation is for classification")
    if not 0.0 <= kd_weight <= 1.0 or kd_temperature <= 0:
        raise ValueError(
            f"--kd-weight must lie in [0, 1] and --kd-temperature be > 0; got {kd_weight}, {kd_temperature}"
        )
    directory = _model_dir(model)  # checked before the data are read
    teacher_dir = _model_dir(teacher) if teacher else None
    rows, text = load_rows(
        _data_config(data, text_column, max_examples, split_seed), (label_column,) if task == "classification" else ()
    )
    rows = rows.filter(lambda r: isinstance(r[text], str) and bool(r[text].strip()))
    parts = _split(rows, split_seed, split_sizes)

    tokenizer = AutoTokenizer.from_pretrained(directory)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if task == "classification":
        labels = sorted(set(parts["train"][label_column]))
        index = {label: i for i, label in enumerate(labels)}

        def new_model() -> Any:
            net = AutoModelForSequenceClassification.from_pretrained(directory, num_labels=len(labels))
            net.config.pad_token_id = tokenizer.pad_token_id
            return net

        def encode(batch: dict[str, list[Any]]) -> dict[str, Any]:
            enc = tokenizer(batch[text], truncation=True, max_length=seq_len)
            enc["labels"] = [index[label] for label in batch[label_column]]
            return enc

        collator = DataCollatorWithPadding(tokenizer)
    else:

        def new_model() -> Any:
            return AutoModelForCausalLM.from_pretrained(directory)

        def encode(batch: dict[str, list[Any]]) -> dict[str, Any]:
            return tokenizer(batch[text], truncation=True, max_length=seq_len)

        collator = DataCollatorForLanguageModeling(tokenizer, mlm=False)
    columns = parts["train"].column_names
    encoded = {k: v.map(encode, batched=True, remove_columns=columns) for k, v in parts.items()}
    if teacher_dir is not None:
        encoded["train"] = _with_teacher_logits(encoded["train"], teacher_dir, len(labels), collator, batch_size)

    def metrics(eval_pred: Any) -> dict[str, float]:
        logits, gold = eval_pred
        pred = np.argmax(logits, axis=-1)
        return {"accuracy": float(np.mean(pred == gold)), "macro_f1": macro_f1(pred, gold)}

    out = output_dir or (
        directory / f"finetune-{task}"
        if not model.startswith("offline:")
        else Path("runs") / "finetune" / model.replace(":", "-")
    )
    tried: list[tuple[float, float, dict[str, float], Any]] = []  # (dev score, lr, result, trainer)
    for rate in lrs:
        set_seed(seed)  # before the head is created: the same seed gives the same head and order
        args = TrainingArguments(
            output_dir=str(out),
            num_train_epochs=epochs,
            per_device_train_batch_size=batch_size,
            per_device_eval_batch_size=batch_size,
            learning_rate=rate,
            seed=seed,
            eval_strategy="no",
            save_strategy="no",
            report_to=[],
            logging_steps=50,
            use_cpu=not torch.cuda.is_available(),
            bf16=torch.cuda.is_available(),
            disable_tqdm=True,
            remove_unused_columns=False,
        )
        trainer = DistillingTrainer(
            kd_temperature,
            kd_weight,
            model=new_model(),
            args=args,
            train_dataset=encoded["train"],
            data_collator=collator,
            compute_metrics=metrics if task == "classification" else None,
        )
        trainer.train()
        dev = trainer.evaluate(encoded["dev"], metric_key_prefix="dev")
        test = trainer.evaluate(encoded["test"], metric_key_prefix="test")
        if task == "classification":
            result = {
                "test_accuracy": test["test_accuracy"],
                "test_macro_f1": test["test_macro_f1"],
                "dev_accuracy": dev["dev_accuracy"],
            }
            score = dev["dev_accuracy"]
        else:
            result = {
                "test_loss": test["test_loss"],
                "test_perplexity": math.exp(test["test_loss"]),
                "dev_loss": dev["dev_loss"],
            }
            score = -dev["dev_loss"]
        log.info("finetune %s lr %g: dev %.4f", model, rate, score)
        if not tried or score > tried[0][0]:
            tried.insert(0, (score, rate, result, trainer))
        else:
            tried.append((score, rate, result, trainer))
    _, best_lr, result, trainer = tried[0]
    dev_by_lr = {f"{rate:g}": abs(score) for score, rate, _, _ in sorted(tried, key=lambda t: t[1])}
    if save_to is not None:  # e.g. a fine-tuned teacher, to serve as another run's --teacher
        trainer.save_model(str(save_to))
        tokenizer.save_pretrained(str(save_to))
    outcome = FinetuneResult(
        str(model), task, result, len(parts["train"]), len(parts["test"]), epochs, seed, best_lr, dev_by_lr, teacher
    )
    record_path = (directory if not model.startswith("offline:") else out) / f"finetune-{task}.json"
    record_path.parent.mkdir(parents=True, exist_ok=True)
    record_path.write_text(json.dumps(outcome.to_dict(), indent=2))
    attach_to_trial(directory, outcome, storage)
    return outcome


def _split(rows: Any, split_seed: int, sizes: tuple[int, int, int] | None) -> dict[str, Any]:
    """train/dev/test: 80/10/10, or exactly `sizes` rows each (drawn after one seeded shuffle)."""
    if sizes is None:
        split = rows.train_test_split(test_size=0.2, seed=split_seed)
        dev_test = split["test"].train_test_split(test_size=0.5, seed=split_seed)
        return {"train": split["train"], "dev": dev_test["train"], "test": dev_test["test"]}
    if any(n <= 0 for n in sizes) or sum(sizes) > len(rows):
        raise ValueError(
            f"--split: got {list(sizes)} (train, dev, test); each must be > 0 and together at most "
            f"the {len(rows)} rows of the data"
        )
    shuffled = rows.shuffle(seed=split_seed)
    train, dev, test = sizes
    return {
        "train": shuffled.select(range(train)),
        "dev": shuffled.select(range(train, train + dev)),
        "test": shuffled.select(range(train + dev, train + dev + test)),
    }


@torch.no_grad()
def _with_teacher_logits(train: Any, teacher_dir: Path, num_labels: int, collator: Any, batch_size: int) -> Any:
    """`train` with a `teacher_logits` column: the fine-tuned teacher's logits, computed once."""
    from transformers import AutoModelForSequenceClassification

    net = AutoModelForSequenceClassification.from_pretrained(teacher_dir).eval()
    if net.config.num_labels != num_labels:
        raise ValueError(
            f"--teacher: {str(teacher_dir)!r} has {net.config.num_labels} labels; the data have {num_labels}"
        )
    logits: list[list[float]] = []
    for start in range(0, len(train), batch_size):
        batch = collator(
            [
                {k: v for k, v in train[i].items() if k != "labels"}
                for i in range(start, min(start + batch_size, len(train)))
            ]
        )
        logits.extend(net(**batch).logits.float().tolist())
    return train.add_column("teacher_logits", logits)


class DistillingTrainer(Trainer):
    """The HF Trainer; where a batch carries `teacher_logits`, the loss mixes in their soft labels."""

    def __init__(self, temperature: float, weight: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.temperature, self.weight = temperature, weight

    def compute_loss(
        self, model: Any, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
    ) -> Any:
        soft = inputs.pop("teacher_logits", None)
        if soft is None:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        outputs = model(**inputs)
        t = self.temperature
        kd = (
            F.kl_div(
                F.log_softmax(outputs.logits / t, -1),
                F.log_softmax(soft / t, -1),
                log_target=True,
                reduction="batchmean",
            )
            * t
            * t
        )
        loss = (1 - self.weight) * outputs.loss + self.weight * kd
        return (loss, outputs) if return_outputs else loss


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
