// #/ : how many orders are in each status (SummarizeOrders), refreshed every few seconds
// while the tab is visible.

import { describeError } from "./api.js";
import { alertRegion, h, replaceChildren } from "./dom.js";
import { count, formatTime } from "./format.js";
import { hrefFor } from "./router.js";
import { STATUSES } from "./statuses.js";

const REFRESH_MS = 3000;

export function renderOverview(container, { api }) {
  const alert = alertRegion();
  const cards = h("ul", { class: "status-cards", "aria-label": "Orders by status" });
  const total = h("p", { class: "total", "data-testid": "total-orders" });
  const updated = h("p", { class: "hint", "data-testid": "updated" });
  replaceChildren(
    container,
    h("h1", { tabindex: "-1" }, "Overview"),
    h("p", {}, "Orders by status, refreshed every few seconds while this page is visible."),
    alert, total, cards, updated,
  );

  let stopped = false;
  let inFlight = null;

  async function refresh() {
    if (stopped || inFlight || document.visibilityState !== "visible") return;
    inFlight = new AbortController();
    try {
      const summary = await api.get("/v1/orders:summarize", {}, inFlight.signal);
      if (stopped) return;
      const counts = summary.counts || {};
      const all = STATUSES.reduce((sum, status) => sum + count(counts[status]), 0);
      replaceChildren(total, `${all} orders in all`);
      replaceChildren(cards, STATUSES.map((status) => h(
        "li", { class: `status-card card-${status.toLowerCase()}`, "data-status": status },
        h("a", { href: hrefFor("/orders", { status }) },
          h("span", { class: "card-count", "data-testid": `count-${status}` }, String(count(counts[status]))),
          h("span", { class: "card-label" }, status)),
      )));
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
