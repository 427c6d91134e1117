"""URL safety: only https URLs whose host is (and resolves only to) public internet addresses get through."""

from __future__ import annotations

import socket
from typing import Any, NoReturn

import pytest

from functions.common.errors import InvalidRequestError
from functions.common.url_safety import check_public_https_url, is_public_address, resolve_host

FIELD = "callback_url"
BLOCKED = "network access is blocked in unit tests"


def dns(table: dict[str, list[str]]):
    """A dict-backed resolver; an unknown name fails the way getaddrinfo does."""

    def resolve(hostname: str) -> list[str]:
        if hostname not in table:
            raise socket.gaierror(socket.EAI_NONAME, f"no record for {hostname}")
        return list(table[hostname])

    return resolve


def must_not_resolve(hostname: str) -> NoReturn:
    raise AssertionError(f"an IP literal must be checked without resolving (asked for {hostname!r})")


def refusal(url: str, resolve: Any = must_not_resolve) -> InvalidRequestError:
    with pytest.raises(InvalidRequestError) as caught:
        check_public_https_url(url, field=FIELD, resolve=resolve)
    assert caught.value.param == FIELD
    assert caught.value.message.startswith(f"{FIELD}: ")
    return caught.value


# --- is_public_address -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        pytest.param("8.8.8.8", id="v4"),
        pytest.param("93.184.216.34", id="v4-example"),
        pytest.param("2606:4700:4700::1111", id="v6"),
        pytest.param("::ffff:8.8.8.8", id="v4-mapped-public"),
    ],
)
def test_public_addresses_are_public(address: str) -> None:
    assert is_public_address(address) is True


@pytest.mark.parametrize(
    "address",
    [
        pytest.param("127.0.0.1", id="loopback"),
        pytest.param("127.8.9.10", id="loopback-range"),
        pytest.param("10.0.0.1", id="rfc1918-10"),
        pytest.param("172.16.5.4", id="rfc1918-172"),
        pytest.param("192.168.1.1", id="rfc1918-192"),
        pytest.param("169.254.169.254", id="link-local-imds"),
        pytest.param("100.64.0.1", id="carrier-grade-nat"),
        pytest.param("0.0.0.0", id="unspecified-v4"),  # noqa: S104 - an address under test, not a bind
        pytest.param("255.255.255.255", id="broadcast"),
        pytest.param("224.0.0.251", id="multicast-v4"),
        pytest.param("239.255.255.250", id="multicast-v4-ssdp"),
        pytest.param("192.0.2.10", id="documentation-v4"),
        pytest.param("::1", id="loopback-v6"),
        pytest.param("::", id="unspecified-v6"),
        pytest.param("fd00:ec2::254", id="imds-v6-ula"),
        pytest.param("fe80::1", id="link-local-v6"),
        pytest.param("fe80::1%eth0", id="link-local-v6-scoped"),
        pytest.param("ff02::1", id="multicast-v6"),
        pytest.param("ff0e::1", id="multicast-v6-global-scope"),
        pytest.param("2001:db8::1", id="documentation-v6"),
        pytest.param("::ffff:127.0.0.1", id="v4-mapped-loopback"),
        pytest.param("::ffff:10.1.2.3", id="v4-mapped-private"),
        pytest.param("::ffff:169.254.169.254", id="v4-mapped-imds"),
        pytest.param("::ffff:224.0.0.1", id="v4-mapped-multicast"),
    ],
)
def test_non_public_addresses_are_not_public(address: str) -> None:
    assert is_public_address(address) is False


def test_is_public_address_rejects_what_is_not_an_address() -> None:
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6 address"):
        is_public_address("example.com")


# --- check_public_https_url: scheme, credentials, host --------------------------------------------------


