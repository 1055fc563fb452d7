// #/orders/{order_id} : one order's items and totals, its history with who did what, the
// status kept live by the watch stream, and cancel with a reason.

import { ApiError, describeError, isAbort } from "./api.js";
import { alertRegion, h, replaceChildren, statusBadge, statusRegion, uniqueId } from "./dom.js";
import { formatTime, lineTotal, orderTotal } from "./format.js";
import { TERMINAL } from "./statuses.js";

const RECONNECT_MS = 2000;
const MAX_RECONNECTS = 5;

export function renderOrder(container, { api, params }) {
  const [orderId] = params;
  const path = `/v1/orders/${encodeURIComponent(orderId)}`;
  const alert = alertRegion();
  const live = statusRegion();
  const summary = h("dl", { class: "summary" });
  const items = h("div", {});
  const history = h("ol", { class: "timeline", "aria-label": "History, oldest first" });
  const reasonId = uniqueId("reason");
  const reason = h("input", { id: reasonId, name: "reason", maxlength: "500" });
  const cancelAlert = alertRegion();
  const cancelDone = statusRegion();
  const cancelForm = h("form", { class: "cancel-form", "aria-labelledby": `${reasonId}-title` },
    h("h2", { id: `${reasonId}-title` }, "Cancel this order"),
    h("p", { class: "hint" }, "Only PENDING, PROCESSING or PACKAGING orders can be canceled; reserved stock goes back."),
    h("div", { class: "field" }, h("label", { for: reasonId }, "Reason"), reason),
    h("button", { type: "submit", class: "danger" }, "Cancel order"),
    cancelAlert,
    cancelDone,
  );

  replaceChildren(
    container,
    h("p", { class: "breadcrumb" }, h("a", { href: "#/orders" }, "Orders"), " / ", h("span", { class: "mono" }, orderId)),
    h("h1", { tabindex: "-1" }, "Order ", h("span", { class: "mono" }, orderId)),
    alert, live, summary,
    h("h2", {}, "Items"), items,
    h("h2", {}, "History"), history,
    cancelForm,
  );

  const controller = new AbortController();
  const { signal } = controller;
  let shownStatus = "";

  function showOrder(order) {
    replaceChildren(summary,
      term("Status", h("span", { "data-testid": "order-status" }, statusBadge(order.status))),
      term("Status note", order.status_note || "-"),
      term("Customer", order.customer_name || ""),
      term("Customer id", order.customer_id || "-"),
      term("Created", formatTime(order.create_time)),
      term("Updated", formatTime(order.update_time)),
      term("Next step due", order.next_step_due_time ? formatTime(order.next_step_due_time) : "-"),
    );
    const rows = (order.items || []).map((item) => h("tr", {},
      h("td", { class: "number" }, String(item.product_id)),
      h("td", { class: "number" }, String(item.quantity)),
      h("td", { class: "number" }, item.unit_price || ""),
      h("td", { class: "number" }, lineTotal(item.unit_price, item.quantity) ?? ""),
    ));
    replaceChildren(items, h("table", { class: "data" },
      h("caption", { class: "visually-hidden" }, "Items of this order"),
      h("thead", {}, h("tr", {}, ["Product id", "Quantity", "Unit price", "Line total"].map((title) => h("th", { scope: "col" }, title)))),
      h("tbody", {}, rows),
      h("tfoot", {}, h("tr", {},
        h("th", { scope: "row", colspan: "3" }, "Total"),
        h("td", { class: "number", "data-testid": "order-total" }, orderTotal(order) ?? ""))),
    ));
  }

  async function loadHistory() {
    const reply = await api.get(`${path}/history`, {}, signal);
    replaceChildren(history, (reply.entries || []).map((entry) => h("li", { "data-to-status": entry.to_status || "" },
      h("time", { datetime: entry.time || "" }, formatTime(entry.time)),
      " ",
      entry.from_status ? [statusBadge(entry.from_status), " \u2192 "] : null,
      statusBadge(entry.to_status),
      h("span", { class: "actor" }, ` by ${entry.actor || "unknown"}`),
      entry.note ? h("p", { class: "note" }, entry.note) : null,
    )));
  }

  async function update(order) {
    showOrder(order);
    if (order.status !== shownStatus) {
      shownStatus = order.status;
      await loadHistory();
    }
  }

  // The stream ends at a terminal state; one that ends sooner (the gateway closes a
  // stream idle for minutes, a connection drops) is opened again, a few times in a row at
  // most. A refusal (ApiError: 401, 403, 404) ends the watch.
  async function watch() {
    let failures = 0;
    while (!signal.aborted && !TERMINAL.has(shownStatus)) {
      live.textContent = `Live: watching for changes (now ${shownStatus}).`;
      try {
        for await (const order of api.stream("GET", `${path}:watch`, { signal })) {
          failures = 0;
          await update(order);
          live.textContent = TERMINAL.has(order.status)
            ? `Final state: ${order.status}.`
            : `Live: watching for changes (now ${order.status}).`;
        }
      } catch (error) {
        if (isAbort(error) || error instanceof ApiError || failures >= MAX_RECONNECTS) throw error;
        failures += 1;
      }
      if (!TERMINAL.has(shownStatus)) await pause(RECONNECT_MS, signal);
    }
    if (!signal.aborted) live.textContent = `Final state: ${shownStatus}.`;
  }

  async function start() {
    try {
      await update(await api.get(path, {}, signal));
      await watch();
    } catch (error) {
      if (isAbort(error) || signal.aborted) return;
      alert.textContent = describeError(error);
      live.textContent = "Not watching for changes.";
    }
  }

  cancelForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    cancelAlert.textContent = "";
    cancelDone.textContent = "";
    const button = cancelForm.querySelector("button");
    button.disabled = true;
    try {
      const order = await api.post(`${path}:cancel`, { reason: reason.value.trim() }, signal);
      await update(order);
      cancelDone.textContent = `Canceled: the order is ${order.status}.`;
    } catch (error) {
      if (isAbort(error)) return;
      cancelAlert.textContent = `Not canceled: ${describeError(error)}`;
    } finally {
      button.disabled = false;
    }
  });

  start();
  return () => controller.abort();
}

function term(label, value) {
  return h("div", {}, h("dt", {}, label), h("dd", {}, value));
}

function pause(ms, signal) {
  return new Promise((resolve) => {
    const timer = window.setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      window.clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}
