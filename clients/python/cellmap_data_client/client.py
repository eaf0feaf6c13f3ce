"""``CellMapDataClient``: iterates the batches of a ``cellmap-data serve`` server, through shared
memory when the server runs on this host, else over HTTP (docs/serve.md)."""
from __future__ import annotations

import ctypes
import gc
import http.client
import json
import mmap
import os
import socket
import struct
import threading
import urllib.parse
import weakref
from typing import Any, Dict, Iterator, Optional, Tuple

import numpy as np

from ._wire import ServerError, error_from_body, parse_blob, tensors_from, torch_or_none, with_samples

__all__ = ["CellMapDataClient", "ServerError", "SlotsExhausted"]

SHM_PROTOCOL = "cellmap-shm/1"
SHM_READY = 0xFFFFFFFE
SHM_MISMATCH = 0xFFFFFFFD
SHM_READY_COPY = 0xFFFFFFFC
TRANSPORTS = ("auto", "shm", "http")


class SlotsExhausted(RuntimeError):
    """Every shared-memory slot holds a batch the program still references, so the server has
    nowhere to put the next one. Drop some batches (or their tensors), or ask for more ``slots``."""


class _NotSameHost(Exception):
    """The server's slot file is not visible here: another host (``auto`` falls back to HTTP)."""


def _read_exactly(resp: Any, n: int, buf: Optional[np.ndarray] = None) -> Optional[np.ndarray]:
    """n bytes from ``resp`` (``readinto``) into ``buf`` (or a new uninitialised buffer). None at a
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
            raise ConnectionError(f"the server closed the stream inside a frame ({got} of {n} bytes)")
        got += k
    return buf


class _Releaser:
    """Tells the server which slots are free again (called from finalizers, any thread)."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.lock = threading.RLock()  # a finalizer may run inside take() (a collection)
        #: Batches out here by id: True for those in a slot of the stream's file.
        self.held: Dict[int, bool] = {}
        self.open = True

    @property
    def slots_held(self) -> int:
        return sum(1 for in_slot in self.held.values() if in_slot)

    def take(self, batch_id: int, in_slot: bool) -> None:
        with self.lock:
            self.held[batch_id] = in_slot

    def free(self, batch_id: int) -> None:
        with self.lock:
            self.held.pop(batch_id, None)
            if not self.open:
                return
            try:
                self.sock.sendall(struct.pack("<I", batch_id))
            except OSError:
                self.open = False
            if self.finished and not self.held:
                self._close()

    def send(self, word: int) -> None:
        with self.lock:
            self.sock.sendall(struct.pack("<I", word))

    finished = False

    def close(self) -> None:
        """Ends the stream: at once when no batch is held here, else when the last is freed (the
        server keeps a held batch's memory until then, and reuses it after)."""
        with self.lock:
            self.finished = True
            if not self.held:
                self._close()

    def _close(self) -> None:
        self.open = False
        try:
            self.sock.close()
        except OSError:
            pass


