// #/ : how many orders are in each status (SummarizeOrders) and the latest orders,
// refreshed every few seconds while the tab is visible. Figures change in place, so a
// keyboard user's focus stays where it was.

import { describeError } from "./api.js";
import { alertRegion, h, replaceChildren, statusBadge } from "./dom.js";
import { count, formatTime, orderTotal } from "./format.js";
import { hrefFor, orderHref } from "./router.js";
import { STATUSES } from "./statuses.js";

const REFRESH_MS = 3000;
const LATEST = 8;

export function renderOverview(container, { api }) {
  const alert = alertRegion();
  const total = h("p", { class: "total", "data-testid": "total-orders" });
  const updated = h("p", { class: "hint", "data-testid": "updated" });
  const figures = {};
  const cards = h("ul", { class: "status-cards", "aria-label": "Orders by status" },
    STATUSES.map((status) => {
      figures[status] = h("span", { class: "card-count", "data-testid": `count-${status}` }, "-");
      return h("li", { class: `status-card card-${status.toLowerCase()}` },
        h("a", { href: hrefFor("/orders", { status }) }, figures[status], h("span", { class: "card-label" }, status)));
    }));
  const latest = h("tbody", {});
  let latestShown = "";

  replaceChildren(
    container,
    h("h1", { tabindex: "-1" }, "Overview"),
    h("p", {}, "Orders by status, refreshed every few seconds while this page is visible."),
    alert, total, cards, updated,
    h("h2", {}, "Latest orders"),
    h("table", { class: "data" },
      h("caption", { class: "visually-hidden" }, "The latest orders, newest first"),
      h("thead", {}, h("tr", {}, ["Order", "Customer", "Status", "Total", "Updated"].map((title) => h("th", { scope: "col" }, title)))),
      latest),
    h("p", {}, h("a", { href: "#/orders" }, "All orders, with filters")),
  );

  let stopped = false;
  let inFlight = null;

  async function refresh() {
    if (stopped || inFlight || document.visibilityState !== "visible") return;
    inFlight = new AbortController();
    try {
      const [summary, page] = await Promise.all([
        api.get("/v1/orders:summarize", {}, inFlight.signal),
        api.get("/v1/orders", { page_size: LATEST }, inFlight.signal),
      ]);
      if (stopped) return;
      const counts = summary.counts || {};
      for (const status of STATUSES) figures[status].textContent = String(count(counts[status]));
      const all = STATUSES.reduce((sum, status) => sum + count(counts[status]), 0);
      total.textContent = `${all} orders in all`;
      showLatest(page.orders || []);
      updated.textContent = `Updated ${formatTime(new Date().toISOString())}`;
      alert.textContent = "";
    } catch (error) {
      if (stopped || error.name === "AbortError") return;
      alert.textContent = describeError(error);
      if (error.httpStatus === 401 || error.httpStatus === 403) stop();
    } finally {
      inFlight = null;
    }
  }

  function showLatest(orders) {
    const shown = JSON.stringify(orders.map((order) => [order.order_id, order.status, order.update_time]));
    if (shown === latestShown) return;
    latestShown = shown;
    replaceChildren(latest, orders.length
      ? orders.map((order) => h("tr", {},
        h("td", {}, h("a", { href: orderHref(order.order_id), class: "mono" }, order.order_id)),
        h("td", {}, order.customer_name || ""),
        h("td", {}, statusBadge(order.status)),
        h("td", { class: "number" }, orderTotal(order) ?? ""),
        h("td", {}, formatTime(order.update_time))))
      : h("tr", {}, h("td", { colspan: "5" }, "No orders yet.")));
  }

  const timer = window.setInterval(refresh, REFRESH_MS);
  const onVisible = () => refresh();
  document.addEventListener("visibilitychange", onVisible);
  refresh();

  function stop() {
    stopped = true;
    window.clearInterval(timer);
    document.removeEventListener("visibilitychange", onVisible);
    if (inFlight) inFlight.abort();
  }
  return stop;
}