def test_public_https_url_is_returned_unchanged() -> None:
    # Given a name that resolves only to public addresses
    resolve = dns({"hooks.example.com": ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"]})
    url = "https://hooks.example.com:8443/videogen?job=1#frag"
    # When it is checked
    # Then it comes back as given
    assert check_public_https_url(url, field=FIELD, resolve=resolve) == url


@pytest.mark.parametrize(
    ("url", "shown_scheme"),
    [
        pytest.param("http://hooks.example.com/x", "'http'", id="http"),
        pytest.param("ftp://hooks.example.com/x", "'ftp'", id="ftp"),
        pytest.param("file:///etc/passwd", "'file'", id="file"),
        pytest.param("gopher://hooks.example.com/", "'gopher'", id="gopher"),
        pytest.param("hooks.example.com/x", "'none'", id="no-scheme"),
    ],
)
def test_only_https_is_allowed(url: str, shown_scheme: str) -> None:
    error = refusal(url)
    assert error.message == f"{FIELD}: must be an https:// URL (got scheme {shown_scheme})"


def test_scheme_is_case_insensitive() -> None:
    url = "HTTPS://8.8.8.8/x"
    assert check_public_https_url(url, field=FIELD, resolve=must_not_resolve) == url


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("https://user:secret@hooks.example.com/x", id="user-and-password"),
        pytest.param("https://user@hooks.example.com/x", id="user-only"),
        pytest.param("https://:secret@hooks.example.com/x", id="password-only"),
    ],
)
def test_credentials_in_the_url_are_refused(url: str) -> None:
    error = refusal(url)
    assert "must not carry credentials" in error.message


def test_url_without_a_host_is_refused() -> None:
    error = refusal("https:///only/a/path")
    assert error.message == f"{FIELD}: has no host name"


# --- IP literal hosts: checked as they are, never resolved -------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("https://8.8.8.8/x", id="v4"),
        pytest.param("https://[2606:4700:4700::1111]/x", id="v6"),
        pytest.param("https://[::ffff:8.8.8.8]:443/x", id="v4-mapped-public"),
    ],
)
def test_public_ip_literal_is_accepted_without_resolving(url: str) -> None:
    assert check_public_https_url(url, field=FIELD, resolve=must_not_resolve) == url


@pytest.mark.parametrize(
    ("url", "address"),
    [
        pytest.param("https://127.0.0.1/x", "127.0.0.1", id="loopback"),
        pytest.param("https://10.0.0.8:8443/x", "10.0.0.8", id="private"),
        pytest.param("https://169.254.169.254/latest/meta-data/", "169.254.169.254", id="imds"),
        pytest.param("https://[::1]/x", "::1", id="loopback-v6"),
        pytest.param("https://[fd00:ec2::254]/x", "fd00:ec2::254", id="imds-v6"),
        pytest.param("https://[::ffff:127.0.0.1]/x", "::ffff:127.0.0.1", id="v4-mapped-loopback"),
        pytest.param("https://[::ffff:a9fe:a9fe]/x", "::ffff:a9fe:a9fe", id="v4-mapped-imds-hex"),
        pytest.param("https://224.0.0.1/x", "224.0.0.1", id="multicast"),
    ],
)
def test_non_public_ip_literal_is_refused_without_resolving(url: str, address: str) -> None:
    error = refusal(url)
    assert f"resolves to a non-public address ({address})" in error.message
    assert error.message.endswith("only public internet addresses are allowed")


# --- names: every resolved address is checked ----------------------------------------------------------


