"""cellmap-data-client: PyTorch training on ``cellmap-data`` batches.

- :func:`serve` starts the loader (``cellmap-data serve``) as a child process that stops with
  this one, and returns a :class:`Server` with ``url`` and ``close()``.
- :class:`CellMapDataClient` iterates a server's batches, through shared memory on the same
  host and HTTP from anywhere (``transport="auto" | "shm" | "http"``).
- :class:`CellMapIterableDataset` (needs torch) is a ``torch.utils.data.IterableDataset`` of
  batches for ``DataLoader(ds, batch_size=None)``, ranked by ``torch.distributed``, with
  ``set_epoch`` and ``state_dict`` / ``load_state_dict``.
"""
from __future__ import annotations

from typing import Any

from ._wire import ServerError, parse_blob
from .client import CellMapDataClient, SlotsExhausted
from .server import Server, ServerStartError, serve

__all__ = ["CellMapDataClient", "CellMapIterableDataset", "Server", "ServerError", "ServerStartError", "SlotsExhausted", "parse_blob", "rank_and_world_size", "serve"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:  # torch is optional: imported on first use
    if name in ("CellMapIterableDataset", "rank_and_world_size"):
        from . import torch_dataset

        return getattr(torch_dataset, name)
    raise AttributeError(f"module 'cellmap_data_client' has no attribute {name!r}")
