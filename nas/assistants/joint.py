"""A joint search of the student and its teacher assistant's scale (`nas search --joint-assistant`).

Each trial picks a student architecture and a TA sparsity (`nas.search.space.TrialSpace` with
`ta_sparsities`); `JointEvaluator` distils the student from that TA for a few steps and measures
it like any candidate, so the study's front says which TA scale serves which student.
"""

from __future__ import annotations

from nas.assistants.candidates import as_teacher
from nas.search.evaluate import DistilledEvaluator, Measurement
from search_spaces import Arch
from supernet.registry import build_supernet
from supernet.superlm import SuperLM
from supernet.teacher_cache import CachedTeacher


class JointEvaluator:
    """Scores (student, TA scale): the student, initialised from its sub-space's supernet, is
    distilled for `assistants.distill_steps` steps (`DistilledEvaluator`) from the TA of that
    sparsity (0.0: the teacher itself), then measured like any candidate (quality against the
    teacher's held-out targets, and its costs)."""

    def __init__(self, distilled: DistilledEvaluator, assistants: SuperLM, candidates: dict[float, Arch]) -> None:
        self.distilled, self.assistants, self.candidates = distilled, assistants, candidates
        self._teachers: dict[float, SuperLM | CachedTeacher] = {0.0: distilled.teacher}

    def teacher(self, sparsity: float) -> SuperLM | CachedTeacher:
        if sparsity not in self._teachers:
            arch = self.candidates[sparsity]
            net = build_supernet(self.assistants.extract(arch)).to(self.distilled.base.device)
            self._teachers[sparsity] = as_teacher(net)
        return self._teachers[sparsity]

    def measure(self, arch: Arch, ta_sparsity: float) -> Measurement:
        if ta_sparsity not in self.candidates:
            raise ValueError(f"ta_sparsity: got {ta_sparsity}; allowed: {sorted(self.candidates)}")
        return self.distilled.measure(arch, teacher=self.teacher(ta_sparsity))