@pytest.mark.parametrize(
    ("addresses", "named"),
    [
        pytest.param(["127.0.0.1"], "127.0.0.1", id="loopback"),
        pytest.param(["10.1.2.3"], "10.1.2.3", id="private"),
        pytest.param(["169.254.169.254"], "169.254.169.254", id="imds"),
        pytest.param(["fd00:ec2::254"], "fd00:ec2::254", id="imds-v6"),
        pytest.param(["::ffff:127.0.0.1"], "::ffff:127.0.0.1", id="v4-mapped-loopback"),
        pytest.param(["93.184.216.34", "10.0.0.7"], "10.0.0.7", id="one-public-one-private"),
        pytest.param(["2606:4700::1", "::1"], "::1", id="one-public-one-loopback-v6"),
        pytest.param(["127.0.0.1", "8.8.8.8", "192.168.0.2"], "127.0.0.1, 192.168.0.2", id="lists-every-private"),
    ],
)
def test_name_resolving_to_any_non_public_address_is_refused(addresses: list[str], named: str) -> None:
    # Given a name whose addresses include a non-public one
    resolve = dns({"rebind.example.com": addresses})
    # When its URL is checked
    error = refusal("https://rebind.example.com/x", resolve)
    # Then the refusal names the host and every non-public address
    assert f"host 'rebind.example.com' resolves to a non-public address ({named})" in error.message


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(socket.gaierror(socket.EAI_NONAME, "Name or service not known"), id="nxdomain"),
        pytest.param(TimeoutError("timed out"), id="timeout"),
        pytest.param(UnicodeError("label too long"), id="idna"),
    ],
)
def test_resolution_failure_is_a_clear_request_error(failure: Exception) -> None:
    # Given a resolver that fails
    def failing(hostname: str) -> list[str]:
        raise failure

    # When the URL is checked
    error = refusal("https://nowhere.example.com/x", failing)
    # Then the user is told the host does not resolve, and the cause is kept
    assert error.message == f"{FIELD}: host 'nowhere.example.com' does not resolve"
    assert error.__cause__ is failure


def test_name_resolving_to_nothing_is_refused() -> None:
    error = refusal("https://empty.example.com/x", dns({"empty.example.com": []}))
    assert error.message == f"{FIELD}: host 'empty.example.com' does not resolve"


def test_the_field_name_is_used_in_param_and_message() -> None:
    with pytest.raises(InvalidRequestError) as caught:
        check_public_https_url("http://x.example.com/", field="images[1].url", resolve=must_not_resolve)
    assert caught.value.param == "images[1].url"
    assert caught.value.message.startswith("images[1].url: must be an https:// URL")


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("https://[::1/x", id="unclosed-ipv6-bracket"),
        pytest.param("https://[not-an-ip]/x", id="bracketed-non-ip"),
    ],
)
def test_malformed_url_is_a_request_error_naming_the_field(url: str) -> None:
    # Given a URL urllib cannot split
    # When it is checked
    # Then it is refused like any other bad URL (InvalidRequestError naming the field), not a bare ValueError
    refusal(url)


# --- resolve_host (the real resolver) over a fake getaddrinfo ---------------------------------------------


def test_resolve_host_returns_every_address_once_sorted(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given getaddrinfo answering with duplicates across families
    calls: list[tuple[Any, ...]] = []

    def fake_getaddrinfo(host: str, port: int, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        calls.append((host, port, kwargs))
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 443)),
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("2606:2800:220:1::1", 443, 0, 0)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 443)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", 443)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    # When the host is resolved
    addresses = resolve_host("hooks.example.com")
    # Then each address appears once, sorted, for a TCP lookup on 443
    assert addresses == ["10.0.0.7", "2606:2800:220:1::1", "93.184.216.34"]
    assert calls == [("hooks.example.com", 443, {"proto": socket.IPPROTO_TCP})]


def test_network_is_blocked_in_unit_tests() -> None:
    # Given the unit-test network guard
    # When the real resolver or a connection is used
    # Then it fails loudly, with an error no "does not resolve" handler can swallow
    with pytest.raises(RuntimeError, match=BLOCKED) as caught:
        resolve_host("example.com")
    assert not isinstance(caught.value, OSError)
    with pytest.raises(RuntimeError, match=BLOCKED):
        socket.create_connection(("127.0.0.1", 9))
    with socket.socket() as sock, pytest.raises(RuntimeError, match=BLOCKED):
        sock.connect(("127.0.0.1", 9))


def test_default_resolver_is_the_guarded_real_one() -> None:
    # Given no resolver passed: the real one is used and the guard stops it
    with pytest.raises(RuntimeError, match=BLOCKED):
        check_public_https_url("https://hooks.example.com/x", field=FIELD)
