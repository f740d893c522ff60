"""Layer 4. Modules and layers: parameters, buffers, genetic and dense layers, LIF, pools, blocks,
and a population of networks stacked into one (``population``). May import layers 1-4.

The spiking convention (DESIGN.md section 3): stateless layers run on the merged
[T*N, ...] view; LIF modules split the time axis off and back.
"""
from gee_ref.nn.block import BasicBlock
from gee_ref.nn.dense import Conv2d, Linear
from gee_ref.nn.factory import ROLES, SCOPES, LayerFactory
from gee_ref.nn.genetic import GeneBank, GeneticConv2d, GeneticLinear
from gee_ref.init.kaiming import kaiming_sigma, truncation_variance_factor
from gee_ref.nn.lif import LIF, lif_modules, set_soft_lif, set_time_steps
from gee_ref.nn.module import Module, Parameter, Sequential
from gee_ref.nn.network import SpikingNetwork
from gee_ref.nn.norm import BatchNorm
from gee_ref.nn.pool import AvgPool2d, Flatten, GlobalAvgPool2d, MaxPool2d
from gee_ref.nn.time import merge_time, repeat_time, split_time
from gee_ref.nn.weight_layer import WeightLayer

__all__ = [
    "AvgPool2d", "BasicBlock", "BatchNorm", "Conv2d", "Flatten", "GeneBank", "GeneticConv2d",
    "GeneticLinear", "GlobalAvgPool2d", "LIF", "LayerFactory", "Linear", "MaxPool2d", "Module",
    "Parameter", "ROLES", "SCOPES", "Sequential", "SpikingNetwork", "WeightLayer", "kaiming_sigma",
    "lif_modules", "merge_time", "repeat_time", "set_soft_lif", "set_time_steps", "split_time",
    "truncation_variance_factor",
]
