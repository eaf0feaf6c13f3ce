"""Checks of ``cellmap_data_client.serve`` run by test/python-client.test.ts (argv[1]: JSON with
the datasplit, config and mode)."""
import json
import os
import sys
import time

from cellmap_data_client import CellMapDataClient, ServerStartError, serve

a = json.loads(sys.argv[1])
mode = a["mode"]

if mode == "bad-config":
    try:
        serve(a["datasplit"], a["config"], 0, clases=["mito"])
        print(json.dumps({"error": None}))
    except ServerStartError as e:
        print(json.dumps({"error": str(e)}))

elif mode == "orphan":
    # Start a server, report its pid, then wait to be killed.
    s = serve(a["datasplit"], a["config"], 0)
    print(json.dumps({"url": s.url, "pid": s.process.pid}), flush=True)
    time.sleep(600)

elif mode == "server-dies":
    s = serve(a["datasplit"], a["config"], 0)
    c = CellMapDataClient(s.url, transport=a["transport"], as_torch=False)
    got, error = 0, None
    t0 = time.monotonic()
    try:
        for b in c:
            got += 1
            if got == 2:
                s.process.kill()
    except Exception as e:  # noqa: BLE001 - the kind is what is checked
        error = f"{type(e).__name__}: {e}"
    print(json.dumps({"got": got, "error": error, "seconds": time.monotonic() - t0}))

elif mode == "context":
    with serve(a["datasplit"], a["config"], 1, batch_size=2) as s:
        info = CellMapDataClient(s.url).info()
        n = sum(1 for _ in CellMapDataClient(s.url, as_torch=False, transport="shm"))
        pid = s.process.pid
    time.sleep(0.5)
    alive = True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        alive = False
    print(json.dumps({"batchSize": info["batchSize"], "batches": n, "batchesPerEpoch": info["batchesPerEpoch"], "aliveAfterClose": alive}))
