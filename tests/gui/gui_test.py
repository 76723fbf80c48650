"""The web GUI in a real browser: Playwright for Python driving the system
Chromium (never a downloaded one) against a running `syncplane serve`.

Run by `tests/all/gui.rs`, which starts the server, installs the `gadgets`
service (model `Gadget`, synced by a step that fails objects named
`bad...`), creates 120 gadgets and one hostile failing one, then runs:

    python gui_test.py

with SYNCPLANE_URL, SYNCPLANE_USER, SYNCPLANE_PASSWORD, SYNCPLANE_PID (the
server's process, paused and resumed by one check), CHROMIUM (the
browser's path) and ARTIFACTS (where a failure leaves a screenshot and the
page's HTML). Prints one line per check; exits non-zero on the first
failure.
"""

import base64
import faulthandler
import importlib
import json
import os
import re
import signal
import sys
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request

from playwright.sync_api import expect, sync_playwright

BASE = os.environ["SYNCPLANE_URL"].rstrip("/")
USER = os.environ["SYNCPLANE_USER"]
PASSWORD = os.environ["SYNCPLANE_PASSWORD"]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = os.environ.get("ARTIFACTS", "gui-artifacts")
GADGETS = "/xosapi/v1/gadgets/gadgets"
SERVER_PID = int(os.environ["SYNCPLANE_PID"])
HOSTILE = "<img src=x onerror=window.__xss=1>"
HOSTILE_NEW = "<img src=x onerror=window.__xss=2>"

expect.set_options(timeout=10_000)


