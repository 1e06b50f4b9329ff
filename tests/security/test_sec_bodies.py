"""Issue 9, finding 3: request bodies. The hub authenticates before it reads a body and caps every
body while it streams in, so a chunked body without Content-Length (that no header check can
bound) neither reaches memory unauthenticated nor beyond the cap authenticated. Measured on a
real hub process: its resident memory stays flat while hundreds of MiB are thrown at it."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from sec_access_support import raw_token

from apis_support import Keys

CHUNK = b"[" + b" " * (1 << 20) + b"]"  # 1 MiB of JSON-ish filler per chunk
ATTACK_BYTES = 256 << 20


@dataclass
class HubProcess:
    proc: subprocess.Popen[bytes]
    port: int

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise AssertionError("no VmRSS")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def hub_process(tmp_path: Path, keys: Keys) -> Iterator[HubProcess]:
    port = _free_port()
    config = tmp_path / "hub.yaml"
    config.write_text(
        f"ports: {{grpc: null, viss: null, http: {port}, accessories: 0}}\n"
        f"tokens: {{public_key: {keys.public_path}}}\n"
    )
    script = "from anycar.cli.main import main; main()"
    args = ["hub", "--config", str(config), "--brand", "byd_seal", "--db", str(tmp_path / "hub.sqlite3")]
    proc = subprocess.Popen([sys.executable, "-c", script, *args], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, "the hub exited"
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            assert time.monotonic() < deadline, "the hub did not start listening"
            time.sleep(0.1)
        yield HubProcess(proc, port)
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Outcome:
    status: int | None
    sent_mib: float
    peak_growth_mib: float


def chunked_attack(hub: HubProcess, method: str, path: str, headers: str = "") -> Outcome:
    """Send up to ATTACK_BYTES as a chunked body while sampling the hub's memory; the answer's
    status line is read concurrently (the hub may answer, and close, long before the end)."""
    baseline = hub.rss_mib()
    peak = baseline
    done = threading.Event()
    answer = bytearray()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, hub.rss_mib())
            time.sleep(0.01)

    sock = socket.create_connection(("127.0.0.1", hub.port), timeout=30)

    def read() -> None:
        with contextlib.suppress(OSError):
            while b"\r\n" not in answer and (data := sock.recv(4096)):
                answer.extend(data)

    threads = [threading.Thread(target=sample), threading.Thread(target=read)]
    for t in threads:
        t.start()
    sent = 0
    try:
        sock.sendall(
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Transfer-Encoding: chunked\r\n{headers}\r\n".encode()
        )
        frame = b"%x\r\n" % len(CHUNK) + CHUNK + b"\r\n"
        while sent < ATTACK_BYTES and b"\r\n" not in answer:
            sock.sendall(frame)
            sent += len(CHUNK)
        with contextlib.suppress(OSError):
            sock.sendall(b"0\r\n\r\n")
    except OSError:
        pass  # the hub answered and closed the connection: what it should do
    threads[1].join(30)
    time.sleep(0.2)
    peak = max(peak, hub.rss_mib())
    done.set()
    threads[0].join()
    sock.close()
    status = int(answer.split()[1]) if answer.startswith(b"HTTP/1.1 ") else None
    return Outcome(status, sent / (1 << 20), peak - baseline)


def test_an_unauthenticated_chunked_body_is_never_read(tmp_path: Path) -> None:
    keys = Keys(tmp_path)
    with hub_process(tmp_path, keys) as hub:
        for method, path in (("PUT", "/api/v1/grants/app"), ("POST", "/Vehicle/Cabin/Light/IsDomeOn")):
            outcome = chunked_attack(hub, method, path)
            assert outcome.status == 401, (path, outcome)
            assert outcome.peak_growth_mib < 32, (path, outcome)
        assert hub.proc.poll() is None
        token = raw_token(keys, "read")
        with httpx.Client(base_url=f"http://127.0.0.1:{hub.port}", timeout=10) as client:
            assert client.get("/api/v1/info", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_an_authenticated_chunked_body_stops_at_the_cap(tmp_path: Path) -> None:
    keys = Keys(tmp_path)
    owner = f"Authorization: Bearer {raw_token(keys, 'read actuate admin', subject='owner')}\r\n"
    with hub_process(tmp_path, keys) as hub:
        for method, path in (("PUT", "/api/v1/grants/app"), ("POST", "/Vehicle/Cabin/Light/IsDomeOn")):
            outcome = chunked_attack(hub, method, path, owner)
            assert outcome.status == 413, (path, outcome)
            assert outcome.peak_growth_mib < 32, (path, outcome)
        assert hub.proc.poll() is None
