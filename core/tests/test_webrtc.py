import aioice.ice
import pytest
from django.core.exceptions import ImproperlyConfigured

from core.webrtc import apply_host_addresses, rtc_configuration


def test_rtc_configuration_with_no_ice_server_configured_has_none_not_aiortcs_default(settings):
    settings.MEDIA_ICE_SERVERS = []

    assert rtc_configuration().iceServers == []


def test_rtc_configuration_reads_stun_and_turn_with_credentials(settings):
    settings.MEDIA_ICE_SERVERS = [
        "stun:stun.example.com:3478",
        "turn:agent%40desk:p%3Ass@turn.example.com:3478?transport=udp",
    ]

    stun, turn = rtc_configuration().iceServers

    assert (stun.urls, stun.username, stun.credential) == ("stun:stun.example.com:3478", None, None)
    assert (turn.urls, turn.username, turn.credential) == (
        "turn:turn.example.com:3478?transport=udp",
        "agent@desk",
        "p:ss",
    )


@pytest.mark.parametrize("url", ["http://stun.example.com", "turn:turn.example.com:3478", "stun:"])
def test_rtc_configuration_refuses_malformed_servers(settings, url):
    settings.MEDIA_ICE_SERVERS = [url]

    with pytest.raises(ImproperlyConfigured):
        rtc_configuration()


def test_host_addresses_offered_are_the_configured_ones(settings):
    settings.MEDIA_HOST_ADDRESSES = ["127.0.0.1", "::1"]

    apply_host_addresses()

    assert aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=False) == ["127.0.0.1"]
    assert aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=True) == ["127.0.0.1", "::1"]


def test_host_addresses_refuse_a_name(settings):
    settings.MEDIA_HOST_ADDRESSES = ["media.example.com"]

    with pytest.raises(ImproperlyConfigured):
        apply_host_addresses()
