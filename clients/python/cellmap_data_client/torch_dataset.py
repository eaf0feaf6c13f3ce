"""``CellMapIterableDataset``: the batches of a server as a ``torch.utils.data.IterableDataset``,
for ``DataLoader(ds, batch_size=None)``, ranked by ``torch.distributed`` and resumable."""
from __future__ import annotations

import os
from typing import Any, Dict, Iterator, Optional, Union

import torch
from torch.utils.data import IterableDataset, get_worker_info

from .client import CellMapDataClient
from .server import Server

__all__ = ["CellMapIterableDataset", "rank_and_world_size"]


def rank_and_world_size() -> "tuple[int, int]":
    """This process's rank and world size: from ``torch.distributed`` when it is initialised,
    else from the ``RANK`` / ``WORLD_SIZE`` environment, else 0 / 1."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    rank, world = os.environ.get("RANK"), os.environ.get("WORLD_SIZE")
    if rank is not None and world is not None:
        return int(rank), int(world)
    return 0, 1


class CellMapIterableDataset(IterableDataset):
    """The batches a ``cellmap-data serve`` server gives this rank, epoch by epoch.

    Each item is a whole batch: a dict of tensors (the served arrays) plus ``idx``,
    ``metadata``, ``epoch`` and ``position``. Use it with ``DataLoader(ds, batch_size=None,
    pin_memory=...)`` and ``num_workers=0``: the server's worker threads do the reading.

    One iteration is the rest of the current epoch, from the current position. ``set_epoch(e)``
    selects the epoch, as with ``DistributedSampler``; without it, each full iteration moves on
    to the next epoch. ``state_dict()`` / ``load_state_dict()`` save and restore the position
    exactly (torchdata's ``StatefulDataLoader`` calls them).
    """

    def __init__(
        self,
        server_or_url: Union[Server, str],
        epoch: int = 0,
        *,
        rank: Optional[int] = None,
        world_size: Optional[int] = None,
        transport: str = "auto",
        slots: Optional[int] = None,
        token: Optional[str] = None,
        timeout: float = 600.0,
    ):
        super().__init__()
        self.url = server_or_url.url if isinstance(server_or_url, Server) else str(server_or_url)
        r, w = rank_and_world_size()
        self.rank = r if rank is None else rank
        self.world_size = w if world_size is None else world_size
        if not (0 <= self.rank < self.world_size):
            raise ValueError(f"rank must be in [0, {self.world_size}), got {self.rank}")
        self.epoch, self.position = epoch, 0
        self.transport, self.slots, self.token, self.timeout = transport, slots, token, timeout
        #: The transport the last iteration used ("shm" or "http").
        self.used_transport: Optional[str] = None

    def set_epoch(self, epoch: int) -> None:
        """Iterate epoch ``epoch`` next, from its start."""
        self.epoch, self.position = int(epoch), 0

    def state_dict(self) -> Dict[str, int]:
        """Where the next batch comes from (epoch and position on this rank)."""
        return {"epoch": self.epoch, "position": self.position, "rank": self.rank, "world_size": self.world_size}

    def load_state_dict(self, state: Dict[str, int]) -> None:
        """Resume at ``state`` (from :meth:`state_dict`)."""
        if state.get("world_size", self.world_size) != self.world_size or state.get("rank", self.rank) != self.rank:
            raise ValueError(f"state is of rank {state.get('rank')} of {state.get('world_size')}, this dataset is rank {self.rank} of {self.world_size}")
        self.epoch, self.position = int(state["epoch"]), int(state["position"])

    def info(self) -> Dict[str, Any]:
        """The server's ``/info``: arrays, classes, batch size, epoch length."""
        return CellMapDataClient(self.url, token=self.token, transport="http", as_torch=False).info()

    def __iter__(self) -> Iterator[Dict[str, Any]]:
        if get_worker_info() is not None:
            raise RuntimeError("CellMapIterableDataset reads through the server's worker threads: use DataLoader(..., num_workers=0)")
        client = CellMapDataClient(
            self.url, rank=self.rank, world_size=self.world_size, epoch=self.epoch, start=self.position,
            token=self.token, as_torch=True, timeout=self.timeout, transport=self.transport, slots=self.slots,
        )
        return _Batches(self, client)


class _Batches:
    """The iterator of one pass: keeps no reference to a batch it has handed out (a shared-memory
    slot is freed when the caller's last reference goes)."""

    def __init__(self, ds: CellMapIterableDataset, client: CellMapDataClient):
        self.ds, self.client, self.it = ds, client, client.epoch_batches()

    def __iter__(self) -> "_Batches":
        return self

    def __next__(self) -> Dict[str, Any]:
        try:
            batch = next(self.it)
        except StopIteration:
            self.ds.epoch, self.ds.position = self.ds.epoch + 1, 0
            raise
        self.ds.used_transport = self.client.used_transport
        # The position counts batches handed out: state_dict() taken after a batch resumes
        # with the next one.
        self.ds.position = batch["position"] + 1
        return batch
