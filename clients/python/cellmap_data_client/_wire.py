"""The wire formats of ``cellmap-data serve`` (docs/serve.md): safetensors blobs on the HTTP
stream, and the messages of the shared-memory transport."""
from __future__ import annotations

import json
import struct
from typing import Any, Dict, List, Optional

import numpy as np

try:  # optional
    import torch  # type: ignore
except Exception:  # pragma: no cover - torch is not required
    torch = None  # type: ignore

DTYPES = {"F32": np.float32, "F64": np.float64, "I32": np.int32, "U32": np.uint32}


class ServerError(RuntimeError):
    """The server answered with an error: ``status``, ``code`` and the message."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"HTTP {status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


def error_from_body(status: int, body: bytes) -> ServerError:
    """The :class:`ServerError` of an error answer (one line of JSON, else the text)."""
    text = body.decode("utf-8", "replace")
    try:
        err = json.loads(text)["error"]
        return ServerError(status, err.get("code", "?"), err.get("message", text))
    except (ValueError, KeyError, TypeError):
        return ServerError(status, "?", text.strip())


def tensors_from(raw: Any, header: Dict[str, Any], base: int, as_torch: bool) -> Dict[str, Any]:
    """The tensors a safetensors-style header describes, as views of ``raw`` (no copy)."""
    out: Dict[str, Any] = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        dtype = np.dtype(DTYPES[t["dtype"]]).newbyteorder("<")
        start, end = t["data_offsets"]
        count = (end - start) // dtype.itemsize
        arr = np.frombuffer(raw, dtype=dtype, count=count, offset=base + start).reshape(t["shape"])
        out[name] = torch.from_numpy(arr) if as_torch else arr
    return out


def with_samples(out: Dict[str, Any], samples: List[Dict[str, Any]], epoch: int, position: int) -> Dict[str, Any]:
    """Adds ``idx``, ``metadata``, ``epoch`` and ``position`` to a batch dict."""
    out["idx"] = [s.get("idx") for s in samples]
    out["metadata"] = samples
    out["epoch"] = int(epoch)
    out["position"] = int(position)
    return out


def parse_blob(blob: Any, as_torch: bool = False) -> Dict[str, Any]:
    """One safetensors blob (bytes-like or a uint8 array) as a batch dict (tensors view
    ``blob``, no copy)."""
    raw = np.frombuffer(blob, dtype=np.uint8) if not isinstance(blob, np.ndarray) else blob
    (header_len,) = struct.unpack_from("<Q", raw, 0)
    header = json.loads(raw[8 : 8 + header_len].tobytes().decode("utf-8"))
    meta = header.pop("__metadata__", {})
    out = tensors_from(raw, header, 8 + header_len, as_torch)
    return with_samples(out, json.loads(meta.get("samples", "[]")), meta["epoch"], meta["position"])


def torch_or_none() -> Optional[Any]:
    return torch
