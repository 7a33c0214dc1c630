"""The web page in a real browser: Debian's headless Chromium driven by Playwright, against the app served
by uvicorn on a free loopback port, with small real models. Saves screenshots under artifacts/browser/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from serve_fixtures import ServerThread, covered_item, known_user, models_dir, real_clip  # noqa: F401
from vidpop.serve.app import ServeSettings, create_app

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "browser"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (make browser)"),
]

ALL_IMAGES_LOADED = """sel => {
  const imgs = [...document.querySelectorAll(sel)];
  return imgs.length > 0 && imgs.every(i => i.complete && i.naturalWidth > 0);
}"""
NO_HORIZONTAL_SCROLL = "() => document.scrollingElement.scrollWidth <= window.innerWidth"


@pytest.fixture(scope="module")
def server(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:  # noqa: F811
    work = tmp_path_factory.mktemp("browser_work")
    with ServerThread(create_app(models_dir, ServeSettings(token=None, work_dir=work))) as srv:
        yield srv
    assert list((work / "uploads").iterdir()) == []  # every request folder was removed


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
        )
        yield b
        b.close()


def test_predict_explain_and_recommend_in_chromium(
    server: ServerThread,
    browser: object,
    models_dir: Path,  # noqa: F811
) -> None:
    from playwright.sync_api import Browser, expect

    assert isinstance(browser, Browser)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    console_errors: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    page.goto(server.url + "/")
    expect(page.get_by_role("tab", name="Predict")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#models-info")).to_contain_text("variational_poe")

    # --- predict + explain a real clip
    page.get_by_label("Video clip").set_input_files(str(real_clip()))
    page.get_by_label("Title").fill("my cat learns to skateboard in the park")
    page.get_by_label("Author followers").fill("1200")
    page.get_by_role("button", name="Predict").click()
    expect(page.get_by_role("button", name="Predict")).to_be_disabled()  # visible busy state
    expect(page.locator("#predict-status")).to_contain_text("…")

    views = page.locator(".target").filter(has_text="views").first
    expect(views).to_be_visible(timeout=90_000)
    bar = views.locator(".interval-range")
    point = views.locator(".interval-point")
    expect(bar).to_be_visible()
    box, dot = bar.bounding_box(), point.bounding_box()
    assert box and dot and box["width"] > 2
    assert box["x"] - 3 <= dot["x"] + dot["width"] / 2 <= box["x"] + box["width"] + 3  # the point inside its interval
    assert views.locator(".interval-tick-label").count() >= 2  # a log axis with decade labels
    expect(page.locator("#class-value")).not_to_be_empty()
    expect(page.locator("#ppop-value")).to_contain_text("%")

    expect(page.locator("#explanation")).to_be_visible(timeout=90_000)
    page.wait_for_function(ALL_IMAGES_LOADED, arg="#frames img", timeout=30_000)
    n_frames = page.locator("#frames img").count()
    assert n_frames > 1
    alts = page.locator("#frames img").evaluate_all("imgs => imgs.map(i => i.alt)")
    assert all("Grad-CAM" in a for a in alts)
    assert page.locator("#words .word").count() == 8
    shade = page.locator("#words .word").first.evaluate("w => getComputedStyle(w).backgroundColor")
    assert shade.startswith("rgba(230, 120, 0")
    expect(page.get_by_role("button", name="Predict")).to_be_enabled()
    expect(page.locator("#error")).to_be_hidden()
    page.screenshot(path=str(SHOTS / "predict.png"), full_page=True)

    # --- 400 px wide with the results on screen: nothing scrolls sideways
    page.set_viewport_size({"width": 400, "height": 900})
    assert page.evaluate(NO_HORIZONTAL_SCROLL), page.evaluate("document.scrollingElement.scrollWidth")
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 400
    page.screenshot(path=str(SHOTS / "predict_400px.png"), full_page=True)

    # --- a bad input shows in the alert box
    page.get_by_label("Cover image").set_input_files(
        {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not an image"}
    )
    page.get_by_role("button", name="Predict").click()
    expect(page.get_by_role("alert")).to_contain_text("cover must be one of", timeout=30_000)

    # --- keyboard only: to the Recommend tab with an arrow key, submit with Enter
    page.get_by_role("tab", name="Predict").focus()
    page.keyboard.press("ArrowRight")
    recommend_tab = page.get_by_role("tab", name="Recommend")
    expect(recommend_tab).to_be_focused()
    expect(recommend_tab).to_have_attribute("aria-selected", "true")
    expect(page.get_by_role("tabpanel", name="Recommend")).to_be_visible()
    expect(page.locator("#panel-predict")).to_be_hidden()

    page.get_by_label("User id").focus()
    page.keyboard.type(known_user(models_dir))
    page.keyboard.press("Enter")
    items = page.locator("#rec-list .rec-item")
    expect(items).to_have_count(10, timeout=30_000)
    expect(items.first).to_contain_text("#1")

    # cold start from text: the video whose title matches ranks first, with its cover
    vid, title = covered_item(models_dir)
    page.get_by_label("User id").fill("")
    page.get_by_label("Interests as text").fill(title)
    page.get_by_label("How many").fill("4")
    page.get_by_role("button", name="Recommend").press("Enter")
    expect(items).to_have_count(4, timeout=30_000)
    expect(items.first).to_contain_text(f"video {vid}")
    page.wait_for_function(ALL_IMAGES_LOADED, arg="#rec-list .rec-item:first-child img.rec-cover", timeout=10_000)
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 400
    page.screenshot(path=str(SHOTS / "recommend_400px.png"), full_page=True)

    # --- back to Predict with the keyboard
    page.get_by_role("tab", name="Recommend").focus()
    page.keyboard.press("ArrowLeft")
    expect(page.get_by_role("tab", name="Predict")).to_be_focused()
    expect(page.locator("#panel-predict")).to_be_visible()
    page.keyboard.press("End")
    expect(page.get_by_role("tab", name="Recommend")).to_have_attribute("aria-selected", "true")
    assert not [e for e in console_errors if "status of 400" not in e], console_errors
