"""Checks of the shared-memory transport run by test/python-client.test.ts (argv[1]: JSON with
the server's url): slot lifetime follows CPython reference counting, kept batches are never
overwritten, holding every slot raises instead of hanging."""
import json
import sys

import numpy as np

from cellmap_data_client import CellMapDataClient, SlotsExhausted

a = json.loads(sys.argv[1])
url = a["url"]
out = {}

# 1. A batch's slot is held while any of its arrays (or a view of one) lives.
c = CellMapDataClient(url, transport="shm", as_torch=a["torch"], epoch=5)
it = iter(c)
b = next(it)
view = b["raw"][0]
del b
out["held_with_view"] = c.held_slots
del view
out["held_after_view"] = c.held_slots
it.close()

# 2. Batches kept across epochs are never overwritten (compared with HTTP's copies), in place in
#    the loader's pool (zero copy) and copied into slots alike.
ref = {tuple(b["idx"]): {n: b[n].copy() for n in ("raw", "gt")} for e in (6, 7) for b in CellMapDataClient(url, transport="http", as_torch=False, epoch=e)}
for zero_copy in (True, False):
    keep = []
    for e in (6, 7):
        c = CellMapDataClient(url, transport="shm", as_torch=False, epoch=e, slots=6, zero_copy=zero_copy)
        for k, b in enumerate(c):
            if k % 2 == 0 and len(keep) < 4:
                keep.append(b)
    out[f"zero_copy_{zero_copy}"] = c.zero_copy
    out[f"kept_{zero_copy}"] = len(keep)
    out[f"kept_intact_{zero_copy}"] = all(all(np.array_equal(b[n], ref[tuple(b["idx"])][n]) for n in ("raw", "gt")) for b in keep)
    del keep

# 3. Holding every slot raises SlotsExhausted (it does not hang).
c = CellMapDataClient(url, transport="shm", as_torch=False, epoch=7, slots=3, zero_copy=False)
held = []
try:
    for b in c:
        held.append(b)
    out["exhausted"] = "no error"
except SlotsExhausted as e:
    out["exhausted"] = str(e)
out["held_when_exhausted"] = len(held)
print(json.dumps(out))
