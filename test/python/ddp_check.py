"""Two ranks with torch.distributed (gloo, CPU) read one epoch from one server through
``CellMapIterableDataset`` + ``DataLoader``; each prints its batches' digests (test/python-client.test.ts
compares them with the in-process loader's)."""
import hashlib
import json
import os
import sys

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.utils.data import DataLoader


def run(rank: int, world: int, url: str, port: int, queue) -> None:
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    from cellmap_data_client import CellMapIterableDataset

    ds = CellMapIterableDataset(url)
    ds.set_epoch(2)
    recs = []
    for b in DataLoader(ds, batch_size=None, num_workers=0):
        recs.append({
            "position": b["position"],
            "idx": list(b["idx"]),
            "tensors": {k: [str(v.numpy().dtype), list(v.shape), hashlib.sha256(v.numpy().tobytes()).hexdigest()] for k, v in b.items() if isinstance(v, torch.Tensor)},
        })
    # Every rank has its share: the counts agree across ranks through the process group.
    n = torch.tensor([len(recs)])
    dist.all_reduce(n)
    queue.put({"rank": ds.rank, "world": ds.world_size, "transport": ds.used_transport, "recs": recs, "total": int(n)})
    dist.destroy_process_group()


if __name__ == "__main__":
    a = json.loads(sys.argv[1])
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=run, args=(r, 2, a["url"], a["port"], q)) for r in range(2)]
    for p in procs:
        p.start()
    results = [q.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(60)
    print(json.dumps(sorted(results, key=lambda r: r["rank"])))
