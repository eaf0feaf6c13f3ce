"""Reference Python client of ``cellmap-data serve``.

Streams training batches from a cellmap-data server into a Python (PyTorch) training loop:
the same deterministic, rank-sharded, resumable batches as the in-process JavaScript loader,
with the data work kept out of the training process.

Standard library plus numpy; torch is optional. Each batch is a dict of numpy arrays (or torch
tensors when torch is importable and ``as_torch`` is not False), viewing the received bytes
without a copy, plus ``idx`` (dataset indices), ``metadata`` (one dict per sample), ``epoch``
and ``position``.

    client = CellMapDataClient("http://127.0.0.1:8765", rank=0, world_size=1)
    for batch in client:                    # the rest of the current epoch
        loss = model(batch["raw"], batch["gt"])
        checkpoint = client.state()         # {"epoch": E, "start": P, ...}
    # later: CellMapDataClient(url, **checkpoint) continues exactly where it left off

Wire format (docs/serve.md): ``GET /batches?epoch=E&start=P&rank=r&worldSize=w`` answers a
stream of frames, each an 8-byte little-endian length followed by one safetensors blob.
"""
from __future__ import annotations

import http.client
import json
import struct
import urllib.parse
from typing import Any, Dict, Iterator, Optional

import numpy as np

try:  # optional
    import torch  # type: ignore
except Exception:  # pragma: no cover - torch is not required
    torch = None

__all__ = ["CellMapDataClient", "ServerError"]

DTYPES = {"F32": np.float32, "F64": np.float64, "I32": np.int32, "U32": np.uint32}


class ServerError(RuntimeError):
    """The server answered with an error (4xx/5xx): ``status``, ``code`` and the message."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"HTTP {status} {code}: {message}")
        self.status, self.code = status, code


def _read_exactly(resp: http.client.HTTPResponse, n: int, buf: Optional[np.ndarray] = None) -> Optional[np.ndarray]:
    """n bytes from the response into ``buf`` (or a new uninitialised buffer: ``numpy.empty``
    skips the zero-fill ``bytearray`` does, which cost more than the socket reads). None at a
    clean end of stream; raises on a short read."""
    if buf is None or buf.nbytes < n:
        buf = np.empty(n, dtype=np.uint8)
    buf = buf[:n]
    view = memoryview(buf)
    got = 0
    while got < n:
        k = resp.readinto(view[got:])
        if not k:
            if got == 0:
                return None
            raise ConnectionError(f"stream ended inside a frame ({got} of {n} bytes)")
        got += k
    return buf


def parse_blob(blob: Any, as_torch: bool = False) -> Dict[str, Any]:
    """One safetensors blob (bytes-like or a uint8 array) as a batch dict (tensors view
    ``blob``, no copy)."""
    raw = np.frombuffer(blob, dtype=np.uint8) if not isinstance(blob, np.ndarray) else blob
    (header_len,) = struct.unpack_from("<Q", raw, 0)
    header = json.loads(raw[8 : 8 + header_len].tobytes().decode("utf-8"))
    meta = header.pop("__metadata__", {})
    base = 8 + header_len
    out: Dict[str, Any] = {}
    for name, t in header.items():
        dtype = np.dtype(DTYPES[t["dtype"]]).newbyteorder("<")
        start, end = t["data_offsets"]
        arr = raw[base + start : base + end].view(dtype).reshape(t["shape"])
        out[name] = torch.from_numpy(arr) if as_torch else arr
    samples = json.loads(meta.get("samples", "[]"))
    out["idx"] = [s.get("idx") for s in samples]
    out["metadata"] = samples
    out["epoch"] = int(meta["epoch"])
    out["position"] = int(meta["position"])
    return out


class CellMapDataClient:
    """Iterates batches served by ``cellmap-data serve``.

    ``rank``/``world_size`` pick this training rank's disjoint share of every epoch;
    ``epoch``/``start`` say where to begin (``start`` counted in batches). ``state()`` returns
    those four values for the batch after the last one consumed: pass them back as keyword
    arguments to resume.
    """

    def __init__(
        self,
        url: str,
        rank: int = 0,
        world_size: int = 1,
        epoch: int = 0,
        start: int = 0,
        token: Optional[str] = None,
        as_torch: Optional[bool] = None,
        timeout: float = 600.0,
        reuse_buffers: int = 0,
        worldSize: Optional[int] = None,  # the key state() uses, so state() can be splatted back
    ):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"expected an http:// URL, got {url!r}")
        self.host, self.port = parts.hostname, parts.port or 80
        self.rank, self.world_size = rank, worldSize if worldSize is not None else world_size
        self.epoch, self.position = epoch, start
        self.token = token
        self.as_torch = (torch is not None) if as_torch is None else bool(as_torch)
        if self.as_torch and torch is None:
            raise ImportError("as_torch=True needs torch")
        self.timeout = timeout
        # reuse_buffers=N: receive into N+1 buffers in turn, so a batch stays valid until N more
        # have been yielded (saves the page faults of a fresh buffer per batch). 0: every batch
        # gets its own buffer, valid as long as it is referenced.
        if reuse_buffers < 0:
            raise ValueError("reuse_buffers must be >= 0")
        self.reuse_buffers = reuse_buffers
        self._ring: Dict[int, np.ndarray] = {}
        self._turn = 0

    # -- plumbing -----------------------------------------------------------------------
    def _request(self, path: str, query: Dict[str, Any]) -> tuple:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        q = urllib.parse.urlencode(query)
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        conn.request("GET", f"{path}?{q}" if q else path, headers=headers)
        resp = conn.getresponse()
        if resp.status != 200:
            body = resp.read().decode("utf-8", "replace")
            conn.close()
            try:
                err = json.loads(body)["error"]
                raise ServerError(resp.status, err.get("code", "?"), err.get("message", body))
            except (ValueError, KeyError, TypeError):
                raise ServerError(resp.status, "?", body.strip())
        return conn, resp

    # -- API ----------------------------------------------------------------------------
    def info(self) -> Dict[str, Any]:
        """Array names, per-sample shapes and dtypes, classes, batch size, epoch length."""
        conn, resp = self._request("/info", {})
        try:
            return json.loads(resp.read())
        finally:
            conn.close()

    def state(self) -> Dict[str, int]:
        """Where the next batch comes from: pass back as ``CellMapDataClient(url, **state)``."""
        return {"epoch": self.epoch, "start": self.position, "rank": self.rank, "worldSize": self.world_size}

    def epoch_batches(self) -> Iterator[Dict[str, Any]]:
        """The rest of the current epoch from the current position, then the next epoch starts."""
        conn, resp = self._request(
            "/batches", {"epoch": self.epoch, "start": self.position, "rank": self.rank, "worldSize": self.world_size}
        )
        try:
            while True:
                head = _read_exactly(resp, 8)
                if head is None:
                    break
                (n,) = struct.unpack("<Q", head)
                slot = self._turn % (self.reuse_buffers + 1)
                self._turn += 1
                blob = _read_exactly(resp, n, self._ring.get(slot) if self.reuse_buffers else None)
                if blob is None:
                    raise ConnectionError("stream ended before a frame's blob")
                if self.reuse_buffers:
                    self._ring[slot] = blob.base if blob.base is not None else blob
                batch = parse_blob(blob, self.as_torch)
                self.position = batch["position"] + 1
                yield batch
        finally:
            conn.close()
        self.epoch, self.position = self.epoch + 1, 0

    def __iter__(self) -> Iterator[Dict[str, Any]]:
        return self.epoch_batches()
