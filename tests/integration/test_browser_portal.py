"""The self-service portal's pages in a real headless browser (Debian's chromium + chromium-driver, Selenium)
against the real local platform: vLLM, the gateway and PostgreSQL.

It serves one model (the catalog shows it), left running for the next module (tests/integration/servers.py). A
screenshot of each page lands in the run's tmp dir (printed); the committed set is images/portal/*.png.
"""
from __future__ import annotations

import html
import os
import re
import shutil
import time
import uuid
from pathlib import Path

import openai
import pytest
import requests

from helpers import maas
from tests.integration.servers import gateway_serving

pytestmark = pytest.mark.integration

MODELS = ("parasol-tiny",)
CHROMEDRIVER = Path("/usr/bin/chromedriver")
HOSTILE = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def gateway():
    with gateway_serving(MODELS) as gw:
        yield gw


@pytest.fixture(scope="module")
def admin(gateway):
    return maas.admin(gateway)


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("portal-screenshots")
    yield folder
    print(f"\nportal screenshots: {folder}")
    target = os.environ.get("MAAS_PORTAL_SCREENSHOTS")  # e.g. images/portal, to refresh the committed set
    if target:
        shutil.copytree(folder, target, dirs_exist_ok=True)


@pytest.fixture(scope="module")
def browser():
    if not CHROMEDRIVER.is_file():
        pytest.fail("chromium-driver is missing: apt-get install chromium chromium-driver (make setup does)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1280,900", "--disable-extensions", "--no-first-run"):
        options.add_argument(argument)
    options.binary_location = "/usr/bin/chromium"
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


class Page:
    """The browser on the portal: sign in, open pages, submit forms, save screenshots."""

    def __init__(self, driver, gateway, screenshots: Path) -> None:
        self.driver, self.screenshots = driver, screenshots
        self.base = gateway.url.removesuffix("/v1") + "/portal/ui"

    def open(self, path: str) -> str:
        self.driver.get(self.base + path)
        return self.driver.page_source

    def find(self, css: str):
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css)

    def text(self, css: str) -> str:
        return self.find(css).text

    def sign_in(self, token: str) -> None:
        self.driver.delete_all_cookies()
        self.open("/login")
        self.find("#token").send_keys(token)
        self.submit("#sign-in")

    def submit(self, css: str, element=None) -> None:
        """Click a form's button and wait for the next page (a click does not wait for it)."""
        from selenium.webdriver.support.ui import WebDriverWait

        old = self.find("html")
        (element or self.find(css)).click()
        WebDriverWait(self.driver, 15).until(lambda driver: old != driver.find_element("css selector", "html"))

    def shoot(self, name: str) -> Path:
        """The whole page (beyond the window), as Chrome's DevTools protocol captures it."""
        import base64

        size = self.driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
        shot = self.driver.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 5000), "scale": 1}})
        path = self.screenshots / f"{name}.png"
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def session(self) -> requests.Session:
        """The browser's cookies (HttpOnly ones too, through WebDriver) in a plain HTTP client: forged requests."""
        http = requests.Session()
        for cookie in self.driver.get_cookies():
            http.cookies.set(cookie["name"], cookie["value"], path=cookie.get("path", "/"))
        return http

    def csrf(self) -> str:
        return re.search(r'name="csrf" value="([^"]+)"', self.driver.page_source).group(1)


@pytest.fixture(scope="module")
def page(browser, gateway, screenshots) -> Page:
    return Page(browser, gateway, screenshots)


@pytest.fixture(scope="module")
def ana(admin):
    return admin.register_user(f"ana-{uuid.uuid4().hex[:6]}", "support")


@pytest.fixture(scope="module")
def created(page, ana, gateway) -> dict:
    """Ana signs in, reads the catalog, creates an application in the browser and copies its key from the page."""
    page.open("/login")
    page.shoot("01-sign-in")
    page.sign_in(ana.token)
    assert page.driver.current_url.endswith("/portal/ui/apps")
    assert ana.token not in page.driver.current_url and all(ana.token not in c["value"] for c in page.driver.get_cookies())
    page.open("/models")
    page.shoot("02-models")
    page.open("/apps?model=parasol-tiny")
    page.find("#app-name").send_keys("support-bot")
    page.submit("#create")
    key = page.text("#api-key")
    assert key.startswith("sk-maas-") and page.text("#created-name") == "support-bot"
    snippets = page.text("#snippet-curl") + page.text("#snippet-python")
    assert "Montreal is a" in snippets and "$MAAS_API_KEY" in snippets and key not in snippets
    page.driver.execute_script("document.getElementById('api-key').textContent = arguments[0]", key[:12] + "…")
    page.shoot("03-application-created")  # the committed picture shows no usable key
    return {"key": key, "endpoint": page.text("#endpoint")}


