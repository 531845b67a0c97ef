"""Greedy continuations: how a user checks a decoder student, and how export is checked.

`greedy_supernet` decodes from a supernet's active sub-network with a plain loop (no KV cache);
`greedy_model` decodes from a stock HF model with `generate`, as a user would. Export is right
when both give the same tokens; both are cut at the first end-of-sequence token, since
`generate` stops there and the loop does not.
"""

from __future__ import annotations

import torch
from torch import Tensor
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from search_spaces import Arch
from supernet.superlm import SuperLM

PROMPTS = ("The movie was", "I watched this film last night and", "The best part of the story is")


def _cut_at_eos(tokens: list[int], eos: int | None) -> list[int]:
    return tokens[: tokens.index(eos) + 1] if eos is not None and eos in tokens else tokens


@torch.no_grad()
def greedy_supernet(supernet: SuperLM, arch: Arch, ids: Tensor, new_tokens: int, eos: int | None) -> list[int]:
    """The `new_tokens` greedy next tokens of sub-network `arch` after prompt `ids` (1, T)."""
    supernet.set_active(arch)
    out = ids
    for _ in range(new_tokens):
        logits = supernet(out, torch.ones_like(out), compute_logits=True).logits
        out = torch.cat([out, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    return _cut_at_eos(out[0, ids.shape[1]:].tolist(), eos)


@torch.no_grad()
def greedy_model(model: PreTrainedModel, ids: Tensor, new_tokens: int, eos: int | None) -> list[int]:
    out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens, do_sample=False,
                         pad_token_id=eos)
    return _cut_at_eos(out[0, ids.shape[1]:].tolist(), eos)


def continuations(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, prompts: tuple[str, ...] = PROMPTS,
                  new_tokens: int = 20) -> dict[str, str]:
    """prompt -> the model's greedy continuation, as text."""
    model.eval()
    texts = {}
    for prompt in prompts:
        ids = tokenizer(prompt, return_tensors="pt").input_ids.to(model.device)
        texts[prompt] = tokenizer.decode(greedy_model(model, ids, new_tokens, tokenizer.eos_token_id),
                                         skip_special_tokens=True)
    return texts
