"""The README's first hour, in Chromium: the demo's administrator signs in, makes an API key in admin,
and the CRM reads the calls with it, as the README's four steps say."""

import re

import httpx
import pytest
from playwright.sync_api import expect

from agents.services import demo_data_create
from calls.tests.factories import CallFactory
from whatsapp.models import BusinessNumber

pytestmark = pytest.mark.e2e


def test_the_demo_administrator_makes_an_api_key_that_reads_the_calls(live_server_url, browser):
    passwords = demo_data_create()
    call = CallFactory(business_number=BusinessNumber.objects.get())
    page = browser.new_page()
    page.set_default_timeout(10_000)

    page.goto(f"{live_server_url}/admin/")  # step 1: admin asks for the sign-in itself
    page.fill("#id_username", "admin")
    page.fill("#id_password", passwords["admin"])
    page.click("input[type=submit]")
    page.get_by_role("link", name="API keys", exact=True).click()
    page.get_by_role("link", name=re.compile("Add API key")).click()
    page.fill("#id_name", "Our CRM")
    page.get_by_role("checkbox", name=re.compile("Read contacts")).check()
    page.select_option("#id_business_numbers_from", label=str(BusinessNumber.objects.get()))
    page.click("#id_business_numbers_add")  # the "Choose" arrow
    page.get_by_role("button", name="Save", exact=True).click()
    shown = page.locator(".messagelist").inner_text()
    key = re.search(r"sbk_\S+", shown).group(0)
    answer = httpx.get(f"{live_server_url}/api/v1/calls/", headers={"Authorization": f"Bearer {key}"})

    expect(page.locator(".messagelist")).to_contain_text("shown this once")
    assert answer.status_code == 200
    assert [row["id"] for row in answer.json()["results"]] == [call.pk]