class CellMapDataClient:
    """Iterates batches served by ``cellmap-data serve``.

    ``rank``/``world_size`` pick this training rank's disjoint share of every epoch;
    ``epoch``/``start`` say where to begin (``start`` counted in batches). ``state()`` returns
    those four values for the batch after the last one consumed: pass them back as keyword
    arguments to resume.

    ``transport``: ``"shm"`` receives the tensor bytes through a shared-memory file on the
    server's host (a batch stays valid while any of its arrays or tensors is referenced; its slot
    is freed when the last one goes); ``"http"`` reads them off the socket; ``"auto"`` (default)
    uses shared memory when the server runs on this host, else HTTP. Both give the same batches,
    byte for byte. ``slots``: batches the server may have in its slot file for this client at
    once (default: the server's choice, read-ahead plus 6). With the server's native addon,
    batches arrive in place in the loader's batch pool and no slot is used (``zero_copy=False``
    asks for copies into slots instead).
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
        transport: str = "auto",
        slots: Optional[int] = None,
        zero_copy: bool = True,
        worldSize: Optional[int] = None,  # the key state() uses, so state() can be splatted back
    ):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"expected an http:// URL, got {url!r}")
        if transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {', '.join(TRANSPORTS)}, got {transport!r}")
        self.host, self.port = parts.hostname, parts.port or 80
        self.rank, self.world_size = rank, worldSize if worldSize is not None else world_size
        if not (0 <= self.rank < self.world_size):
            raise ValueError(f"rank must be in [0, {self.world_size}), got {self.rank}")
        self.epoch, self.position = epoch, start
        self.token = token
        torch = torch_or_none()
        self.as_torch = (torch is not None) if as_torch is None else bool(as_torch)
        if self.as_torch and torch is None:
            raise ImportError("as_torch=True needs torch")
        self.timeout = timeout
        self.transport = transport
        self.slots = slots
        self.want_zero_copy = zero_copy
        # HTTP only: reuse_buffers=N receives into N+1 buffers in turn, so a batch stays valid
        # until N more have been yielded. 0: every batch gets its own buffer.
        if reuse_buffers < 0:
            raise ValueError("reuse_buffers must be >= 0")
        self.reuse_buffers = reuse_buffers
        self._ring: Dict[int, np.ndarray] = {}
        self._turn = 0
        #: The transport the last stream used ("shm" or "http").
        self.used_transport: Optional[str] = None
        self._releaser: Optional[_Releaser] = None
        #: Whether the last shared-memory stream received batches in place (the loader's pool
        #: mapped: the server copies nothing), rather than copied into slots.
        self.zero_copy = False

    # -- plumbing -----------------------------------------------------------------------
    def _query(self, extra: Optional[Dict[str, Any]] = None) -> str:
        q = {"epoch": self.epoch, "start": self.position, "rank": self.rank, "worldSize": self.world_size, **(extra or {})}
        return urllib.parse.urlencode(q)

    def _headers(self) -> Dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def _request(self, path: str, query: str = "") -> Tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        conn.request("GET", f"{path}?{query}" if query else path, headers=self._headers())
        resp = conn.getresponse()
        if resp.status != 200:
            body = resp.read()
            conn.close()
            raise error_from_body(resp.status, body)
        return conn, resp

    # -- API ----------------------------------------------------------------------------
    def info(self) -> Dict[str, Any]:
        """Array names, per-sample shapes and dtypes, classes, batch size, epoch length."""
        conn, resp = self._request("/info")
        try:
            return json.loads(resp.read())
        finally:
            conn.close()

    @property
    def held_slots(self) -> int:
        """Batches of the current shared-memory stream still referenced here (each holds its
        memory on the server: a slot of the stream's file, or a buffer of the loader's pool)."""
        return len(self._releaser.held) if self._releaser is not None else 0

    def state(self) -> Dict[str, int]:
        """Where the next batch comes from: pass back as ``CellMapDataClient(url, **state)``."""
        return {"epoch": self.epoch, "start": self.position, "rank": self.rank, "worldSize": self.world_size}

    def epoch_batches(self) -> Iterator[Dict[str, Any]]:
        """The rest of the current epoch from the current position; then the next epoch starts."""
        if self.transport != "http":
            try:
                yield from self._shm_batches()
                return
            except _NotSameHost:
                if self.transport == "shm":
                    raise ConnectionError(f"transport='shm' needs the server on this host; {self.host}:{self.port} is not (use 'auto' or 'http')") from None
        yield from self._http_batches()

    def __iter__(self) -> Iterator[Dict[str, Any]]:
        return self.epoch_batches()

    # -- HTTP ---------------------------------------------------------------------------
    def _http_batches(self) -> Iterator[Dict[str, Any]]:
        self.used_transport = "http"
        conn, resp = self._request("/batches", self._query())
        total = int(resp.getheader("X-Cellmap-Batches", "-1"))
        try:
            while True:
                head = _read_exactly(resp, 8)
                if head is None:
                    if 0 <= total and self.position < total:
                        raise ConnectionError(f"the server closed the stream before the end of the epoch ({self.position} of {total} batches)")
                    break
                (n,) = struct.unpack("<Q", head)
                slot = self._turn % (self.reuse_buffers + 1)
                self._turn += 1
                blob = _read_exactly(resp, n, self._ring.get(slot) if self.reuse_buffers else None)
                if blob is None:
                    raise ConnectionError("the server closed the stream before a frame's blob")
                if self.reuse_buffers:
                    self._ring[slot] = blob.base if blob.base is not None else blob
                batch = parse_blob(blob, self.as_torch)
                self.position = batch["position"] + 1
                yield batch
                del batch  # a suspended generator must not keep the batch alive
        finally:
            conn.close()
        self.epoch, self.position = self.epoch + 1, 0

    # -- shared memory ------------------------------------------------------------------
    def _upgrade(self) -> Tuple[socket.socket, bytes]:
        """Opens the shared-memory stream: the upgrade request, and the 101 answer."""
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        extra = {"slots": self.slots} if self.slots is not None else {}
        lines = [f"GET /batches?{self._query(extra)} HTTP/1.1", f"Host: {self.host}:{self.port}", "Connection: Upgrade", f"Upgrade: {SHM_PROTOCOL}"]
        lines += [f"{k}: {v}" for k, v in self._headers().items()]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("ascii"))
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                sock.close()
                raise ConnectionError("the server closed the connection before answering")
            buf += chunk
        head, rest = buf.split(b"\r\n\r\n", 1)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ")[1])
        if status != 101:
            headers = {k.strip().lower(): v.strip() for k, v in (h.split(":", 1) for h in header_lines if ":" in h)}
            length = int(headers.get("content-length", "0"))
            while len(rest) < length:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                rest += chunk
            sock.close()
            raise error_from_body(status, rest[:length])
        return sock, rest

    def _shm_batches(self) -> Iterator[Dict[str, Any]]:
        sock, pending = self._upgrade()
        reader = _MessageReader(sock, pending)
        releaser = self._releaser = _Releaser(sock)
        try:
            hello = reader.next()
            if hello is None or hello.get("type") != "hello":
                raise ConnectionError(f"expected the server's hello, got {hello!r}")
            mm = _map_if_same(hello)
            if mm is None:
                releaser.send(SHM_MISMATCH)
                raise _NotSameHost()
            pool = _map_pool(hello.get("pool")) if self.want_zero_copy else None
            releaser.send(SHM_READY if pool is not None else SHM_READY_COPY)
            self.used_transport = "shm"
            #: Whether batches arrive in place, in the loader's pool (no copy on the server).
            self.zero_copy = pool is not None
            slots = hello["slots"]
            while True:
                if releaser.slots_held >= slots:
                    gc.collect()  # batches only cycles keep alive
                    if releaser.slots_held >= slots:
                        raise SlotsExhausted(
                            f"all {slots} shared-memory slots hold batches this program still references; "
                            "drop some batches (or their tensors), or pass slots= a larger number"
                        )
                msg = reader.next()
                if msg is None:
                    raise ConnectionError("the server closed the stream before the end of the epoch")
                kind = msg.get("type")
                if kind == "end":
                    break
                if kind == "error":
                    raise ServerError(500, "STREAM", msg.get("message", "stream failed"))
                if kind != "batch":
                    raise ConnectionError(f"unexpected message from the server: {kind!r}")
                self.position = int(msg["position"]) + 1
                # No name of this frame refers to the batch while it is out there (a suspended
                # generator keeps its locals): the slot is freed when the caller's last reference goes.
                in_slot = msg["where"] == "slot"
                yield _slot_batch(mm if in_slot else pool, int(msg["base"]), in_slot, msg, releaser, self.as_torch)
        finally:
            releaser.close()
        self.epoch, self.position = self.epoch + 1, 0


def _slot_batch(mm: Any, start: int, in_slot: bool, msg: Dict[str, Any], releaser: _Releaser, as_torch: bool) -> Dict[str, Any]:
    """The batch of a ``batch`` message: its tensors view the mapped memory at ``start``; the
    server may reuse that memory (``releaser``) once the last of them, or of views of them, is
    gone."""
    batch_id, tensors = int(msg["id"]), msg["tensors"]
    used = max((t["data_offsets"][1] for t in tensors.values()), default=1)
    region = (ctypes.c_ubyte * max(used, 1)).from_buffer(mm, start)
    releaser.take(batch_id, in_slot)
    weakref.finalize(region, releaser.free, batch_id)
    return with_samples(tensors_from(region, tensors, 0, as_torch), msg["samples"], msg["epoch"], msg["position"])


class _MessageReader:
    """Length-prefixed JSON messages from the server (4-byte little-endian length)."""

    def __init__(self, sock: socket.socket, pending: bytes):
        self.sock, self.buf = sock, bytearray(pending)

    def _fill(self, n: int) -> bool:
        while len(self.buf) < n:
            try:
                chunk = self.sock.recv(1 << 20)
            except OSError:
                return False
            if not chunk:
                return False
            self.buf += chunk
        return True

    def next(self) -> Optional[Dict[str, Any]]:
        if not self._fill(4):
            return None
        (n,) = struct.unpack_from("<I", self.buf, 0)
        if not self._fill(4 + n):
            return None
        body = bytes(self.buf[4 : 4 + n])
        del self.buf[: 4 + n]
        return json.loads(body)


def _map_pool(pool: Optional[Dict[str, Any]]) -> Optional[mmap.mmap]:
    """Maps the loader's batch pool (``/proc/<pid>/fd/<fd>`` of the server), or None."""
    if not pool:
        return None
    try:
        fd = os.open(f"/proc/{int(pool['pid'])}/fd/{int(pool['fd'])}", os.O_RDWR)
    except OSError:
        return None
    try:
        if os.fstat(fd).st_size < pool["bytes"]:
            return None
        return mmap.mmap(fd, pool["bytes"], mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    except OSError:
        return None
    finally:
        os.close(fd)


def _map_if_same(hello: Dict[str, Any]) -> Optional[mmap.mmap]:
    """Maps the server's slot file when it is visible here with the server's nonce, else None."""
    try:
        fd = os.open(hello["path"], os.O_RDWR)
    except OSError:
        return None
    try:
        size = os.fstat(fd).st_size
        if size < hello["offset"] + hello["slots"] * hello["slotBytes"]:
            return None
        mm = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    finally:
        os.close(fd)
    nonce = hello["nonce"].encode("ascii")
    if mm[: len(nonce)] != nonce:
        mm.close()
        return None
    return mm
