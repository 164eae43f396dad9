"""Image references, parsed the way Docker parses them (distribution/reference's grammar).

    reference  := name [ ":" tag ] [ "@" digest ]
    name       := [ domain "/" ] path-component { "/" path-component }
    domain     := host [ ":" port ]        host: DNS labels joined by ".", or "localhost", or [IPv6]
    path-comp  := [a-z0-9]+ { separator [a-z0-9]+ }     separator: "." | "_" | "__" | "-"+
    tag        := [A-Za-z0-9_] [A-Za-z0-9_.-]{0,127}
    digest     := algorithm ":" hex         sha256 needs exactly 64 hex digits

The first component is a registry (a domain) when it contains "." or ":", is "localhost", or
has an uppercase letter, as Docker decides; the whole name is at most 255 characters. So `localhost:5000/app:1.2`,
`registry.example.com:443/team/app@sha256:<64 hex>` and `redis:7` are accepted and
`app:`, `App:1`, `a//b`, `a:b:c` and `redis@sha256:abc` are refused with the reason. The same
function checks the `image:` of a compose file and `--image SERVICE=IMAGE`. It walks the string
once, character by character: linear time, no regular expression on user text.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_NAME = 255
MAX_TAG = 128
_LOWER_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_ALNUM = _LOWER_ALNUM | frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_HEX = frozenset("0123456789abcdef")
_TAG_FIRST = _ALNUM | {"_"}
_TAG_REST = _TAG_FIRST | {".", "-"}
_DIGEST_HEX_LEN = {"sha256": 64, "sha384": 96, "sha512": 128}


@dataclass(frozen=True)
class ImageReference:
    domain: str | None      # "localhost:5000", "ghcr.io"; None: Docker Hub
    path: str               # "shopify/toxiproxy"
    tag: str | None
    digest: str | None      # "sha256:..."

    def __str__(self) -> str:
        out = f"{self.domain}/{self.path}" if self.domain else self.path
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out


def parse_image_reference(text: object) -> ImageReference:
    """Parse `text` as Docker does; ValueError naming what is wrong."""
    if not isinstance(text, str) or not text:
        raise ValueError("expected an image reference such as redis:7.2 or "
                         "registry.example.com:5000/team/app:1.0")
    if len(text) > MAX_NAME + 1 + MAX_TAG + 1 + 7 + 128:
        raise ValueError(f"image reference is {len(text)} characters, far longer than Docker allows")
    rest, digest = text, None
    if "@" in rest:
        rest, _, digest = rest.partition("@")
        _check_digest(digest)
    # The tag is after the last ':' that follows the last '/' (a ':' before it is a port).
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    tag = None
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1:]
        _check_tag(tag)
    if not rest:
        raise ValueError("image reference has no repository name")
    if len(rest) > MAX_NAME:
        raise ValueError(f"repository name is {len(rest)} characters; Docker allows at most {MAX_NAME}")
    parts = rest.split("/")
    domain = None
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"
                           or parts[0] != parts[0].lower()):
        domain = parts.pop(0)
        _check_domain(domain)
    for part in parts:
        _check_path_component(part)
    return ImageReference(domain, "/".join(parts), tag, digest)


def _check_digest(digest: str) -> None:
    algo, sep, hexpart = digest.partition(":")
    if not sep or not algo or not hexpart:
        raise ValueError(f"digest {digest[:80]!r} must be ALGORITHM:HEX, e.g. sha256:<64 hex digits>")
    if not (algo[0].isascii() and algo[0].isalpha()) or any(
            not (c.isascii() and (c.isalnum() or c in "+.-_")) for c in algo):
        raise ValueError(f"digest algorithm {algo[:40]!r} is not valid")
    if any(c not in _HEX for c in hexpart):
        raise ValueError("digest must be lowercase hexadecimal after the ':'")
    want = _DIGEST_HEX_LEN.get(algo)
    if want is not None and len(hexpart) != want:
        raise ValueError(f"a {algo} digest has {want} hex digits, this one has {len(hexpart)}")
    if len(hexpart) < 32:
        raise ValueError("a digest has at least 32 hex digits")


def _check_tag(tag: str) -> None:
    if not tag:
        raise ValueError("empty tag after ':' (write name:tag, or leave the ':' out for latest)")
    if len(tag) > MAX_TAG:
        raise ValueError(f"tag is {len(tag)} characters; Docker allows at most {MAX_TAG}")
    if tag[0] not in _TAG_FIRST or any(c not in _TAG_REST for c in tag):
        raise ValueError(f"tag {tag[:60]!r} may only use letters, digits, '_', '.' and '-' "
                         "(and not start with '.' or '-')")


def _check_domain(domain: str) -> None:
    host, port = domain, None
    if host.startswith("["):
        end = host.find("]")
        if end < 0:
            raise ValueError(f"registry {domain[:60]!r}: unclosed '[' in an IPv6 address")
        inner, after = host[1:end], host[end + 1:]
        if not inner or any(not (c in "0123456789abcdefABCDEF:.") for c in inner):
            raise ValueError(f"registry {domain[:60]!r}: not an IPv6 address")
        if after:
            if not after.startswith(":"):
                raise ValueError(f"registry {domain[:60]!r}: expected ':PORT' after ']'")
            port = after[1:]
    else:
        if ":" in host:
            host, _, port = host.partition(":")
        if not host:
            raise ValueError(f"registry {domain[:60]!r} has no host name")
        for label in host.split("."):
            if not label or label[0] == "-" or label[-1] == "-" or any(
                    c not in _ALNUM and c != "-" for c in label):
                raise ValueError(f"registry host {host[:60]!r} is not a valid host name")
    if port is not None:
        if not port.isascii() or not port.isdigit() or len(port) > 5 or not 0 < int(port) <= 65535:
            raise ValueError(f"registry port {port[:10]!r} is not a port number 1-65535")


def _check_path_component(part: str) -> None:
    if not part:
        raise ValueError("empty path component (two '/' in a row, or one at an end)")
    if part[0] not in _LOWER_ALNUM or part[-1] not in _LOWER_ALNUM:
        why = "must be lowercase" if any(c.isupper() for c in part) else \
            "must start and end with a lowercase letter or digit"
        raise ValueError(f"repository component {part[:60]!r} {why}")
    i, n = 0, len(part)
    while i < n:
        c = part[i]
        if c in _LOWER_ALNUM:
            i += 1
            continue
        if c.isupper():
            raise ValueError(f"repository component {part[:60]!r} must be lowercase")
        # a separator: ".", "_", "__" or a run of "-", then an alphanumeric
        if c == "-":
            while i < n and part[i] == "-":
                i += 1
        elif c == "_":
            i += 2 if part[i:i + 2] == "__" else 1
        elif c == ".":
            i += 1
        else:
            raise ValueError(f"repository component {part[:60]!r}: {c!r} is not allowed "
                             "(lowercase letters, digits, '.', '_', '__' and '-')")
        if i >= n or part[i] not in _LOWER_ALNUM:
            raise ValueError(f"repository component {part[:60]!r}: separators must sit between "
                             "letters or digits")
