"""An operator's day in a real browser: sign in through the provider, add a client and import a file of them, add
a mailing, watch it reach the emulator and 100%, pause and test it, read the statistics, sign out. Each page is
saved as a screenshot."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from playwright.async_api import Browser, Page, expect

from tests.conftest import Probe

ZONE = "Europe/Moscow"


async def shoot(page: Page, screenshots: Path, name: str) -> None:
    await page.screenshot(path=screenshots / f"{name}.png", full_page=True)


def local(when: datetime) -> str:
    return when.astimezone(ZoneInfo(ZONE)).strftime("%Y-%m-%dT%H:%M")


async def test_an_operator_signs_in_sends_a_mailing_and_signs_out(
    herald: str, browser: Browser, probe: Probe, screenshots: Path
) -> None:
    context = await browser.new_context(timezone_id=ZONE, viewport={"width": 1280, "height": 900})
    # Nothing leaves the machine: the provider's development pages @import a web font, which is refused here.
    await context.route(re.compile(r"^https?://(?!127\.0\.0\.1[:/])"), lambda route: route.abort())
    # Every Content-Security-Policy violation the browser reports on Herald's pages fails the test: the UI's own
    # scripts, styles and forms must live within the policy.
    violations: list[dict[str, str]] = []
    await context.expose_binding("reportViolation", lambda source, report: violations.append(report))
    await context.add_init_script(
        "document.addEventListener('securitypolicyviolation', e => window.reportViolation({"
        "page: e.documentURI, directive: e.violatedDirective, blocked: e.blockedURI, sample: e.sample}));"
    )
    page = await context.new_page()

    # Sign in: Herald sends the browser to the provider, whose development form takes any user name.
    await page.goto(f"{herald}/admin/")
    await expect(page.locator("input[name=login]")).to_be_visible()
    await shoot(page, screenshots, "01-provider-login")
    await page.fill("input[name=login]", "ada")
    await page.fill("input[name=password]", "any")
    await page.click("button[type=submit]")
    await page.click("button[type=submit]")  # the provider's consent: let Herald see the profile
    await expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    await expect(page.locator(".who")).to_contain_text("ada")
    # The page learns the browser's timezone and shows itself again in it.
    await expect(page.locator("footer")).to_contain_text(f"Times are shown in {ZONE}")

    # A client.
    await page.get_by_role("link", name="Clients").click()
    await page.get_by_role("link", name="New client").click()
    await page.get_by_label("Phone").fill("123")
    await page.get_by_label("Timezone").fill(ZONE)
    await page.get_by_role("button", name="Create client").click()
    await expect(page.locator("#phone-error")).to_contain_text("Must be 11 digits")  # the API's own message
    await shoot(page, screenshots, "02-client-form-error")
    await page.get_by_label("Phone").fill("79001234567")
    await page.get_by_label("Tag").fill("vip")
    await page.get_by_role("button", name="Create client").click()
    await expect(page.get_by_role("cell", name="79001234567")).to_be_visible()
    await shoot(page, screenshots, "03-clients")

    # A client base from a file: the import's page follows it live and lists the line it refused.
    await page.get_by_role("link", name="Import").click()
    await page.get_by_label("update the client (upsert)").check()
    rows = "".join(f"7901{i:07d},,bulk,Asia/Omsk\n" for i in range(5_000))
    await page.get_by_label("File").set_input_files(
        files=[
            {
                "name": "base.csv",
                "mimeType": "text/csv",
                "buffer": ("phone,operator_code,tag,timezone\n" + rows + "7901,,bulk,UTC\n").encode(),
            }
        ]
    )
    await page.get_by_role("button", name="Import").click()
    await expect(page.get_by_role("heading", name="Import #")).to_contain_text("done", timeout=20_000)
    await expect(page.locator(".facts")).to_contain_text("Created5000")
    await expect(page.get_by_role("cell", name="Must be 11 digits")).to_be_visible()
    await shoot(page, screenshots, "03b-import")
    await page.get_by_role("link", name="Clients").first.click()
    async with page.expect_download() as download:
        await page.get_by_role("link", name="Export CSV").click()
    exported = Path(await (await download.value).path()).read_text().splitlines()
    assert exported[0] == "phone,operator_code,tag,timezone" and len(exported) == 1 + 5_001

    # A mailing that starts now, for the vip tag.
    now = datetime.now(ZoneInfo(ZONE))
    await page.get_by_role("link", name="Mailings").click()
    await page.get_by_role("link", name="New mailing").click()
    await page.get_by_label("Text").fill("Hello from the browser")
    await page.get_by_label("Start").fill(local(now - timedelta(minutes=1)))
    await page.get_by_label("End").fill(local(now + timedelta(hours=1)))
    await page.get_by_label("Tags").fill("vip")
    await page.get_by_role("button", name="Preview audience").click()
    await expect(page.locator(".audience")).to_contain_text("1 client matches")
    await shoot(page, screenshots, "04-mailing-form")
    await page.get_by_role("button", name="Create mailing").click()

    # The mailing's page: its progress bar moves live until every message is sent.
    await expect(page.get_by_role("heading", name="Mailing #")).to_be_visible()
    await expect(page.locator(".progress-text")).to_contain_text("100%", timeout=20_000)
    assert sum(probe.accepted().values()) == 1  # the emulator got it
    await page.reload()
    await expect(page.get_by_role("cell", name="sent", exact=True)).to_be_visible()
    await shoot(page, screenshots, "05-mailing")

    # Operator actions on the mailing's page: pause and resume it, send its text to one phone as a test.
    await page.get_by_role("button", name="Pause").click()
    await expect(page.get_by_role("heading", name="Mailing #")).to_contain_text("paused")
    await page.get_by_role("button", name="Resume").click()
    await expect(page.get_by_role("heading", name="Mailing #")).to_contain_text("running")
    await page.get_by_label("Phone").fill("79991234567")
    await page.get_by_role("button", name="Send a test").click()
    await expect(page.get_by_role("status")).to_contain_text("accepted by the external API")
    assert sum(probe.accepted().values()) == 2  # the mailing's message and the test
    await shoot(page, screenshots, "05b-mailing-test-send")

    # The statistics.
    await page.get_by_role("link", name="Mailings").click()
    await expect(page.locator(".progress-text").first).to_contain_text("100%")
    await shoot(page, screenshots, "06-mailings")
    await page.get_by_role("link", name="Dashboard").click()
    await expect(page.locator(".cards")).to_contain_text("1 total")
    await expect(page.get_by_role("img", name="Messages sent per hour, last 24 hours")).to_be_visible()
    await shoot(page, screenshots, "07-dashboard")
    await page.set_viewport_size({"width": 390, "height": 844})
    await shoot(page, screenshots, "08-dashboard-phone")
    await page.set_viewport_size({"width": 1280, "height": 900})

    # Sign out of Herald and of the provider (which asks to confirm): the next visit needs credentials again.
    await page.get_by_role("button", name="Log out").click()
    await shoot(page, screenshots, "09-provider-logout")
    await page.click("button[name=logout][value=yes]")
    await expect(page.get_by_role("heading", name="You are signed out")).to_be_visible()
    await shoot(page, screenshots, "10-signed-out")
    await page.goto(f"{herald}/admin/")
    await expect(page.locator("input[name=login]")).to_be_visible()

    # Swagger UI works under its own policy: the document loads and its operations show.
    await page.goto(f"{herald}/docs/")
    await expect(page.get_by_text("Add a client to the directory")).to_be_visible()
    await shoot(page, screenshots, "11-swagger-ui")
    await context.close()
    assert [v for v in violations if v["page"].startswith(herald)] == []
