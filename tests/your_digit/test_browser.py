"""The digit page in a real browser (headless Chromium through Selenium): a real MNIST test digit
drawn into the pad is read as the API reads it, with every feature map as a tile; real pointer
strokes post too; the page fits a phone's width.

UPDATE_SCREENSHOT=1 saves the screenshot to docs/figures/pad.png (the README's); otherwise it goes
to the test's temporary folder, so a test run never changes the checkout.
"""

import base64
import os
import shutil
import tempfile

import pytest

from benchmarks.photos import as_drawn, png_bytes
from tests.your_digit.test_serve import LAYERS, Served
from tests.support import ROOT

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
CHROMEDRIVER = shutil.which("chromedriver")
TIMEOUT = 60  # seconds for the page to answer (the first call of a model is the slowest)

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -r requirements-test.txt)")
pytestmark = pytest.mark.skipif(CHROMIUM is None or CHROMEDRIVER is None,
                                reason="needs Chromium and chromedriver (apt-get install chromium chromium-driver)")


@pytest.fixture(scope="module")
def served(smoke_cnn):
    model, _ = smoke_cnn
    server = Served(model)
    yield server
    server.close()


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    options = Options()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", f"--user-data-dir={profile}", "--window-size=1200,1150"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_script_timeout(TIMEOUT)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def sure_digit(served, mnist_arrays):
    """Of the first 50 test digits, the one the model reads right with the highest probability."""
    best = None
    for image, label in zip(mnist_arrays["x_test"][:50], mnist_arrays["y_test"][:50]):
        body = png_bytes(as_drawn(image))
        _, answer = served.predict(body)
        p = answer["probabilities"][int(label)]
        if answer["digit"] == label and (best is None or p > best[0]):
            best = (p, int(label), body, answer)
    assert best is not None and best[0] > 0.9
    return best[1:]


def answers(driver):
    return int(driver.execute_script("return Number(document.body.dataset.answers || 0)"))


def wait_for_answer(driver, count):
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, TIMEOUT).until(lambda d: answers(d) >= count)


def test_page_reads_a_drawn_digit_as_the_api_does(served, browser, sure_digit, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    label, body, api = sure_digit
    browser.get(f"http://127.0.0.1:{served.port}/")
    pad = browser.find_element(By.ID, "pad")
    assert pad.value_of_css_property("touch-action") == "none"

    # A real stroke with the pointer (a vertical bar): the page posts it on pointerup.
    ActionChains(browser).move_to_element_with_offset(pad, 0, -80).click_and_hold() \
        .move_by_offset(0, 40).move_by_offset(0, 40).move_by_offset(0, 40).move_by_offset(0, 40).release().perform()
    wait_for_answer(browser, 1)
    assert browser.find_element(By.ID, "digit").text.isdigit()
    browser.find_element(By.ID, "clear").click()
    assert browser.find_element(By.ID, "digit").text == "\u2013"

    # A real MNIST test digit into the pad, then the event a stroke ends with.
    url = "data:image/png;base64," + base64.b64encode(body).decode()
    browser.execute_async_script("""
        const [url, done] = arguments;
        const img = new Image();
        img.onload = () => {
          const pad = document.getElementById("pad");
          pad.getContext("2d").drawImage(img, 0, 0, pad.width, pad.height);
          pad.dispatchEvent(new PointerEvent("pointerup", {bubbles: true}));
          done();
        };
        img.src = url;
    """, url)
    wait_for_answer(browser, 2)
    shown = browser.find_element(By.ID, "digit").text
    assert shown == str(api["digit"]) == str(label)
    assert browser.find_element(By.ID, "seen").get_attribute("src").startswith("data:image/png;base64,")
    bars = browser.find_elements(By.CSS_SELECTOR, "#probs .row")
    assert len(bars) == 10 and "top" in bars[label].get_attribute("class")
    tiles = browser.find_elements(By.CSS_SELECTOR, "#maps .tile")
    assert len(tiles) == 64 * len(LAYERS)
    assert len(browser.find_elements(By.CSS_SELECTOR, "#maps .layer")) == len(LAYERS)
    assert str(label) in browser.find_element(By.ID, "status").text

    shot = os.path.join(ROOT, "docs", "figures", "pad.png") if os.environ.get("UPDATE_SCREENSHOT") == "1" \
        else str(tmp_path / "pad.png")
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1200, min(max(height + 120, 800), 2400))
    assert browser.save_screenshot(shot) and os.path.getsize(shot) > 10000

    # On a phone's width the page has no sideways scrolling.
    browser.set_window_size(390, 844)
    assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")
    browser.set_window_size(1200, 1150)
