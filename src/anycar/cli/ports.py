"""Is a port free? Checked before a hub starts, so a taken port is a sentence, not a traceback."""

from __future__ import annotations

import socket


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def busy(host: str, ports: dict[str, int | None]) -> dict[str, int]:
    """The configured (non-zero) ports another program holds, by server name."""
    return {name: port for name, port in ports.items() if port and not port_free(host, port)}
