"""CellMapIterableDataset without a process group (run by test/python-client.test.ts): rank and
world size from RANK / WORLD_SIZE, state_dict() / load_state_dict() resume exactly, set_epoch,
and a DataLoader with worker processes is refused."""
import json
import os
import sys

import torch
from torch.utils.data import DataLoader

from cellmap_data_client import CellMapIterableDataset

url = sys.argv[1]
out = {}


def ids(batches):
    return [(b["epoch"], b["position"], list(b["idx"]), float(b["raw"].sum())) for b in batches]


os.environ["RANK"], os.environ["WORLD_SIZE"] = "1", "2"
ds = CellMapIterableDataset(url)
out["rank"] = [ds.rank, ds.world_size]
ds.set_epoch(4)
full = ids(DataLoader(ds, batch_size=None))
out["after_epoch"] = ds.state_dict()

ds = CellMapIterableDataset(url)
ds.set_epoch(4)
first = []
for b in DataLoader(ds, batch_size=None):
    first.append(b)
    if len(first) == 2:
        break
state = ds.state_dict()
del first[2:]
resumed = CellMapIterableDataset(url)
resumed.load_state_dict(state)
rest = ids(DataLoader(resumed, batch_size=None))
out["state"] = state
out["resume_exact"] = ids(first) + rest == full
out["batches"] = len(full)
out["types"] = sorted({type(v).__name__ for v in next(iter(DataLoader(ds, batch_size=None))).values()})
try:
    next(iter(DataLoader(CellMapIterableDataset(url), batch_size=None, num_workers=1)))
    out["workers"] = "accepted"
except Exception as e:  # noqa: BLE001
    out["workers"] = str(e)
print(json.dumps(out))