def rest(method, path, body=None):
    """A REST request as the admin: (status, JSON answer)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(BASE + path, data=data, method=method)
    credentials = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    request.add_header("Authorization", "Basic " + credentials)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def gadget_by_name(name):
    query = urllib.parse.urlencode({"name": name})
    status, answer = rest("GET", f"{GADGETS}?{query}")
    assert status == 200, answer
    return answer["items"]


def check(what):
    print(f"ok - {what}", flush=True)


def rows(page):
    return page.locator("tr[data-object-id]")


def login(page, next_path):
    page.goto(BASE + next_path)
    expect(page).to_have_url(BASE + "/ui/login?" + urllib.parse.urlencode({"next": next_path}))
    page.fill("#username", USER)
    page.fill("#password", "wrong")
    page.click("button[type=submit]")
    expect(page.locator("#login-error")).to_contain_text("Wrong e-mail or password")
    page.fill("#username", USER)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(BASE + next_path)
    check("a page asked for signed out goes to the login page, a wrong password is refused, then back to the page")


def navigation(page):
    nav = page.locator("nav.side")
    expect(nav.locator("h2", has_text="gadgets")).to_be_visible()
    expect(nav.get_by_role("link", name="Gadget", exact=True)).to_be_visible()
    expect(nav.get_by_text("HiddenGadget")).to_have_count(0)
    check("navigation is grouped by service and leaves gui_hidden models out")


def list_paging_order_filter(page):
    page.goto(BASE + "/ui/m/Gadget?ordering=-name")
    expect(rows(page)).to_have_count(50)
    expect(rows(page).first).to_contain_text("gadget-119")
    page.get_by_role("link", name="Next").click()
    expect(rows(page)).to_have_count(50)
    expect(rows(page).first).to_contain_text("gadget-069")
    page.get_by_role("link", name="Next").click()
    expect(rows(page)).to_have_count(21)
    expect(page.get_by_role("link", name="Next")).to_have_count(0)
    check("a list shows 50 rows a page, ordered, with next pages (121 objects: 50, 50, 21)")
    page.get_by_role("link", name="First page").click()
    page.locator("thead").get_by_role("link", name="name").click()
    expect(page).to_have_url(BASE + "/ui/m/Gadget?ordering=name")
    expect(rows(page).first).to_contain_text("bad")
    check("a column header orders by it, in the URL")
    page.select_option("#filter-field", "name")
    page.select_option("#filter-op", "icontains")
    page.fill("#filter-q", "gadget-11")
    page.click("form.filter button[type=submit]")
    expect(rows(page)).to_have_count(10)
    url = page.url
    assert "q=gadget-11" in url and "ordering=name" in url, url
    other = page.context.new_page()
    other.goto(url)
    expect(rows(other)).to_have_count(10)
    expect(rows(other).first).to_contain_text("gadget-110")
    other.close()
    check("a filter is in the URL; the same URL in another tab shows the same rows (deep link)")
    page.goto(BASE + "/ui/m/Gadget?ordering=bogus")
    expect(page.locator("#list-problem")).to_contain_text("ordering")
    check("a wrong query parameter is named on the page")


def hostile_status(page):
    page.goto(BASE + "/ui/m/Gadget")
    page.check("input[name=failed]")
    page.click("form.filter button[type=submit]")
    expect(rows(page)).to_have_count(1)
    row = rows(page).first
    expect(row).to_contain_text("bad" + HOSTILE)
    expect(row.locator(".status")).to_contain_text("Failed")
    expect(row.locator(".message")).to_contain_text(HOSTILE + " is broken")
    assert page.locator("main img").count() == 0
    assert page.evaluate("window.__xss") is None
    row.get_by_role("link").first.click()
    expect(page.locator(".panel")).to_contain_text("Failed")
    expect(page.locator(".panel")).to_contain_text(HOSTILE + " is broken")
    assert page.locator("main img").count() == 0
    assert page.evaluate("window.__xss") is None
    check("'failed only' finds the failed object; a hostile name and backend_status show as text, no script runs")


def long_rtl_and_emoji(page):
    name = "rtl-\u05e9\u05dc\u05d5\u05dd-\U0001F642"
    status, created = rest("POST", GADGETS, {"name": name, "notes": "x" * 1_000_000})
    assert status == 201, created
    page.goto(BASE + f"/ui/m/Gadget/{created['id']}")
    expect(page.locator("h1")).to_contain_text(f"Gadget {created['id']}")
    expect(page.locator("table.fields")).to_contain_text(name)
    expect(page.locator("table.fields .cut")).to_contain_text("+998000 characters not shown")
    size = page.evaluate("document.documentElement.outerHTML.length")
    assert size < 50_000, size
    page.goto(BASE + "/ui/m/Gadget?f=name&op=icontains&q=rtl-")
    expect(rows(page)).to_have_count(1)
    expect(rows(page).first).to_contain_text(name)
    check(f"right-to-left text and emoji show as written; a 1 MB value is cut with a marker (page {size // 1024} KiB)")


def create_with_errors(page):
    page.goto(BASE + "/ui/m/Gadget/new")
    expect(page.locator("label[for=in-name] .req")).to_be_visible()
    expect(page.locator("#in-vlan")).to_have_attribute("max", "4095")
    expect(page.locator("#in-vlan")).to_have_attribute("min", "1")
    expect(page.locator("#in-name")).to_have_attribute("maxlength", "64")
    expect(page.locator("#in-enabled")).to_be_checked()
    assert page.locator("#in-color option").count() == 3
    expect(page.locator("#row-name .help").first).to_contain_text("What the gadget is called")
    check("the form has a widget per type with its bounds, choices, max_length, required marks and help text")
    page.fill("#in-name", "new-gadget")
    page.fill("#in-vlan", "5000")
    page.click("form.object button[type=submit]")
    status, refused = rest("POST", GADGETS, {"name": "new-gadget", "vlan": 5000})
    assert status == 400, (status, refused)
    expect(page.locator("#err-vlan")).to_have_text(refused["error"])
    assert page.evaluate("document.activeElement.id") == "in-vlan"
    expect(page.locator("#in-name")).to_have_value("new-gadget")
    assert gadget_by_name("new-gadget") == []
    check(f"an out-of-range number is refused at its field with REST's message ({refused['error']}), focused, nothing written")
    page.fill("#in-name", "")
    page.fill("#in-vlan", "42")
    page.click("form.object button[type=submit]")
    expect(page.locator("#err-name")).to_contain_text("name")
    assert gadget_by_name("") == []
    check("an empty required field is refused at its field")
    page.fill("#in-name", "gadget-001")
    page.click("form.object button[type=submit]")
    status, refused = rest("POST", GADGETS, {"name": "gadget-001", "vlan": 42})
    assert status in (400, 409), (status, refused)
    expect(page.locator("#err-name")).to_have_text(refused["error"])
    assert len(gadget_by_name("gadget-001")) == 1
    check(f"a duplicate unique value is refused with REST's message ({refused['error']})")
    page.fill("#in-name", HOSTILE_NEW)
    page.fill("#in-vlan", "42")
    page.select_option("#in-color", "blue")
    page.click("form.object button[type=submit]")
    expect(page.locator(".notice")).to_have_text("Saved.")
    created = gadget_by_name(HOSTILE_NEW)
    assert len(created) == 1 and created[0]["vlan"] == 42 and created[0]["color"] == "blue", created
    expect(page.locator("table.fields")).to_contain_text(HOSTILE_NEW)
    assert page.locator("main img").count() == 0
    assert page.evaluate("window.__xss") is None
    check("a corrected form creates the object; its hostile name shows as text")
    return created[0]["id"]


def pick_link(page):
    status, site = rest("POST", "/xosapi/v1/core/sites", {"name": "alpha-site<b>x</b>", "login_base": "alpha"})
    assert status == 201, site
    page.goto(BASE + "/ui/m/Gadget/new")
    page.fill("#in-name", "linked-gadget")
    page.fill("#in-site_id-search", "alpha")
    pick = page.locator("#in-site_id-picks button")
    expect(pick).to_have_count(1)
    expect(pick).to_have_text(f"alpha-site<b>x</b> ({site['id']})")
    pick.click()
    expect(page.locator("#in-site_id")).to_have_value(str(site["id"]))
    page.click("form.object button[type=submit]")
    expect(page.locator(".notice")).to_have_text("Saved.")
    saved = gadget_by_name("linked-gadget")[0]
    assert saved["site_id"] == site["id"], saved
    expect(page.locator("table.fields").get_by_role("link", name="{}".format(site["id"]))).to_be_visible()
    check("a link is picked by searching the target model by name (its label as text), and saved")


def edit(page, object_id):
    page.goto(BASE + f"/ui/m/Gadget/{object_id}")
    page.get_by_role("link", name="Edit").click()
    expect(page.locator("#in-vlan")).to_have_value("42")
    expect(page.locator("#row-observed")).to_contain_text("Read-only")
    page.fill("#in-vlan", "43")
    page.uncheck("#in-enabled")
    page.click("form.object button[type=submit]")
    expect(page.locator(".notice")).to_have_text("Saved.")
    status, saved = rest("GET", f"{GADGETS}/{object_id}")
    assert status == 200 and saved["vlan"] == 43 and saved["enabled"] is False, saved
    check("editing saves through the core (vlan 43, enabled unticked); feedback fields are read-only, saying why")
    # A second editor's stale save is refused, not written over.
    page.get_by_role("link", name="Edit").click()
    rest("PUT", f"{GADGETS}/{object_id}", {"vlan": 44})
    page.fill("#in-vlan", "45")
    page.click("form.object button[type=submit]")
    expect(page.locator("#form-error")).to_contain_text("changed by someone else")
    status, saved = rest("GET", f"{GADGETS}/{object_id}")
    assert saved["vlan"] == 44, saved
    check("a stale save reports the conflict and writes nothing")


def live(page):
    target = gadget_by_name("gadget-001")[0]
    page.goto(BASE + "/ui/m/Gadget?f=name&op=icontains&q=gadget-00")
    expect(page.locator("#live")).to_contain_text("live")
    page.evaluate("window.__marker = 'same page'")
    started = time.monotonic()
    status, _ = rest("PUT", f"{GADGETS}/{target['id']}", {"vlan": 777})
    assert status == 200
    expect(page.locator(f"tr[data-object-id='{target['id']}']")).to_contain_text("777")
    elapsed = time.monotonic() - started
    assert page.evaluate("window.__marker") == "same page", "the page was reloaded"
    check(f"a REST change shows in the open list without a reload ({elapsed * 1000:.0f} ms)")
    page.evaluate(
        "() => { Object.defineProperty(document, 'hidden', {value: true, configurable: true});"
        " document.dispatchEvent(new Event('visibilitychange')); }"
    )
    expect(page.locator("#live")).to_contain_text("paused")
    rest("PUT", f"{GADGETS}/{target['id']}", {"vlan": 779})
    page.wait_for_timeout(1500)
    expect(page.locator(f"tr[data-object-id='{target['id']}']")).not_to_contain_text("779")
    page.evaluate(
        "() => { Object.defineProperty(document, 'hidden', {value: false, configurable: true});"
        " document.dispatchEvent(new Event('visibilitychange')); }"
    )
    expect(page.locator("#live")).to_contain_text("live")
    expect(page.locator(f"tr[data-object-id='{target['id']}']")).to_contain_text("779")
    check("a hidden tab pauses its stream; shown again, it catches up")
    page.goto(BASE + f"/ui/m/Gadget/{target['id']}")
    expect(page.locator("#live")).to_contain_text("live")
    rest("PUT", f"{GADGETS}/{target['id']}", {"vlan": 778})
    expect(page.locator("table.fields")).to_contain_text("778")
    check("a REST change shows in the open detail page")


def invocation_history(page):
    bad = gadget_by_name("bad" + HOSTILE)[0]
    page.goto(BASE + f"/ui/m/Gadget/{bad['id']}")
    page.get_by_role("link", name="History", exact=True).click()
    expect(page.locator("h1")).to_contain_text(f"History of Gadget {bad['id']}")
    expect(page.locator("#failures-h")).to_have_text("Failures kept")
    failed = page.locator("tr.run-failed")
    expect(failed.first).to_contain_text("Failed")
    expect(failed.first.locator("bdi.message")).to_have_text("bad" + HOSTILE + " is broken")
    assert page.evaluate("window.__xss") is None, "a script ran"
    page.select_option("#outcome", "done")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"outcome=done"))
    expect(page.locator("tr.run-failed")).to_have_count(0)
    check("an object's history shows its failed runs, message as text, and filters by outcome")
    page.get_by_role("link", name="Invocation history").click()
    expect(page.locator("h1")).to_have_text("History of every step")
    expect(page.locator("table.runs")).to_contain_text(f"Gadget {bad['id']}")
    page.locator("table.runs a", has_text="gadgets / chain_step").first.click()
    expect(page.locator("h1")).to_have_text("History of step chain_step of gadgets")
    check("the step history lists invocations across objects, each linking to its object")


def tosca_live(page):
    page.goto(BASE + "/ui/m/Gadget?f=name&op=icontains&q=tosca-gadget")
    expect(page.locator("#live")).to_contain_text("live")
    recipe = (
        "tosca_definitions_version: tosca_simple_yaml_1_0\n"
        "topology_template:\n  node_templates:\n    g:\n"
        "      type: tosca.nodes.Gadget\n      properties:\n"
        "        name: tosca-gadget-1\n        vlan: 321\n"
    )
    request = urllib.request.Request(BASE + "/run", data=recipe.encode(), method="POST")
    request.add_header("xos-username", USER)
    request.add_header("xos-password", PASSWORD)
    started = time.monotonic()
    with urllib.request.urlopen(request) as response:
        assert response.status == 200, response.read()
    expect(page.locator("tbody tr", has_text="tosca-gadget-1")).to_contain_text("321")
    elapsed = time.monotonic() - started
    check(f"an object created by a TOSCA recipe shows in the open list ({elapsed * 1000:.0f} ms)")


def paused_server(page):
    """The server stopped for 10 s (SIGSTOP) with a change just before and
    one just after: the open page shows both, and its stream is live again."""
    page.goto(BASE + "/ui/m/Gadget?f=name&op=icontains&q=paused-")
    expect(page.locator("#live")).to_contain_text("live")
    status, _ = rest("POST", GADGETS, {"name": "paused-before", "vlan": 11})
    assert status == 201
    os.kill(SERVER_PID, signal.SIGSTOP)
    try:
        page.wait_for_timeout(10_000)
    finally:
        os.kill(SERVER_PID, signal.SIGCONT)
    status, _ = rest("POST", GADGETS, {"name": "paused-after", "vlan": 12})
    assert status == 201
    expect(page.locator("tbody tr", has_text="paused-before")).to_have_count(1)
    expect(page.locator("tbody tr", has_text="paused-after")).to_have_count(1)
    expect(page.locator("#live")).to_contain_text("live")
    check("a server paused 10 s (SIGSTOP) and resumed loses no change in the open page")


def delete(page, object_id):
    page.goto(BASE + f"/ui/m/Gadget/{object_id}")
    page.get_by_role("link", name="Delete").click()
    expect(page.locator("h1")).to_contain_text("Delete Gadget")
    page.locator("main form button[type=submit]").click()
    expect(page).to_have_url(BASE + f"/ui/m/Gadget?deleted={object_id}")
    status, gone = rest("GET", f"{GADGETS}/{object_id}")
    assert status == 404 or gone.get("deleted") is True, (status, gone)
    check("delete asks to confirm, then marks the object deleted")
    page.go_back()
    # Purged by now, or still waiting for its teardown: either way not the
    # page as it was.
    expect(page.locator("main")).to_contain_text(re.compile("does not exist|deleted", re.IGNORECASE))
    check("the back button after a delete shows the object is gone, not a stale page")


def services(page):
    page.goto(BASE + "/ui/services")
    section = page.locator("section.service", has_text="gadgets")
    expect(section).to_contain_text("0.1.0")
    expect(section.locator(".health")).to_contain_text("failing")
    expect(section).to_contain_text("chain_step")
    expect(section).to_contain_text("No grants beyond its own models")
    expect(section).to_contain_text("is broken")
    assert page.evaluate("window.__xss") is None
    check("the services page shows version, health with its reason, steps and the last error as text")


def graph(page):
    page.goto(BASE + "/ui/graph")
    svg = page.locator("svg#service-graph")
    expect(svg).to_be_visible()
    node = svg.locator("a.node", has_text="gadgets")
    expect(node).to_have_attribute("href", "/ui/services#service-gadgets")
    # Health as a word and a symbol in the picture, not colour alone.
    expect(node).to_contain_text("failing")
    expect(node).to_contain_text("\u26a0")
    row = page.locator("#graph-table tr", has_text="gadgets")
    expect(row).to_contain_text("nothing")
    expect(row.locator(".health")).to_contain_text("failing")
    node.click()
    expect(page).to_have_url(BASE + "/ui/services#service-gadgets")
    check("the service graph is an SVG whose nodes are links, with health as a word, and a table under it")


def install_review(page):
    package = os.environ["INSTALL_PACKAGE"]
    page.goto(BASE + "/ui/services")
    page.get_by_role("link", name="Install a service").click()
    page.get_by_label("Package file").set_input_files(package)
    page.get_by_role("button", name="Review").click()
    expect(page.locator("#review-title")).to_contain_text("widgets")
    expect(page.locator("main")).to_contain_text("Plan: install")
    expect(page.locator("#plan-models")).to_contain_text("Widget")
    status, before = rest("GET", "/syncplane/v1/services")
    assert "widgets" not in json.dumps(before), before
    page.locator("#confirm").click()
    expect(page).to_have_url(BASE + "/ui/services#service-widgets")
    expect(page.locator("section#service-widgets")).to_contain_text("0.2.0")
    check("an uploaded package is reviewed (plan shown, nothing installed), then installed on confirm")


def uninstall_and_history(page):
    section = page.locator("section#service-widgets")
    section.get_by_role("link", name="Uninstall…").click()
    expect(page.locator("h1")).to_contain_text("Uninstall widgets 0.2.0?")
    expect(page.locator("main")).to_contain_text("Its models hold no objects.")
    status, before = rest("GET", "/syncplane/v1/services")
    assert "widgets" in json.dumps(before), before
    page.locator("#confirm").click()
    expect(page).to_have_url(BASE + "/ui/services")
    expect(page.locator("section#service-widgets")).to_have_count(0)
    page.goto(BASE + "/ui/services/widgets/history")
    rows = page.locator("#history tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("uninstall")
    expect(rows.nth(1)).to_contain_text("install")
    expect(rows.nth(0)).to_contain_text("user " + USER)
    check("a service is uninstalled from its section after a review, and its history lists both changes")


# axe-core, from the pip package in the test's venv (under target/).
AXE_JS = os.path.join(os.path.dirname(importlib.import_module("axe_playwright_python").__file__), "axe.min.js")
# Impacts that fail the check.
AXE_FAILING = {"serious", "critical"}


def accessibility(browser, object_id):
    """axe-core on every kind of page: no serious or critical violation.
    Its script is injected inline, which the pages' CSP forbids, so this
    context alone bypasses the CSP."""
    context = browser.new_context(bypass_csp=True)
    context.set_default_timeout(15_000)
    page = context.new_page()
    found = []
    try:
        paths = ["/ui/login"]
        page.goto(BASE + "/ui/login")
        page.fill("#username", USER)
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        expect(page).to_have_url(BASE + "/ui/services")
        paths += [
            "/ui/services",
            "/ui/graph",
            "/ui/services/install",
            "/ui/m/Gadget",
            f"/ui/m/Gadget/{object_id}",
            "/ui/m/Gadget/new",
            f"/ui/m/Gadget/{object_id}/edit",
            f"/ui/m/Gadget/{object_id}/delete",
            f"/ui/m/Gadget/{object_id}/history",
            "/ui/history",
        ]
        for path in paths:
            page.goto(BASE + path)
            page.add_script_tag(path=AXE_JS)
            result = page.evaluate("async () => await axe.run(document, { resultTypes: ['violations'] })")
            assert result["testEngine"]["version"].startswith("4."), result["testEngine"]
            for v in result["violations"]:
                if v.get("impact") in AXE_FAILING:
                    targets = [n["target"] for n in v["nodes"]][:5]
                    found.append(f"{path}: {v['id']} ({v['impact']}): {v['help']} at {targets}")
    finally:
        context.close()
    assert not found, "axe-core found:\n" + "\n".join(found)
    check("axe-core finds no serious or critical violation on any kind of page")


def tab_to(page, selector):
    """Presses Tab until the element `selector` has the focus."""
    for _ in range(300):
        if page.evaluate("(s) => document.activeElement === document.querySelector(s)", selector):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {selector}")


def enter(page):
    """Presses Enter on what has the focus, waiting for the page it opens."""
    with page.expect_navigation():
        page.keyboard.press("Enter")


def keyboard_only(browser):
    """Sign in, list, filter, open, edit and save with the keyboard alone."""
    context = browser.new_context()
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        page.goto(BASE + "/ui/m/Gadget")
        expect(page.locator("#username")).to_be_focused()  # autofocus
        page.keyboard.type(USER)
        page.keyboard.press("Tab")
        page.keyboard.type(PASSWORD)
        enter(page)
        expect(page).to_have_url(BASE + "/ui/m/Gadget")
        tab_to(page, "#filter-q")
        page.keyboard.type("gadget-002")
        enter(page)
        expect(rows(page)).to_have_count(1)
        tab_to(page, "tr[data-object-id] a")
        enter(page)
        expect(page.locator("h1")).to_contain_text("Gadget")
        tab_to(page, ".actions a[href$='/edit']")
        enter(page)
        tab_to(page, "#in-vlan")
        page.keyboard.press("Control+a")
        page.keyboard.type("99")
        enter(page)
        expect(page.locator(".notice")).to_have_text("Saved.")
        saved = gadget_by_name("gadget-002")[0]
        assert saved["vlan"] == 99, saved
    except BaseException:
        page.screenshot(path=os.path.join(ARTIFACTS, "failure-keyboard-page.png"), full_page=True)
        with open(os.path.join(ARTIFACTS, "failure-keyboard-page.html"), "w", encoding="utf-8") as out:
            out.write(page.content())
        print(f"keyboard page at {page.url}", flush=True)
        raise
    finally:
        context.close()
    check("a keyboard-only run signs in, filters, opens, edits and saves")


def csrf_and_logout(page, context):
    response = page.request.post(
        BASE + "/ui/m/Gadget/new", form={"name": "forged", "csrf": "nope"}, max_redirects=0
    )
    assert response.status == 403, response.status
    assert gadget_by_name("forged") == []
    check("a POST without the session's CSRF token is refused and writes nothing")
    cookies = [c for c in context.cookies() if c["name"] == "syncplane_session"]
    assert cookies and cookies[0]["httpOnly"] and cookies[0]["sameSite"] == "Strict", cookies
    assert cookies[0]["path"] == "/ui", cookies
    page.goto(BASE + "/ui/services")
    page.get_by_role("button", name="Sign out").click()
    expect(page.locator(".notice")).to_contain_text("signed out")
    page.goto(BASE + "/ui/m/Gadget")
    expect(page).to_have_url(BASE + "/ui/login?next=%2Fui%2Fm%2FGadget")
    check("the session cookie is HttpOnly, SameSite=Strict, Path=/ui; signing out ends it")


def main():
    # Whatever hangs, the run ends, showing where it was.
    faulthandler.dump_traceback_later(int(os.environ.get("GUI_TEST_TIMEOUT", "300")), exit=True)
    os.makedirs(ARTIFACTS, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        context = browser.new_context()
        context.set_default_timeout(15_000)
        page = context.new_page()
        foreign, problems = [], []
        page.on("request", lambda r: r.url.startswith(BASE) or foreign.append(r.url))
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.on("console", lambda m: m.type == "error" and problems.append(f"console: {m.text}"))
        step = "start"
        try:
            for step, run in [
                ("login", lambda: login(page, "/ui/m/Gadget?ordering=-name")),
                ("navigation", lambda: navigation(page)),
                ("list", lambda: list_paging_order_filter(page)),
                ("hostile", lambda: hostile_status(page)),
                ("services", lambda: services(page)),
                ("graph", lambda: graph(page)),
                ("install-review", lambda: install_review(page)),
                ("uninstall-history", lambda: uninstall_and_history(page)),
                ("long-rtl-emoji", lambda: long_rtl_and_emoji(page)),
            ]:
                run()
            step = "create"
            created = create_with_errors(page)
            step = "pick-link"
            pick_link(page)
            step = "edit"
            edit(page, created)
            step = "live"
            live(page)
            step = "history"
            invocation_history(page)
            step = "tosca-live"
            tosca_live(page)
            step = "sigstop"
            paused_server(page)
            step = "delete"
            delete(page, created)
            step = "keyboard"
            keyboard_only(browser)
            step = "accessibility"
            accessibility(browser, gadget_by_name("gadget-003")[0]["id"])
            step = "csrf-logout"
            csrf_and_logout(page, context)
            csp = page.request.get(BASE + "/ui/login").headers.get("content-security-policy", "")
            assert "default-src 'self'" in csp, csp
            # Refused forms and the bad ordering are answered 4xx, which the
            # browser logs as failed loads; nothing else may be logged (a
            # CSP violation would be).
            unexpected = [p for p in problems if "Failed to load resource" not in p]
            assert not unexpected, unexpected
            assert not foreign, f"requests to another origin: {foreign}"
            check("every answer has a strict CSP; no script error; no request left the origin")
        except BaseException:
            traceback.print_exc()
            shot = os.path.join(ARTIFACTS, f"failure-{step}.png")
            html = os.path.join(ARTIFACTS, f"failure-{step}.html")
            try:
                page.screenshot(path=shot, full_page=True)
                with open(html, "w", encoding="utf-8") as out:
                    out.write(page.content())
                print(f"not ok - {step}: screenshot {shot}, HTML {html}, URL {page.url}", flush=True)
            except Exception as error:  # the page itself may be gone
                print(f"not ok - {step}: no screenshot ({error})", flush=True)
            print("problems seen:", problems, flush=True)
            sys.exit(1)
        finally:
            browser.close()


if __name__ == "__main__":
    main()
