"""Hosts on one box: Linux network namespaces on a bridge, each with an address of its own.

    bridge (root namespace)  10.213.0.1  the broker and store    10.213.0.254  the provider
      ├─ veth ── host a      10.213.0.11
      └─ veth ── host b      10.213.0.12

A host's processes run under `ip netns exec`, so every packet they send to Redis crosses a link
the test controls. `partition` adds a blackhole route to the broker's address inside one host:
its packets to Redis vanish (as in a real partition: no reset, no error, only silence) while the
provider, on another address, stays reachable. `heal` removes the route.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from dataclasses import dataclass, field

SUBNET = "10.213.0"
BROKER_ADDRESS = f"{SUBNET}.1"
PROVIDER_ADDRESS = f"{SUBNET}.254"


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


def unavailable() -> str | None:
    """Why namespaces cannot be made here, or None when they can."""
    if os.geteuid() != 0:
        return "network namespaces need root (CAP_NET_ADMIN)"
    probe = f"pj-probe-{uuid.uuid4().hex[:6]}"
    try:
        _ip("netns", "add", probe)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"`ip netns add` failed: {exc}"
    _ip("netns", "del", probe)
    return None


@dataclass
class Host:
    name: str  # the namespace
    address: str
    partitioned: bool = False

    def argv(self, command: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.name, *command]

    def partition(self) -> None:
        _ip("netns", "exec", self.name, "ip", "route", "add", "blackhole", f"{BROKER_ADDRESS}/32")
        self.partitioned = True

    def heal(self) -> None:
        _ip("netns", "exec", self.name, "ip", "route", "del", "blackhole", f"{BROKER_ADDRESS}/32")
        self.partitioned = False


@dataclass
class Network:
    """A bridge and its hosts; `close` removes everything it made, whatever state it is in."""

    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    hosts: dict[str, Host] = field(default_factory=dict)

    @property
    def bridge(self) -> str:
        return f"pjbr{self.tag}"

    def open(self) -> Network:
        _ip("link", "add", self.bridge, "type", "bridge")
        for address in (BROKER_ADDRESS, PROVIDER_ADDRESS):
            _ip("addr", "add", f"{address}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        return self

    def add_host(self, label: str, number: int) -> Host:
        host = Host(f"pj-{label}-{self.tag}", f"{SUBNET}.{number}")
        outside, inside = f"pjv{label}{self.tag}", f"pjh{label}{self.tag}"
        _ip("netns", "add", host.name)
        self.hosts[label] = host
        _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
        _ip("link", "set", inside, "netns", host.name)
        _ip("link", "set", outside, "master", self.bridge)
        _ip("link", "set", outside, "up")
        inner = ["netns", "exec", host.name, "ip"]
        _ip(*inner, "addr", "add", f"{host.address}/24", "dev", inside)
        _ip(*inner, "link", "set", inside, "up")
        _ip(*inner, "link", "set", "lo", "up")
        return host

    def close(self) -> None:
        for host in self.hosts.values():
            subprocess.run(["ip", "netns", "del", host.name], capture_output=True, timeout=10)
            subprocess.run(
                ["ip", "link", "del", f"pjv{host.name.split('-')[1]}{self.tag}"],
                capture_output=True,
                timeout=10,
            )
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True, timeout=10)
