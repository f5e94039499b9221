"""The digit page end to end in a real browser (headless Chromium through Selenium): a real pointer
stroke posts, a real MNIST test digit drawn into the pad is read as the API reads it, with every
feature map as a tile, and the page fits a phone's width. Skipped without Chromium and chromedriver.

UPDATE_SCREENSHOT=1 saves the screenshot to docs/figures/pad.png (the README's); otherwise it goes
to the test's temporary folder, so a test run never changes the checkout.
"""

import base64
import os
import shutil

import pytest

from benchmarks.photos import as_drawn, png_bytes
from tests.your_digit.test_serve import LAYERS, Served

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
CHROMEDRIVER = shutil.which("chromedriver")
TIMEOUT = 60  # seconds for the page to answer

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -r requirements-test.txt)")
pytestmark = [pytest.mark.slow,  # a browser starts: CI runs it with the slow tests
              pytest.mark.skipif(CHROMIUM is None or CHROMEDRIVER is None,
                                 reason="needs Chromium and chromedriver (apt-get install chromium chromium-driver)")]


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}", "--window-size=1200,1150"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_script_timeout(TIMEOUT)
    yield driver
    driver.quit()


def wait_for_answers(driver, count):
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, TIMEOUT).until(
        lambda d: d.execute_script("return Number(document.body.dataset.answers || 0)") >= count)


def test_the_page_reads_a_drawn_digit_as_the_api_does(smoke_cnn, mnist_arrays, browser, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    served = Served(smoke_cnn[0])
    try:
        for image, label in zip(mnist_arrays["x_test"], mnist_arrays["y_test"]):  # one the model reads right
            body = png_bytes(as_drawn(image))
            if served.predict(body)[1]["digit"] == label:
                break
        browser.get(f"http://127.0.0.1:{served.port}/")
        pad = browser.find_element(By.ID, "pad")
        assert pad.value_of_css_property("touch-action") == "none"

        # A real stroke with the pointer (a vertical bar): the page posts it on pointerup.
        ActionChains(browser).move_to_element_with_offset(pad, 0, -80).click_and_hold() \
            .move_by_offset(0, 80).move_by_offset(0, 80).release().perform()
        wait_for_answers(browser, 1)
        assert browser.find_element(By.ID, "digit").text.isdigit()
        browser.find_element(By.ID, "clear").click()
        assert browser.find_element(By.ID, "digit").text == "\u2013"

        # The test digit into the pad, then the event a stroke ends with.
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
        """, "data:image/png;base64," + base64.b64encode(body).decode())
        wait_for_answers(browser, 2)
    finally:
        served.close()
    assert browser.find_element(By.ID, "digit").text == str(label)
    assert str(label) in browser.find_element(By.ID, "status").text
    assert browser.find_element(By.ID, "seen").get_attribute("src").startswith("data:image/png;base64,")
    bars = browser.find_elements(By.CSS_SELECTOR, "#probs .row")
    assert len(bars) == 10 and "top" in bars[label].get_attribute("class")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#maps .layer")) == len(LAYERS)
    assert len(browser.find_elements(By.CSS_SELECTOR, "#maps .tile")) == 64 * len(LAYERS)

    shot = os.path.join(ROOT, "docs", "figures", "pad.png") if os.environ.get("UPDATE_SCREENSHOT") == "1" \
        else str(tmp_path / "pad.png")
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1200, min(max(height + 120, 800), 2400))
    assert browser.save_screenshot(shot) and os.path.getsize(shot) > 10000

    browser.set_window_size(390, 844)  # a phone's width: no sideways scrolling
    assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")
