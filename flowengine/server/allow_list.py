"""The ``http_allow`` list: which hosts and ports the ``http`` action may reach, and which addresses.

An entry is a string or an object:

    api.example.com                 that host, ports 80 and 443
    api.example.com:8080            that host, port 8080 only
    *.example.com                   its subdomains (not example.com itself), ports 80 and 443
    [2001:db8::1]:8443              an IPv6 address, with a port
    {host: 127.0.0.1, ports: [8081], private: true}
                                    an object: ``ports`` (default [80, 443]); ``private: true`` lets the
                                    host's addresses be loopback, private or link-local

Whatever the entry, the addresses a name resolves to are checked as well, and only public (globally
routable) ones are used unless the entry says ``private: true``: a public-looking name that resolves to
127.0.0.1 or 169.254.169.254 is refused.
"""

from __future__ import annotations

import fnmatch
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from flowengine.errors import ConfigError

DEFAULT_PORTS = frozenset({80, 443})
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class AllowEntry:
    pattern: str  # a host name, lower case, or an fnmatch pattern such as *.example.com
    ports: frozenset[int] = DEFAULT_PORTS
    private: bool = False

    def matches(self, host: str, port: int) -> bool:
        return port in self.ports and fnmatch.fnmatchcase(host, self.pattern)

    def describe(self) -> str:
        ports = ",".join(str(p) for p in sorted(self.ports))
        return f"{self.pattern}:{ports}" + (" (private)" if self.private else "")


class AllowList:
    """The parsed ``http_allow`` entries; ``ConfigError`` names the entry that does not parse."""

    def __init__(self, entries: Iterable[str | Mapping[str, Any] | AllowEntry]) -> None:
        self.entries = tuple(
            entry if isinstance(entry, AllowEntry) else parse_entry(entry, index)
            for index, entry in enumerate(entries)
        )

    def match(self, host: str, port: int) -> AllowEntry | None:
        """The entry allowing ``host`` on ``port`` (one with ``private`` first), or None."""
        host = normal_host(host)
        found = [entry for entry in self.entries if entry.matches(host, port)]
        return max(found, key=lambda entry: entry.private) if found else None

    def hosts_allowed(self, host: str) -> bool:
        """Whether some entry names ``host`` at all (on whatever port): says which refusal to give."""
        host = normal_host(host)
        return any(fnmatch.fnmatchcase(host, entry.pattern) for entry in self.entries)


def normal_host(host: str) -> str:
    return host.lower().rstrip(".")


def parse_entry(entry: str | Mapping[str, Any], index: int = 0) -> AllowEntry:
    where = f"http_allow[{index}]"
    if isinstance(entry, str):
        host, port = _split_port(entry.strip(), where)
        return AllowEntry(_host(host, where), DEFAULT_PORTS if port is None else frozenset({port}))
    if isinstance(entry, Mapping):
        unknown = set(entry) - {"host", "ports", "private"}
        if unknown or not isinstance(entry.get("host"), str):
            raise ConfigError(f"{where}: an object entry has host, ports and private (got {sorted(entry)})")
        ports = entry.get("ports", sorted(DEFAULT_PORTS))
        if not isinstance(ports, list) or not ports or not all(_is_port(p) for p in ports):
            raise ConfigError(f"{where}.ports: a list of port numbers 1-65535")
        host = str(entry["host"]).strip()
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        return AllowEntry(_host(host, where), frozenset(ports), entry.get("private") is True)
    raise ConfigError(f"{where}: expected a host string or an object with host, ports, private")


def _split_port(text: str, where: str) -> tuple[str, int | None]:
    if text.startswith("["):  # [IPv6] or [IPv6]:port
        host, _, rest = text[1:].partition("]")
        if rest and not rest.startswith(":"):
            raise ConfigError(f"{where}: {text!r} is not host, host:port or [ipv6]:port")
        return host, _port(rest[1:], where) if rest else None
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return host, _port(port, where)
    return text, None  # a name, or an IPv6 address without brackets (no port)


def _port(text: str, where: str) -> int:
    if not text.isdigit() or not _is_port(int(text)):
        raise ConfigError(f"{where}: port {text!r} is not a number 1-65535")
    return int(text)


def _is_port(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 65536


def _host(host: str, where: str) -> str:
    host = normal_host(host)
    if not host or any(c in host for c in "/\\@ ?#"):
        raise ConfigError(f"{where}: {host!r} is not a host name or pattern")
    try:  # international names match in their ASCII form, as URLs carry them
        return host if host.isascii() else host.encode("idna").decode("ascii")
    except UnicodeError:
        raise ConfigError(f"{where}: {host!r} is not a host name") from None


def ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def address_refused(address: str | IPAddress, *, private_ok: bool) -> str | None:
    """What ``address`` is, when the action may not reach it (``"127.0.0.1, a loopback address"``);
    None when it may. Only globally routable unicast addresses are reachable, unless ``private_ok``;
    then loopback, private and link-local ones are too. Multicast and unspecified ones never are."""
    ip = address if not isinstance(address, str) else ip_literal(address.split("%", 1)[0])
    if ip is None:
        return f"{address!r}, not an IP address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    if ip.is_multicast or ip.is_unspecified:
        return f"{ip}, a multicast or unspecified address"
    if ip.is_global or private_ok:
        return None
    kind = "loopback" if ip.is_loopback else "link-local" if ip.is_link_local else "private or reserved"
    return f"{ip}, a {kind} address (an http_allow entry with private: true allows it)"
