"""Dataset adapters. Each module registers one or more adapters with :func:`register_adapter`."""

from vidpop.data.adapters.base import Adapter, adapter_names, get_adapter, load_dataset, register_adapter

__all__ = ["Adapter", "adapter_names", "get_adapter", "load_dataset", "register_adapter"]
