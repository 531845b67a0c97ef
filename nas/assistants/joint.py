"""A joint search of the student and its teacher assistant's scale (`nas search --joint-assistant`).

Each trial picks a student architecture and a TA sparsity (`nas.search.space.TrialSpace` with
`ta_sparsities`); `JointEvaluator` distils the student from that TA for a few steps and measures
it like any candidate, so the study's front says which TA scale serves which student.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from nas.assistants.candidates import as_teacher, distil_fixed
from nas.search.evaluate import Measurement, SupernetEvaluator
from search_spaces import Arch
from supernet.config import TrainConfig
from supernet.data import TokenizedData
from supernet.registry import build_supernet
from supernet.superlm import SuperLM


class JointEvaluator:
    """Scores (student, TA scale): the student, initialised from its sub-space's supernet, is
    distilled for `assistants.distill_steps` steps from the TA of that sparsity (0.0: the teacher
    itself), then measured like any candidate (quality against the teacher's held-out targets,
    and its costs)."""

    def __init__(
        self,
        base: SupernetEvaluator,
        init: SuperLM,
        teacher: SuperLM,
        assistants: SuperLM,
        candidates: dict[float, Arch],
        data: TokenizedData,
        cfg: TrainConfig,
        relation_heads: int,
        steps: int,
    ) -> None:
        self.base, self.init, self.assistants, self.candidates = base, init, assistants, candidates
        self.data, self.cfg, self.relation_heads, self.steps = data, cfg, relation_heads, steps
        self._teachers: dict[float, SuperLM] = {0.0: teacher}

    def teacher(self, sparsity: float) -> SuperLM:
        if sparsity not in self._teachers:
            arch = self.candidates[sparsity]
            self._teachers[sparsity] = as_teacher(build_supernet(self.assistants.extract(arch)).to(self.base.device))
        return self._teachers[sparsity]

    def measure(self, arch: Arch, ta_sparsity: float) -> Measurement:  # type: ignore[override]
        if ta_sparsity not in self.candidates:
            raise ValueError(f"ta_sparsity: got {ta_sparsity}; allowed: {sorted(self.candidates)}")
        with tempfile.TemporaryDirectory(prefix="joint-ta-") as tmp:
            student = distil_fixed(
                arch,
                self.init,
                self.teacher(ta_sparsity),
                self.data,
                self.cfg,
                self.relation_heads,
                Path(tmp),
                self.base.device,
                self.steps,
            )
        return self.base.with_supernet(student).measure(arch)
