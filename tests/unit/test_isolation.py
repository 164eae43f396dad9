"""What a target may not ask for (harness.model.isolation) and its documentation."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.model.isolation import (
    ALLOWED_CAPABILITIES,
    REFUSED_CAPABILITIES,
    check_capability,
    reserved_instance,
    reserved_network,
)

DOC = (Path(__file__).resolve().parents[2] / "docs" / "target-format.md").read_text()


@pytest.mark.parametrize("given,want", [("NET_ADMIN", "NET_ADMIN"), ("CAP_NET_ADMIN", "NET_ADMIN"),
                                        ("net_admin", "NET_ADMIN"), ("cap_sys_nice", "SYS_NICE")])
def test_allowed_capabilities_normalise_as_docker_does(given, want):
    assert check_capability(given) == want


@pytest.mark.parametrize("cap", sorted(REFUSED_CAPABILITIES))
def test_every_refused_capability_says_why(cap):
    with pytest.raises(ValueError, match="is refused: " + REFUSED_CAPABILITIES[cap][:20]):
        check_capability(cap)
    with pytest.raises(ValueError, match="is refused"):
        check_capability("cap_" + cap.lower())


@pytest.mark.parametrize("bad", ["", "FLY", "NET ADMIN", "x" * 65, 5, None])
def test_not_a_capability(bad):
    with pytest.raises(ValueError):
        check_capability(bad)


def test_the_lists_do_not_overlap_and_the_docs_name_every_one():
    assert not set(ALLOWED_CAPABILITIES) & set(REFUSED_CAPABILITIES)
    for cap in list(ALLOWED_CAPABILITIES) + list(REFUSED_CAPABILITIES):
        assert f"`{cap}`" in DOC, f"docs/target-format.md does not mention {cap}"
    assert "a target is trusted code" in DOC.lower()


def test_reserved_names():
    assert reserved_instance("toxiproxy") and not reserved_instance("toxiproxy-1")
    assert reserved_network("ctl") and reserved_network("link-lb-app-1") and not reserved_network("links")
