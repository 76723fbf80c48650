"""How fast GUI pages load with many objects, in headless Chromium.

    python bench_list.py            # SYNCPLANE_URL, SYNCPLANE_USER, SYNCPLANE_PASSWORD, CHROMIUM
    MODEL=BenchItem LOADS=20 python bench_list.py

Signs in, then loads each page LOADS times (a new navigation each time)
and prints DOMContentLoaded p50 and p95 in milliseconds: the model's list
(50 rows), a filtered list, an object's detail, the services page. Needs
a server whose MODEL has many objects (the issue's target: 100,000).
"""

import os
import statistics

from playwright.sync_api import sync_playwright

BASE = os.environ["SYNCPLANE_URL"].rstrip("/")
USER = os.environ["SYNCPLANE_USER"]
PASSWORD = os.environ["SYNCPLANE_PASSWORD"]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
MODEL = os.environ.get("MODEL", "BenchItem")
LOADS = int(os.environ.get("LOADS", "20"))


def percentile(values, p):
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def measure(page, path):
    times = []
    for _ in range(LOADS):
        page.goto(BASE + path, wait_until="domcontentloaded")
        times.append(
            page.evaluate(
                "performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd"
            )
        )
    rows = page.locator("tr[data-object-id]").count()
    size = page.evaluate("document.documentElement.outerHTML.length")
    print(
        f"{path:<50} p50 {statistics.median(times):7.1f} ms  p95 {percentile(times, 95):7.1f} ms"
        f"  ({rows} rows, {size / 1024:.0f} KiB HTML)",
        flush=True,
    )


def main():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(BASE + "/ui/login")
        page.fill("#username", USER)
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(BASE + "/ui/services")
        measure(page, f"/ui/m/{MODEL}")
        measure(page, f"/ui/m/{MODEL}?f=name&op=icontains&q=item-0999")
        page.goto(BASE + f"/ui/m/{MODEL}")
        first = page.locator("tr[data-object-id]").first.get_attribute("data-object-id")
        measure(page, f"/ui/m/{MODEL}/{first}")
        measure(page, "/ui/services")
        browser.close()


if __name__ == "__main__":
    main()
