"""The web page in a real browser: Debian's headless Chromium driven by Playwright, against the app served
by uvicorn on a free loopback port, with small real models. Saves screenshots under artifacts/browser/."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from serve_fixtures import ServerThread, covered_item, known_user, models_dir, real_clip  # noqa: F401
from vidpop.serve.app import ServeSettings, create_app

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "browser"
#: where a reviewer looks at them too (VIDPOP_SHOTS); the repo's artifacts/ folder otherwise
SHOTS = Path(os.environ.get("VIDPOP_SHOTS") or SHOTS)

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

    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url.removeprefix(server.url)) if r.method == "POST" else None)

    # --- predict + explain a real clip from ONE upload, with a second title to compare
    page.get_by_label("Video clip").set_input_files(str(real_clip()))
    page.get_by_label("Title", exact=True).fill("my cat learns to skateboard in the park")
    page.get_by_label("Author followers").fill("1200")
    page.get_by_label("Compare titles").fill("a dog learns to surf at the beach")
    page.get_by_role("button", name="Predict").click()
    expect(page.get_by_role("button", name="Predict")).to_be_disabled()  # visible busy state
    expect(page.locator("#predict-status")).to_contain_text("…")
    expect(page.get_by_label("Upload progress")).to_be_visible()

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
    assert posts == ["/analyze"], posts  # the clip went up once, for the prediction and the explanation together
    assert (
        page.locator("#upload-progress").evaluate("p => p.value") == 100
        and page.locator("#upload-progress").is_hidden()
    )

    # --- one verdict from one model, a context line, the limits, the attention model as a named second opinion
    expect(page.locator("#verdict")).to_contain_text("(both from poe)")
    expect(page.locator("#context")).to_contain_text("training videos (microlens)")
    expect(page.locator("#opinions")).to_contain_text("Second opinion — explain")
    expect(page.locator("#notes")).to_contain_text("untrained experts")
    for value in page.locator(".target-value").all_inner_texts():
        assert "." not in value or value[-1] in "KMB", value  # whole counts (compact K/M notation allowed)

    # --- compare titles: both predictions, the ratio with its interval, the words that differ
    what_if = page.locator("#what-if")
    expect(what_if).to_be_visible()
    expect(page.locator("#what-if-summary")).to_contain_text("views ×")
    expect(page.locator("#what-if-summary")).to_contain_text("95% interval")
    expect(page.locator("#what-if-rows tr")).to_have_count(2)
    words = page.locator("#what-if-words .word").all_inner_texts()
    first, second = "my cat learns to skateboard in the park", "a dog learns to surf at the beach"
    assert {w.split(" ·")[0] for w in words} == set(first.split(" ")) ^ set(second.split(" "))
    page.screenshot(path=str(SHOTS / "predict.png"), full_page=True)
    what_if.screenshot(path=str(SHOTS / "compare_titles.png"))

    # --- the whole answer as a JSON download
    with page.expect_download() as dl:
        page.get_by_role("link", name="Download the answer (JSON)").click()
    saved = json.loads(Path(dl.value.path()).read_text())
    assert saved["prediction"]["verdict"] and saved["prediction"]["what_if"]["titles"][1].startswith("a dog")
    assert saved["explanation"]["frames"] and dl.value.suggested_filename == "vidpop-answer.json"

    # --- 400 px wide with the results on screen: nothing scrolls sideways
    page.set_viewport_size({"width": 400, "height": 900})
    assert page.evaluate(NO_HORIZONTAL_SCROLL), page.evaluate("document.scrollingElement.scrollWidth")
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 400
    page.screenshot(path=str(SHOTS / "predict_400px.png"), full_page=True)

    # --- a bad input shows in the alert box
    page.get_by_label("Compare titles").fill("")
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
    # cards: a reason, no raw score, and no "No cover" placeholder where the data has no cover
    expect(page.locator("#rec-list .rec-because")).to_have_count(10)
    expect(page.locator("#rec-list .rec-because").first).to_have_text("popular with many viewers")
    assert "score" not in page.locator("#rec-list").inner_text()
    assert page.get_by_text("No cover").count() == 0
    assert page.locator("#rec-list .rec-item.no-cover img").count() == 0
    page.set_viewport_size({"width": 1100, "height": 900})
    page.screenshot(path=str(SHOTS / "recommend.png"), full_page=True)
    page.set_viewport_size({"width": 400, "height": 900})

    # more than one field filled: a clear error, nothing sent
    before = len(posts)
    page.get_by_label("Interests as text").fill("cooking")
    page.get_by_role("button", name="Recommend").click()
    expect(page.get_by_role("alert")).to_contain_text("Fill only one field")
    assert len(posts) == before
    page.get_by_label("Interests as text").fill("")

    # cold start from text: the video whose title matches ranks first, with its cover
    vid, title = covered_item(models_dir)
    page.get_by_label("User id").fill("")
    page.get_by_label("Interests as text").fill(title)
    page.get_by_label("How many").fill("4")
    page.get_by_role("button", name="Recommend").press("Enter")
    expect(items).to_have_count(4, timeout=30_000)
    expect(items.first).to_contain_text(f"video {vid}")
    expect(items.first.locator(".rec-because")).to_contain_text("matches your text")
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
