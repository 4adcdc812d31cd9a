"""The web page in a real headless Chromium: upload photos, see the transparent result.

Needs Debian's ``chromium`` and ``chromium-driver`` and the ``selenium`` package; skipped with
the reason otherwise.  The driver path is passed explicitly so Selenium Manager never tries to
download anything.  A screenshot is left at /tmp/livematte-serve-page.png for a human look.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from server_helpers import SAMPLE, image_bytes

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver") or (
    "/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists() else None
)
SCREENSHOT = Path(tempfile.gettempdir()) / "livematte-serve-page.png"

pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt install chromium)"),
    pytest.mark.skipif(
        CHROMEDRIVER is None, reason="chromedriver is not installed (apt install chromium-driver)"
    ),
]

# Reads the first finished card's cut-out back through a canvas: alpha of two pixels.
CORNER_AND_CENTRE_ALPHA = """
const img = document.querySelector('.card[data-status="done"] img.after');
const c = document.createElement('canvas');
c.width = img.naturalWidth; c.height = img.naturalHeight;
const ctx = c.getContext('2d');
ctx.drawImage(img, 0, 0);
return [ctx.getImageData(0, 0, 1, 1).data[3],
        ctx.getImageData(c.width >> 1, c.height >> 1, 1, 1).data[3],
        c.width, c.height];
"""


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tmp_path_factory.mktemp("chromium-profile")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # CSP violations land here
    for flag in (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1200,900",
    ):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def wait_for(driver, script: str, timeout: float = 60):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(
        lambda d: d.execute_script(script)
    )


def csp_violations(driver) -> list[str]:
    """The console's Content-Security-Policy complaints since the last call."""
    return [
        e["message"] for e in driver.get_log("browser") if "Content Security Policy" in e["message"]
    ]


def test_upload_one_photo_shows_the_transparent_cut_out(browser, live_server):
    from selenium.webdriver.common.by import By

    browser.get(live_server + "/")
    wait_for(browser, "return document.body.dataset.state === 'ready'", 20)
    assert browser.find_element(By.ID, "key-box").get_attribute("hidden") is not None  # keyless
    browser.find_element(By.ID, "file-input").send_keys(str(SAMPLE))
    wait_for(browser, "return document.querySelector('.card[data-status=\"done\"]') !== null")
    corner, centre, width, height = browser.execute_script(CORNER_AND_CENTRE_ALPHA)
    assert (width, height) == (512, 512)
    assert corner == 0 and centre > 200
    assert browser.find_element(By.ID, "download-all").is_enabled()
    assert browser.find_element(By.CSS_SELECTOR, ".card .download").is_displayed()
    browser.save_screenshot(str(SCREENSHOT))
    assert csp_violations(browser) == []  # the page works under its CSP


def test_batch_upload_goes_through_one_zip(browser, live_server, tmp_path):
    from selenium.webdriver.common.by import By

    browser.get(live_server + "/")
    wait_for(browser, "return document.body.dataset.state === 'ready'", 20)
    second = tmp_path / "second.png"
    second.write_bytes(image_bytes("PNG", (96, 64)))
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg at all")
    files = [str(SAMPLE), str(second), str(broken)]
    browser.find_element(By.ID, "file-input").send_keys("\n".join(files))
    wait_for(browser, "return ['done', 'error'].includes(document.body.dataset.state)")
    items = browser.execute_script("return window.livematte.items()")
    assert [i["done"] for i in sorted(items, key=lambda i: i["id"])] == [True, True, False]
    assert "code 1103" in next(i["error"] for i in items if not i["done"])
    # The colour picker restyles the previews without another request.
    browser.find_element(By.CSS_SELECTOR, 'input[name="bg"][value="color"]').click()
    colour = browser.execute_script(
        "return getComputedStyle(document.querySelector('.compare')).backgroundColor"
    )
    assert colour == "rgb(46, 125, 50)"
    browser.save_screenshot(str(SCREENSHOT.with_name("livematte-serve-batch.png")))
    assert csp_violations(browser) == []


def test_the_api_docs_render_under_their_csp(browser, live_server):
    browser.get(live_server + "/docs")
    wait_for(browser, "return document.querySelectorAll('.opblock').length >= 3", 30)
    assert csp_violations(browser) == []


def test_another_sites_form_cannot_use_the_keyless_server(browser, live_server, tmp_path):
    # What any web page could do: post a form to 127.0.0.1 (no preflight for a form).  Here
    # the page is a local file (Origin: null), with the form filled by the test.
    page = tmp_path / "evil.html"
    page.write_text(
        f'<form method="post" enctype="multipart/form-data" action="{live_server}/api/v1/matting">'
        '<input type="file" name="file" id="f"><button id="go">go</button></form>'
    )
    from selenium.webdriver.common.by import By

    browser.get(page.as_uri())
    browser.find_element(By.ID, "f").send_keys(str(SAMPLE))
    browser.find_element(By.ID, "go").click()
    wait_for(browser, "return document.location.href.startsWith('http')", 20)
    body = browser.execute_script("return document.body.innerText")
    assert '"code":1005' in body.replace(" ", ""), body
