"""Starting ``cellmap-data serve`` from Python: :func:`serve` runs the project's command line as a
child process that stops with this one, and returns once it listens."""
from __future__ import annotations

import collections
import ctypes
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from typing import Any, Deque, List, Optional, Sequence, Union

__all__ = ["Server", "ServerStartError", "serve"]

PathLike = Union[str, "os.PathLike[str]"]
_ADDRESS = re.compile(r"cellmap-data serve: (http://\S+)")


class ServerStartError(RuntimeError):
    """The server did not start: the message is the command line's own one-line error."""


def _cli() -> List[str]:
    """The command that runs the command line: ``CELLMAP_DATA_CLI`` (a ``.js``/``.mjs`` file is run
    with ``node``, anything else as an executable), else ``cellmap-data`` on ``PATH``."""
    given = os.environ.get("CELLMAP_DATA_CLI")
    if given:
        if given.endswith((".js", ".mjs", ".cjs")):
            node = shutil.which("node")
            if node is None:
                raise ServerStartError(f"CELLMAP_DATA_CLI is {given}, but there is no node on PATH to run it")
            if not os.path.exists(given):
                raise ServerStartError(f"CELLMAP_DATA_CLI names {given}, which does not exist (run npm run build first?)")
            return [node, given]
        return [given]
    found = shutil.which("cellmap-data")
    if found is None:
        raise ServerStartError("cellmap-data is not on PATH: set CELLMAP_DATA_CLI to the project's dist/cli/main.js or to a cellmap-data executable")
    return [found]


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """Linux: the child gets SIGTERM when this process dies (even by SIGKILL)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class Server:
    """A running ``cellmap-data serve``: ``url``, ``close()``; a context manager."""

    def __init__(self, process: subprocess.Popen, url: str, stderr: Deque[str]):
        self.process, self.url, self._stderr = process, url, stderr

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Server({self.url!r}, pid={self.process.pid}, {'running' if self.process.poll() is None else 'stopped'})"

    @property
    def log(self) -> List[str]:
        """The server's last lines on stderr (warnings)."""
        return list(self._stderr)

    def close(self, timeout: float = 10.0) -> None:
        """Stops the server (SIGTERM, then SIGKILL after ``timeout`` seconds) and waits for it."""
        p = self.process
        if p.poll() is None:
            try:
                p.stdin.close()  # type: ignore[union-attr]
            except Exception:
                pass
            p.terminate()
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


def _flag(name: str) -> str:
    return "--" + re.sub(r"(?<!^)(?=[A-Z])", "-", name).replace("_", "-").lower()


def serve(
    datasplit: Optional[PathLike] = None,
    config: Optional[Union[PathLike, dict]] = None,
    workers: Optional[int] = None,
    *,
    batch_size: Optional[int] = None,
    seed: Optional[int] = None,
    validate: bool = False,
    prefetch: Optional[int] = None,
    host: Optional[str] = None,
    port: Optional[int] = None,
    token: Optional[str] = None,
    timeout: float = 300.0,
    args: Sequence[str] = (),
    **options: Any,
) -> Server:
    """Starts ``cellmap-data serve`` for ``datasplit`` (a CSV) with ``config`` (a ``.json``/``.yaml``
    file, or a dict of the same options) and returns once it listens.

    Further keyword arguments are config options (``classes=[...]``, ``chunk_cache_bytes=...``;
    snake_case or camelCase, checked by the same schema): they override the config file's. A
    server that cannot start raises :class:`ServerStartError` with its one-line message (unknown
    options come with a did-you-mean). The server stops when :meth:`Server.close` is called, when
    this process exits, or when it is killed (even by SIGKILL): it watches its stdin, which only
    this process holds, and on Linux also gets SIGTERM when this process dies.
    """
    cmd = _cli() + ["serve", "--stop-on-stdin-close"]
    if config is None:
        raise ServerStartError("serve needs config= (a .json/.yaml file or a dict of options)")
    if isinstance(config, dict):
        options = {**config, **options}
    else:
        cmd += ["--config", os.fspath(config)]
    if options:
        cmd += ["--options", json.dumps(options)]
    if datasplit is not None:
        cmd += ["--datasplit", os.fspath(datasplit)]
    for name, value in (("workers", workers), ("batch_size", batch_size), ("seed", seed), ("prefetch", prefetch), ("host", host), ("port", port)):
        if value is not None:
            cmd += [_flag(name), str(value)]
    if validate:
        cmd.append("--validate")
    cmd += list(args)
    env = dict(os.environ)
    if token is not None:
        env["CELLMAP_DATA_TOKEN"] = token
    process = subprocess.Popen(
        cmd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
    )
    stderr: Deque[str] = collections.deque(maxlen=200)

    def drain() -> None:
        for line in iter(process.stderr.readline, b""):  # type: ignore[union-attr]
            text = line.decode("utf-8", "replace").rstrip()
            if text:
                stderr.append(text)

    threading.Thread(target=drain, name="cellmap-data-serve-stderr", daemon=True).start()
    deadline = time.monotonic() + timeout
    url: Optional[str] = None
    assert process.stdout is not None
    while url is None:
        line = process.stdout.readline()
        if not line:
            process.wait()
            time.sleep(0.05)  # let the stderr thread take the last lines
            message = next((s for s in reversed(stderr) if s.startswith("cellmap-data:")), stderr[-1] if stderr else f"exit status {process.returncode}")
            raise ServerStartError(message.removeprefix("cellmap-data: ") if hasattr(message, "removeprefix") else message)
        m = _ADDRESS.search(line.decode("utf-8", "replace"))
        if m:
            url = m.group(1)
        elif time.monotonic() > deadline:
            process.kill()
            raise ServerStartError(f"cellmap-data serve did not start within {timeout} s")
    # Keep reading stdout so the server never blocks on a full pipe.
    threading.Thread(target=lambda: [None for _ in iter(process.stdout.readline, b"")], daemon=True).start()  # type: ignore[union-attr]
    return Server(process, url, stderr)
