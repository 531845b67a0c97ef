"""What can be searched: architectures, spaces and their partitions, exact cost.

Pure Python plus numpy and PyYAML; imports neither torch nor the other project packages.
"""

from search_spaces.arch import Arch, InvalidArchError
from search_spaces.baselines import baselines_under, meets, uniformity
from search_spaces.cost import COSTS, ParamCount, costs, flops, params
from search_spaces.hf_names import arch_from_hf_config, hf_config_overrides
from search_spaces.hull import SupernetShape, hull
from search_spaces.layers import LAYER_POLICIES, layer_indices
from search_spaces.space import ArchList, ArchSet, Choices, InvalidSpaceError, SearchSpace, SubSpace

__all__ = [
    "Arch", "InvalidArchError", "COSTS", "ParamCount", "costs", "flops", "params", "arch_from_hf_config",
    "hf_config_overrides", "LAYER_POLICIES", "layer_indices", "Choices", "InvalidSpaceError",
    "ArchList", "ArchSet", "SearchSpace", "SubSpace", "SupernetShape", "hull", "baselines_under", "meets",
    "uniformity",
]