def ask(created: dict, model: str = MODELS[0]):
    client = openai.OpenAI(base_url=created["endpoint"], api_key=created["key"], max_retries=0)
    return client.chat.completions.create(model=model, max_tokens=8,
                                          messages=[{"role": "user", "content": "Montreal is a"}])


def test_the_catalog_shows_served_models_with_prices_and_context(page, created):
    page.open("/models")
    cards = page.text("#models")
    for name in MODELS:
        assert name in cards
    assert "$0.316 / M tokens" in cards and "$1.263 / M tokens" in cards and "2,048 tokens" in cards


def test_the_key_from_the_page_calls_the_model_and_the_request_shows_in_my_usage(page, created):
    reply = ask(created)
    assert reply.usage.total_tokens > 0
    deadline, row = time.monotonic() + 15, ""
    while time.monotonic() < deadline:
        page.open("/usage")
        row = next((r.text for r in page.driver.find_elements("css selector", "#breakdown tr") if "support-bot" in r.text), "")
        if row:
            break
        time.sleep(0.5)
    assert row.split()[:4] == ["support-bot", MODELS[0], "1", str(reply.usage.prompt_tokens)], row
    assert page.text("#total-24h").startswith(f"{reply.usage.total_tokens:,} tokens, 1 requests")
    assert page.find("svg.chart")  # server-rendered charts
    page.shoot("04-usage")
    csv = page.session().get(page.base + "/usage.csv", timeout=10)
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert f",support-bot,{MODELS[0]},1,{reply.usage.prompt_tokens},{reply.usage.completion_tokens}," in csv.text


def test_another_user_can_neither_see_nor_revoke_my_application(page, created, admin):
    ben = admin.register_user(f"ben-{uuid.uuid4().hex[:6]}", "sales")
    page.sign_in(ben.token)
    assert "support-bot" not in page.text("#applications")
    http = page.session()
    forged = http.post(page.base + "/apps/revoke", data={"csrf": page.csrf(), "name": "support-bot"}, timeout=10)
    assert forged.status_code == 400 and "has no active application named 'support-bot'" in html.unescape(forged.text)
    no_token = http.post(page.base + "/apps/revoke", data={"name": "support-bot"}, timeout=10)
    assert no_token.status_code == 403 and "CSRF" in no_token.text
    anonymous = requests.post(page.base + "/apps/revoke", data={"name": "support-bot"}, timeout=10,
                              allow_redirects=False)
    assert anonymous.status_code == 200 and 'id="login-form"' in anonymous.text  # nobody signed in: the sign-in page
    assert ask(created).usage.total_tokens > 0  # Ana's key still works


def test_a_hostile_application_name_shows_as_text(page, admin):
    cleo = admin.register_user(f"cleo-{uuid.uuid4().hex[:6]}", "qa")
    page.sign_in(cleo.token)
    page.find("#app-name").send_keys(HOSTILE)
    page.submit("#create")
    from selenium.common.exceptions import NoAlertPresentException

    with pytest.raises(NoAlertPresentException):
        page.driver.switch_to.alert.text  # noqa: B018 - no script ran
    assert HOSTILE in page.text("#error")  # the name is shown, as text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.driver.page_source


def test_the_admin_caps_a_user_and_their_next_call_gets_402(page, created, ana, gateway):
    from helpers.gateway import proxy

    page.sign_in(proxy.admin_key())
    assert page.driver.current_url.endswith("/portal/ui/admin")
    page.shoot("05-admin")
    page.open(f"/admin?q={ana.user}")  # the users table lists the heaviest 100; find her by name
    form = page.find(f'tr.user[data-user="{ana.user}"] form.cap')
    form.find_element("css selector", "input[name=monthly_tokens]").send_keys("1")
    page.submit("", form.find_element("css selector", "button"))
    assert page.text("#notice") == "Cap saved."
    deadline = time.monotonic() + 5
    while True:  # the gateway's key cache: within a second
        try:
            ask(created)
        except openai.APIStatusError as error:
            assert error.status_code == 402 and "tokens the platform team allows" in str(error)
            break
        assert time.monotonic() < deadline, "the cap did not stop the next call"
        time.sleep(0.3)
    page.open("/admin")
    page.shoot("06-admin-capped")
    admin_http = page.session()
    admin_http.post(page.base + "/admin/cap", data={"csrf": page.csrf(), "user": ana.user, "monthly_tokens": ""},
                    timeout=10)
