"""ICE for the server's peer connections: configured servers only, and host candidates on the
address the server listens on.

aioice gathers a candidate on every interface but loopback, and offers no setting for which;
a server that listens on loopback must not open media ports elsewhere (and on loopback there
is nothing else to try), so its host-address lookup is replaced, once per process.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import unquote

from aiortc import RTCConfiguration, RTCIceServer

from swapline.web.settings import is_loopback

_addresses: list[str] | None = None
_installed = False


def host_addresses(host: str) -> list[str] | None:
    """The addresses to gather host candidates on for a server bound to `host` (None: all)."""
    if is_loopback(host):
        return ["127.0.0.1"]
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None  # a name: let aioice look at every interface
    return None if address.is_unspecified else [str(address)]


def restrict_host_candidates(addresses: list[str] | None) -> None:
    """Gather host candidates on these addresses only (None: aioice's own choice, every interface)."""
    global _addresses, _installed
    _addresses = list(addresses) if addresses is not None else None
    if _installed:
        return
    import aioice.ice

    original = aioice.ice.get_host_addresses

    def chosen(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return list(_addresses) if _addresses is not None else original(use_ipv4, use_ipv6)

    aioice.ice.get_host_addresses = chosen
    _installed = True


def ice_server(url: str) -> RTCIceServer:
    """`stun:host:port`, or `turn:user:password@host:port` (credentials in the URL, as the page needs them)."""
    scheme, _, rest = url.partition(":")
    if "@" in rest:
        credentials, _, where = rest.rpartition("@")
        user, _, password = credentials.partition(":")
        return RTCIceServer(urls=f"{scheme}:{where}", username=unquote(user), credential=unquote(password))
    return RTCIceServer(urls=url)


def rtc_configuration(urls: tuple[str, ...]) -> RTCConfiguration:
    """Only the configured servers: an empty list, not aiortc's default public STUN server."""
    return RTCConfiguration(iceServers=[ice_server(url) for url in urls])


def page_ice_servers(urls: tuple[str, ...]) -> list[dict]:
    """The same servers for the page's RTCPeerConnection."""
    servers = []
    for url in urls:
        server = ice_server(url)
        entry: dict = {"urls": server.urls}
        if server.username is not None:
            entry.update(username=server.username, credential=server.credential)
        servers.append(entry)
    return servers
