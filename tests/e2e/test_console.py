"""The operator console at /console/, driven in Chromium against a real stack served by
the gateway: sign-in, products and stock, a bulk upload with a bad row, one order watched
to DELIVERED live, another canceled, a refused cancel, the overview's live counts and the
orders list's filters and pages, with no JavaScript or console error on any page. A
screenshot of each view is kept (FULFILLMENT_ARTIFACTS, or a directory under pytest's
temporary path)."""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from services.common.auth.principal import Role
from services.common.config import Settings
from tests.auth import token
from tests.browser import PageProblems, chromium
from tests.e2e.conftest import Stack, up_stack
from tests.support import private_stores, wait_until

pytestmark = pytest.mark.e2e

# Each lifecycle step takes 2-2.5 s: an order is cancelable for 4 s or more after it is
# created, and delivered within about 8 s, so both can be watched from the browser.
STEP_DELAY_S = ("2", "2.5")
TIMEOUT_MS = 10_000
DELIVERY_TIMEOUT_MS = 20_000
TOKEN_KEY = "fulfillment.console.token"
ACTIVE = ("PENDING", "PROCESSING", "PACKAGING", "SHIPPED")


@pytest.fixture(scope="module")
def console_stack(
    service_env: dict[str, str], settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """`fulfillment up` with slow steps and stores of its own (so that its counts are its
    own orders' and no other stack's worker takes its steps)."""
    with private_stores(service_env, "fulfillment_console") as own_stores:
        env = {
            **own_stores,
            "FULFILLMENT_STEP_DELAY_MIN_S": STEP_DELAY_S[0],
            "FULFILLMENT_STEP_DELAY_MAX_S": STEP_DELAY_S[1],
        }
        log = Path(tmp_path_factory.mktemp("console")) / "up.log"
        with up_stack(env, settings, log, workers=4, timeout_s=60) as stack:
            yield stack


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def artifacts(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the screenshots go; said on the terminal, captured output or not."""
    configured = os.environ.get("FULFILLMENT_ARTIFACTS")
    directory = Path(configured) / "console" if configured else tmp_path_factory.mktemp("console-screenshots")
    directory.mkdir(parents=True, exist_ok=True)
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"console screenshots: {directory}")
    return directory


class Console:
    """One browser tab on the console, and what it reported."""

    def __init__(self, page: Page, stack: Stack, artifacts: Path) -> None:
        self.page = page
        self.stack = stack
        self.url = f"{stack.gateway}/console/"
        self.problems = PageProblems(page)
        self._artifacts = artifacts

    def open(self, route: str = "") -> None:
        self.page.goto(f"{self.url}{route}")

    def go(self, route: str) -> None:
        """Another view of the same page (the hash changes; nothing is reloaded)."""
        self.page.evaluate("route => { window.location.hash = route; }", route)

    def sign_in(self, role: Role = Role.ADMIN, subject: str = "") -> str:
        """Signs in through the form with a token of `role`; returns the token."""
        self.open()
        signed = token(self.stack.settings, role, subject)
        self.page.locator('input[name="token"]').fill(signed)
        self.page.get_by_role("button", name="Sign in").click()
        expect(self.page.get_by_role("button", name="Sign out")).to_be_visible()
        return signed

    def navigate(self, view: str) -> None:
        """Follows the navigation's link to `view`."""
        nav = self.page.get_by_role("navigation", name="Console")
        nav.get_by_role("link", name=view, exact=True).click()

    def heading(self, text: str | re.Pattern[str]) -> None:
        expect(self.page.get_by_role("heading", level=1)).to_have_text(text)

    def screenshot(self, name: str) -> Path:
        path = self._artifacts / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def mark_document(self) -> None:
        """A flag that only this document holds: still there later means no reload."""
        self.page.evaluate("() => { window.__sameDocument = true; }")

    def same_document(self) -> bool:
        return bool(self.page.evaluate("() => window.__sameDocument === true"))


@pytest.fixture
def console(browser: Browser, console_stack: Stack, artifacts: Path) -> Iterator[Console]:
    context = browser.new_context(viewport={"width": 1366, "height": 860})
    context.set_default_timeout(TIMEOUT_MS)
    context.set_default_navigation_timeout(TIMEOUT_MS)
    try:
        yield Console(context.new_page(), console_stack, artifacts)
    finally:
        context.close()


def _product(stack: Stack, price: str, stock: int) -> dict[str, Any]:
    status, body = stack.http("POST", "/v1/products", {
        "sku": f"console-{uuid.uuid4().hex[:10]}", "name": "Desk lamp", "description": "brass",
        "price": price, "initial_stock": stock,
    })
    assert status == 200 and isinstance(body, dict), body
    return body


def _order(stack: Stack, order_id: str) -> dict[str, Any]:
    status, body = stack.http("GET", f"/v1/orders/{order_id}")
    assert status == 200 and isinstance(body, dict), body
    return body


def test_sign_in_keeps_the_token_in_this_tab_only_and_says_why_it_refuses(console: Console) -> None:
    page = console.page
    console.open()
    console.heading("Sign in")
    console.problems.expect_refusal("/v1/products", 401)
    page.locator('input[name="token"]').fill("not-a-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert").filter(has_text="refused this token")).to_be_visible()
    console.screenshot("sign-in")

    signed = console.sign_in()
    console.heading("Overview")
    stored = page.evaluate(
        f"() => [sessionStorage.getItem('{TOKEN_KEY}'), localStorage.length, document.cookie]"
    )
    assert stored == [signed, 0, ""]
    page.reload()
    console.heading("Overview")

    page.get_by_role("button", name="Sign out").click()
    console.heading("Sign in")
    expect(page.get_by_role("alert").filter(has_text="signed out")).to_be_visible()
    assert page.evaluate(f"() => sessionStorage.getItem('{TOKEN_KEY}')") is None

    # A customer may sign in, but the overview is an admin's: the page says so.
    console.problems.expect_refusal("/v1/orders:summarize", 403)
    console.sign_in(Role.CUSTOMER, "ada")
    expect(page.get_by_role("alert").filter(has_text="role is not allowed")).to_be_visible()

    # A token the gateway stops accepting sends the tab back to sign-in, with the reason.
    console.problems.expect_refusal("/v1/orders:summarize", 401)
    console.problems.expect_refusal("/v1/orders", 401)
    page.evaluate(f"() => sessionStorage.setItem('{TOKEN_KEY}', 'expired.or.forged')")
    page.reload()
    console.heading("Sign in")
    expect(page.get_by_role("alert").filter(has_text="Sign in again")).to_be_visible()
    console.problems.assert_none()


def test_products_show_the_servers_field_messages_and_change_stock(console: Console) -> None:
    page = console.page
    console.sign_in()
    console.navigate("Products")
    console.heading("Products")
    create = page.get_by_role("region", name="Create a product")

    console.problems.expect_refusal("/v1/products", 400)
    create.get_by_label("SKU").fill("")
    create.get_by_label("Name").fill("Desk lamp")
    create.get_by_label("Price").fill("12,50")
    create.get_by_role("button", name="Create product").click()
    expect(create.locator('[data-field-message="price"]')).to_contain_text("must be a decimal amount")
    expect(create.locator('[data-field-message="sku"]')).to_have_text("must not be empty")
    expect(create.get_by_label("Price")).to_have_attribute("aria-invalid", "true")
    expect(create.get_by_role("alert")).to_contain_text("see the messages by the fields")
    expect(create.get_by_label("SKU")).to_be_focused()

    sku = f"lamp-{uuid.uuid4().hex[:8]}"
    create.get_by_label("SKU").fill(sku)
    create.get_by_label("Price").fill("12.50")
    create.get_by_label("Initial stock").fill("5")
    create.get_by_role("button", name="Create product").click()
    expect(create.get_by_role("status")).to_contain_text(f"Created product {sku}")
    expect(create.locator('[data-field-message="price"]')).to_be_empty()

    row = page.locator(f'tr[data-sku="{sku}"]')
    expect(row.get_by_test_id("stock")).to_have_text("5")
    product_id = row.get_attribute("data-product-id")
    row.get_by_label("Set stock to").fill("40")
    row.get_by_role("button", name=f"Set stock of {sku}").click()
    expect(row.get_by_test_id("stock")).to_have_text("40")
    row.get_by_label("Adjust by").fill("-5")
    row.get_by_role("button", name=f"Adjust stock of {sku}").click()
    expect(row.get_by_test_id("stock")).to_have_text("35")

    console.problems.expect_refusal(f"/v1/products/{product_id}/stock:adjust", 400)
    row.get_by_label("Adjust by").fill("-100")
    row.get_by_role("button", name=f"Adjust stock of {sku}").click()
    expect(row.get_by_role("alert")).to_contain_text("would make it negative")
    expect(row.get_by_test_id("stock")).to_have_text("35")
    status, stock = console.stack.http("GET", f"/v1/products/{product_id}/stock")
    assert status == 200 and int(stock["stock_level"]) == 35
    console.screenshot("products")
    console.problems.assert_none()


def test_bulk_upload_then_one_order_delivered_live_and_another_canceled(
    console: Console, tmp_path: Path
) -> None:
    page = console.page
    stack = console.stack
    lamp, bulb = _product(stack, "12.50", 50), _product(stack, "3.25", 50)
    run = uuid.uuid4().hex[:6]
    upload = tmp_path / "orders.csv"
    upload.write_text(
        "customer_name,product_id,quantity,request_id\n"
        f"Ada {run},{lamp['product_id']},2,ada-{run}\n"
        f"Ada {run},{bulb['product_id']},1,ada-{run}\n"
        f"Grace {run},{lamp['product_id']},1,\n"
        f"Bad {run},{lamp['product_id']},0,\n"
        f"Linus {run},{bulb['product_id']},3,\n"
    )
    console.sign_in()
    console.navigate("Bulk upload")
    console.heading("Bulk upload")
    file_format = page.get_by_role("region", name="File format")
    expect(file_format).to_contain_text("customer_name,product_id,quantity")
    page.get_by_label("Orders file (CSV or JSON)").set_input_files(upload)
    expect(page.get_by_role("status").filter(has_text="orders.csv: 4 orders")).to_be_visible()
    page.get_by_role("button", name="Create orders").click()
    expect(page.get_by_test_id("bulk-progress")).to_have_text(
        "Done: 4 of 4 orders processed, 3 created.", timeout=DELIVERY_TIMEOUT_MS
    )
    results = page.get_by_test_id("bulk-result")
    expect(results).to_have_count(4)
    expect(results.nth(2)).to_contain_text("Error:")
    expect(results.nth(2)).to_contain_text("quantity")
    expect(page.get_by_role("alert").filter(has_text="3 orders created, 1 not")).to_be_visible()
    ada, grace, linus = (results.nth(i).get_by_role("link").inner_text() for i in (0, 1, 3))
    expect(page.locator('tr[data-index="0"]')).to_contain_text("lines 2, 3")
    console.screenshot("bulk")

    # Grace's order, canceled from its page while it is still before SHIPPED.
    console.mark_document()
    results.nth(1).get_by_role("link").click()
    console.heading(f"Order {grace}")
    page.get_by_label("Reason").fill("customer called")
    page.get_by_role("button", name="Cancel order").click()
    expect(page.get_by_test_id("order-status")).to_have_text("CANCELED")
    expect(page.locator('.timeline li[data-to-status="CANCELED"]')).to_contain_text("admin:test-admin")
    assert _order(stack, grace)["status"] == "CANCELED"

    # Ada's order, watched from where it is now to DELIVERED without reloading the page.
    console.go(f"#/orders/{ada}")
    console.heading(f"Order {ada}")
    status = page.get_by_test_id("order-status")
    expect(status).to_have_text(re.compile("|".join(ACTIVE)))
    expect(page.get_by_test_id("order-total")).to_have_text("28.25")
    expect(page.get_by_role("status").filter(has_text="Live: watching")).to_be_visible()
    expect(status).to_have_text("DELIVERED", timeout=DELIVERY_TIMEOUT_MS)
    expect(page.get_by_role("status").filter(has_text="Final state: DELIVERED")).to_be_visible()
    timeline = page.locator(".timeline li")
    expect(timeline).to_have_count(5)
    expect(timeline.last).to_contain_text("service:lifecycle-worker")
    assert [timeline.nth(i).get_attribute("data-to-status") for i in range(5)] == [
        "PENDING", "PROCESSING", "PACKAGING", "SHIPPED", "DELIVERED",
    ]
    assert console.same_document()
    console.screenshot("order")

    # Too late to cancel it now: the server's reason is shown.
    console.problems.expect_refusal(f"/v1/orders/{ada}:cancel", 400)
    page.get_by_label("Reason").fill("changed my mind")
    page.get_by_role("button", name="Cancel order").click()
    expect(page.get_by_role("alert").filter(has_text="Not canceled")).to_contain_text(
        "order is DELIVERED; only PENDING, PROCESSING or PACKAGING orders can be canceled"
    )
    assert _order(stack, ada)["status"] == "DELIVERED"
    assert _order(stack, linus)["customer_name"] == f"Linus {run}"
    console.problems.assert_none()


def test_overview_counts_orders_by_status_and_follows_them_live(console: Console) -> None:
    page = console.page
    stack = console.stack
    console.sign_in()
    console.heading("Overview")
    console.mark_document()

    def summary() -> dict[str, int]:
        status, body = stack.http("GET", "/v1/orders:summarize")
        assert status == 200, body
        return {name: int(count) for name, count in body["counts"].items()}

    total = page.get_by_test_id("total-orders")
    expect(total).to_have_text(f"{sum(summary().values())} orders in all")
    # A keyboard user on a figure stays there while the figures refresh.
    delivered = page.get_by_role("link", name=re.compile("DELIVERED"))
    delivered.focus()
    lamp = _product(stack, "12.50", 5)
    status, order = stack.http("POST", "/v1/orders", {
        "customer_name": "Overview", "items": [{"product_id": lamp["product_id"], "quantity": 1}],
    })
    assert status == 200, order
    expect(total).to_have_text(f"{sum(summary().values())} orders in all")
    expect(page.get_by_role("link", name=order["order_id"])).to_be_visible()
    expect(delivered).to_be_focused()

    # Once every order is at rest, each status shows what the API counts.
    def counts_at_rest() -> dict[str, int]:
        counts = summary()
        return {} if any(counts.get(name, 0) for name in ACTIVE) else counts

    at_rest = wait_until(counts_at_rest, timeout=30, interval=0.5, what="every order to reach an end")
    for name, count in at_rest.items():
        expect(page.get_by_test_id(f"count-{name}")).to_have_text(str(count))
    assert at_rest["DELIVERED"] >= 1
    assert console.same_document()
    console.screenshot("overview")
    console.problems.assert_none()


def test_orders_list_filters_by_status_and_customer_and_pages(console: Console) -> None:
    page = console.page
    stack = console.stack
    lamp = _product(stack, "12.50", 20)
    customer = f"Pager {uuid.uuid4().hex[:6]}"
    status, results = stack.http("POST", "/v1/orders:bulkCreate", [
        {"customer_name": customer, "items": [{"product_id": lamp["product_id"], "quantity": 1}]}
        for _ in range(3)
    ])
    assert status == 200 and len(results) == 3, results
    ids = [result["order"]["order_id"] for result in results]
    status, canceled = stack.http("POST", f"/v1/orders/{ids[0]}:cancel", {"reason": "test"})
    assert status == 200 and canceled["status"] == "CANCELED", canceled

    console.sign_in()
    console.navigate("Orders")
    console.heading("Orders")
    page.get_by_label("Customer name").fill(customer)
    page.get_by_role("button", name="Apply filters").click()
    rows = page.locator("tbody tr")
    expect(page.locator("caption")).to_have_text("Page 1: 3 orders")
    assert sorted(rows.nth(i).get_attribute("data-order-id") or "" for i in range(3)) == sorted(ids)

    page.get_by_label("Status").select_option("CANCELED")
    page.get_by_role("button", name="Apply filters").click()
    expect(page.locator("caption")).to_have_text("Page 1: 1 order")
    expect(rows).to_have_count(1)
    assert rows.first.get_attribute("data-order-id") == ids[0]
    assert "status=CANCELED" in page.url

    console.open(f"#/orders?customer_name={customer.replace(' ', '+')}&page_size=2")
    expect(page.locator("caption")).to_have_text("Page 1: 2 orders")
    first_page = {rows.nth(i).get_attribute("data-order-id") for i in range(2)}
    next_page = page.get_by_role("button", name="Next page")
    next_page.click()
    expect(page.locator("caption")).to_have_text("Page 2: 1 order")
    assert rows.first.get_attribute("data-order-id") not in first_page
    expect(next_page).to_be_disabled()
    page.get_by_role("button", name="Previous page").click()
    expect(page.locator("caption")).to_have_text("Page 1: 2 orders")
    assert {rows.nth(i).get_attribute("data-order-id") for i in range(2)} == first_page
    console.screenshot("orders")

    # Real links: reached and followed by keyboard.
    link = rows.first.get_by_role("link")
    order_id = link.inner_text()
    link.focus()
    page.keyboard.press("Enter")
    console.heading(f"Order {order_id}")
    console.problems.assert_none()


# Run in the page, on the modules as the gateway serves them.
_PURE_MODULES_JS = """async ({ streamed, csv, json, badCsv }) => {
    const { JsonArraySplitter } = await import("./json_stream.js");
    const { parseOrdersFile } = await import("./bulk_file.js");
    const { lineTotal, sumDecimals } = await import("./format.js");
    const cuts = [];
    for (let i = 0; i <= streamed.length; i += 1) {
        const splitter = new JsonArraySplitter();
        const elements = [...splitter.push(streamed.slice(0, i)), ...splitter.push(streamed.slice(i))];
        cuts.push({ elements, closed: splitter.closed });
    }
    const unfinished = new JsonArraySplitter();
    unfinished.push(streamed.slice(0, -1));
    let refused = "";
    try {
        parseOrdersFile("orders.csv", badCsv);
    } catch (error) {
        refused = error.message;
    }
    return {
        cuts,
        unfinishedClosed: unfinished.closed,
        csv: parseOrdersFile("orders.csv", csv).orders,
        json: parseOrdersFile("orders.json", json).orders,
        refused,
        totals: [lineTotal("0.10", 3), sumDecimals(["0.10", "0.20"]), lineTotal("1200.99", 7),
                 sumDecimals(["1", "2.5", "0.005"]), lineTotal("abc", 1)],
    };
}"""


def test_streams_files_and_prices_are_read_exactly_in_the_browser(console: Console) -> None:
    """The console's pure modules in the page: a streamed JSON array cut at every
    possible character (inside strings with quotes, braces and escapes too), CSV uploads
    with quoting, CRLF, blank and short lines and grouped rows, and prices summed without
    floating point."""
    elements = [{"a": 'x}]\\"[{', "b": [1, {"c": None}]}, {"status": {}}, {"n": "\u00e9"}]
    streamed = " [" + " ,\n".join(json.dumps(e) for e in elements) + "]"
    csv = (
        "\ufeffcustomer_name,product_id,quantity,request_id\r\n"
        '"Lovelace, Ada",1,2,r1\r\n"Lovelace, Ada",2,1,r1\r\n'
        '"Say ""hi""",3,x,\r\nGrace,4,1,\r\n\r\nLinus,5\r\n'
    )
    console.open()
    console.heading("Sign in")
    got = console.page.evaluate(_PURE_MODULES_JS, {
        "streamed": streamed, "csv": csv,
        "json": '[{"customer_name": "A", "items": []}, 7]', "badCsv": "name,product_id\nA,1",
    })
    assert len(got["cuts"]) == len(streamed) + 1
    assert all(cut == {"elements": elements, "closed": True} for cut in got["cuts"])
    assert got["unfinishedClosed"] is False
    assert got["csv"] == [
        {"request": {"customer_name": "Lovelace, Ada", "request_id": "r1", "items": [
            {"product_id": "1", "quantity": 2}, {"product_id": "2", "quantity": 1}]},
         "source": "lines 2, 3", "problem": ""},
        {"request": {"customer_name": 'Say "hi"', "items": [{"product_id": "3", "quantity": 0}]},
         "source": "line 4", "problem": "line 4: quantity must be a whole number"},
        {"request": {"customer_name": "Grace", "items": [{"product_id": "4", "quantity": 1}]},
         "source": "line 5", "problem": ""},
        {"request": {"customer_name": "Linus", "items": [{"product_id": "5", "quantity": 0}]},
         "source": "line 7", "problem": "line 7 has 2 values for 4 columns"},
    ]
    assert got["json"][0] == {
        "request": {"customer_name": "A", "items": []}, "source": "element 1", "problem": "",
    }
    assert "must be an object" in got["json"][1]["problem"]
    assert "missing: customer_name, quantity" in got["refused"]
    assert got["totals"] == ["0.30", "0.30", "8406.93", "3.505", None]
    console.problems.assert_none()
