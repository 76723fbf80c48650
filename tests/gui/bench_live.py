"""How live the GUI is, in headless Chromium: how soon a REST change shows
in an open page, and how fast a click answers while the server takes a
steady stream of changes.

    python bench_live.py    # SYNCPLANE_URL, SYNCPLANE_USER, SYNCPLANE_PASSWORD, CHROMIUM
    CHANGES=20 RATE=1000 SECONDS=30 CLICKS=40 python bench_live.py

Makes its own objects (core `Site`s named `live-bench-...`, 200 of them,
once), then:

1. opens one of them and changes its name through REST CHANGES times,
   one at a time, timing each until the open page shows it (p50, p95);
2. sends RATE changes a second through REST for SECONDS seconds (the
   200 sites renamed in turn, from 8 threads on kept-alive connections)
   while the browser, on the sites' list (which refreshes live), clicks
   between two orderings CLICKS times, timing each in the browser from
   the click event to the new page's DOMContentLoaded (p50, p95), and
   prints the rate achieved.
"""

import base64
import http.client
import json
import os
import statistics
import threading
import time
import urllib.parse

from playwright.sync_api import sync_playwright

BASE = os.environ["SYNCPLANE_URL"].rstrip("/")
USER = os.environ["SYNCPLANE_USER"]
PASSWORD = os.environ["SYNCPLANE_PASSWORD"]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHANGES = int(os.environ.get("CHANGES", "20"))
RATE = int(os.environ.get("RATE", "1000"))
SECONDS = float(os.environ.get("SECONDS", "30"))
CLICKS = int(os.environ.get("CLICKS", "40"))
SITES = "/xosapi/v1/core/sites"
OBJECTS = 200
THREADS = 8
# The writers sign in once and send the session token: a password check
# per request is what tokens are for avoiding.
AUTH = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


def percentile(values, p):
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def report(what, millis):
    print(
        f"{what:<58} p50 {statistics.median(millis):7.1f} ms  p95 {percentile(millis, 95):7.1f} ms"
        f"  ({len(millis)} samples)",
        flush=True,
    )


class Rest:
    """REST requests as the admin on one kept-alive connection."""

    def __init__(self):
        url = urllib.parse.urlsplit(BASE)
        self.connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)

    def send(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": AUTH}
        if data is not None:
            headers["Content-Type"] = "application/json"
        try:
            self.connection.request(method, path, body=data, headers=headers)
            response = self.connection.getresponse()
        except (http.client.HTTPException, OSError):
            # The server closed the kept-alive connection: once more on a
            # new one.
            self.connection.close()
            self.connection.request(method, path, body=data, headers=headers)
            response = self.connection.getresponse()
        answer = response.read()
        try:
            return response.status, json.loads(answer or b"null")
        except ValueError:
            return response.status, answer[:200]


def sites(rest):
    """The bench's sites (made on the first run): their ids."""
    query = urllib.parse.urlencode({"name__contains": "live-bench-", "page_size": OBJECTS, "ordering": "id"})
    status, found = rest.send("GET", f"{SITES}?{query}")
    assert status == 200, found
    ids = [item["id"] for item in found["items"]]
    if len(ids) < OBJECTS:
        batch = [
            {"name": f"live-bench-{i:03}", "login_base": f"lb{i:03}"}
            for i in range(len(ids), OBJECTS)
        ]
        status, made = rest.send("POST", SITES, batch)
        assert status == 201, made
        ids += [item["id"] for item in made]
    return ids


def change_latency(page, rest, target):
    page.goto(f"{BASE}/ui/m/Site/{target}")
    page.wait_for_selector("#live.live-on")
    times = []
    for n in range(CHANGES):
        name = f"live-bench-shown-{n}-{time.time_ns()}"
        started = time.monotonic()
        status, answer = rest.send("PUT", f"{SITES}/{target}", {"name": name})
        assert status == 200, answer
        page.wait_for_function(
            "name => document.querySelector('table.fields').textContent.includes(name)",
            arg=name,
            timeout=10_000,
        )
        times.append((time.monotonic() - started) * 1000)
    report("a REST change shows in the open detail page", times)


# Notes when the next click happens (in the page's session storage).
CLICK_CLOCK = """() => document.addEventListener('click', () =>
    sessionStorage.setItem('clickAt', String(performance.timeOrigin + performance.now())),
    { capture: true, once: true })"""

# Milliseconds from that click to this page's DOMContentLoaded.
SINCE_CLICK = """() => performance.timeOrigin
    + performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd
    - Number(sessionStorage.getItem('clickAt'))"""


def clicks_under_load(page, ids):
    stop = threading.Event()
    sent = [0] * THREADS
    errors = []

    def writer(slot):
        rest = Rest()
        mine = ids[slot::THREADS]
        interval = THREADS / RATE
        next_at = time.monotonic()
        n = 0
        while not stop.is_set():
            target = mine[n % len(mine)]
            status, answer = rest.send("PUT", f"{SITES}/{target}", {"name": f"live-bench-{target}-{n}"})
            if status != 200:
                errors.append((status, answer))
            n += 1
            sent[slot] = n
            next_at += interval
            pause = next_at - time.monotonic()
            if pause > 0:
                time.sleep(pause)

    threads = [threading.Thread(target=writer, args=(slot,), daemon=True) for slot in range(THREADS)]
    page.goto(f"{BASE}/ui/m/Site?name__contains=live-bench-&ordering=name")
    page.wait_for_selector("#live.live-on")
    started = time.monotonic()
    for thread in threads:
        thread.start()
    times = []
    orderings = ["-name", "name"]
    try:
        for n in range(CLICKS):
            if time.monotonic() - started > SECONDS:
                break
            ordering = orderings[n % 2]
            link = page.locator(f"thead a[href*='ordering={ordering}']").first
            # Timed in the browser, from the click's event to the new
            # page's DOMContentLoaded (not the driver's round trips).
            page.evaluate(CLICK_CLOCK)
            link.click()
            page.wait_for_url(f"**ordering={ordering}*", wait_until="domcontentloaded")
            times.append(page.evaluate(SINCE_CLICK))
            page.wait_for_timeout(250)
        while time.monotonic() - started < SECONDS:
            time.sleep(0.1)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    elapsed = time.monotonic() - started
    total = sum(sent)
    statuses = sorted({status for status, _ in errors})
    print(
        f"changes sent through REST: {total} in {elapsed:.1f} s = {total / elapsed:.0f}/s"
        f" (asked {RATE}/s), {len(errors)} refused {statuses} {errors[:1]}",
        flush=True,
    )
    report(f"a click answers during {total / elapsed:.0f} changes/s", times)


def sign_in():
    """A session token for the REST writers."""
    global AUTH
    status, answer = Rest().send("POST", "/syncplane/v1/login", {"username": USER, "password": PASSWORD})
    assert status == 200, answer
    AUTH = "Bearer " + answer["token"]


def main():
    sign_in()
    rest = Rest()
    ids = sites(rest)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(BASE + "/ui/login")
        page.fill("#username", USER)
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(BASE + "/ui/services")
        change_latency(page, rest, ids[0])
        clicks_under_load(page, ids)
        browser.close()


if __name__ == "__main__":
    main()
