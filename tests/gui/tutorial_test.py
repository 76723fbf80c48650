"""The XOS tutorial, done by an operator in the browser: the hello-world
service is installed, the tutorial's recipe is applied while its
instances' list is open and they sync before the operator's eyes, and a
failing instance is found, understood from its history and fixed.

Run by `tests/all/gui.rs` against a server with hello-world installed and
nothing else, with the variables of `gui_test.py` (whose helpers it uses)
and RECIPE (the tutorial's TOSCA recipe). Prints one line per check;
exits non-zero on the first failure, leaving a screenshot and the page's
HTML under ARTIFACTS.
"""

import os
import sys
import traceback
import urllib.request

from playwright.sync_api import expect, sync_playwright

import gui_test as g

SERVICES = "/xosapi/v1/hello-world/helloworldservices"
INSTANCES = "/xosapi/v1/hello-world/helloworldserviceinstances"
RECIPE = os.environ["RECIPE"]


def installed(page):
    g.login(page, "/ui/services")
    section = page.locator("#service-hello-world")
    expect(section).to_contain_text("1.0.0")
    expect(section.locator("table", has_text="Sync steps")).to_contain_text("sync_hello_world_service_instance")
    g.check("the services page shows hello-world installed, with its sync steps")


def recipe_syncs_live(page):
    page.goto(g.BASE + "/ui/m/HelloWorldServiceInstance")
    expect(page.locator("#live")).to_contain_text("live")
    with open(RECIPE, encoding="utf-8") as recipe:
        body = recipe.read().encode()
    request = urllib.request.Request(g.BASE + "/run", data=body, method="POST")
    request.add_header("xos-username", g.USER)
    request.add_header("xos-password", g.PASSWORD)
    with urllib.request.urlopen(request) as response:
        assert response.status == 200, response.read()
    row = page.locator("tr[data-object-id]", has_text="Daenerys Targaryen")
    expect(row.locator(".status")).to_contain_text("Enacted")
    g.check("the recipe's instance appears in the open list and turns Enacted, without a reload")


def failing_one_fixed_from_its_history(page):
    status, services = g.rest("GET", SERVICES)
    assert status == 200, services
    owner = services["items"][0]["id"]
    status, joffrey = g.rest(
        "POST", INSTANCES, {"name": "greeting-2", "hello_to": "Joffrey Baratheon", "owner_id": owner}
    )
    assert status == 201, joffrey
    page.goto(g.BASE + "/ui/m/HelloWorldServiceInstance?failed=1")
    row = page.locator(f"tr[data-object-id='{joffrey['id']}']")
    expect(row.locator(".status")).to_contain_text("Failed")
    row.get_by_role("link").first.click()
    page.get_by_role("link", name="History", exact=True).click()
    failed = page.locator("tr.run-failed").first
    expect(failed.locator("bdi.message")).to_have_text("Maybe not")
    expect(failed).to_contain_text("hello-world / sync_hello_world_service_instance")
    expect(failed.locator("details.logs li").first).to_contain_text("HelloWorldServiceInstance has been updated!")
    g.check("the failing instance's history says why (Maybe not) with the line its step logged")
    page.get_by_role("link", name=str(joffrey["id"])).click()
    page.get_by_role("link", name="Edit").click()
    page.fill("#in-hello_to", "Sansa Stark")
    page.click("form.object button[type=submit]")
    expect(page.locator(".notice")).to_have_text("Saved.")
    expect(page.locator("#detail .panel")).to_contain_text("Enacted")
    page.get_by_role("link", name="History", exact=True).click()
    expect(page.locator("tr.run").first).to_contain_text("Done")
    expect(page.locator("#failures-h")).to_have_text("Failures kept")
    expect(page.locator("section.panel")).to_contain_text("Maybe not")
    g.check("fixed in its form, it syncs; its history shows the run that worked and keeps the failure")


def main():
    os.makedirs(g.ARTIFACTS, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=g.CHROMIUM, headless=True, args=["--no-sandbox"])
        page = browser.new_context().new_page()
        page.set_default_timeout(15_000)
        step = "start"
        try:
            for step, run in [
                ("installed", lambda: installed(page)),
                ("recipe", lambda: recipe_syncs_live(page)),
                ("fix-from-history", lambda: failing_one_fixed_from_its_history(page)),
            ]:
                run()
        except BaseException:
            traceback.print_exc()
            shot = os.path.join(g.ARTIFACTS, f"tutorial-{step}.png")
            page.screenshot(path=shot, full_page=True)
            with open(os.path.join(g.ARTIFACTS, f"tutorial-{step}.html"), "w", encoding="utf-8") as out:
                out.write(page.content())
            print(f"not ok - {step}: screenshot {shot}, URL {page.url}", flush=True)
            sys.exit(1)
        finally:
            browser.close()


if __name__ == "__main__":
    main()
