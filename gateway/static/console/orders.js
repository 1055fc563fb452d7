// #/orders : every order (an admin's view) or the caller's own, filtered by status,
// customer name or customer id, a page at a time.

import { describeError } from "./api.js";
import { alertRegion, h, replaceChildren, statusBadge, uniqueId } from "./dom.js";
import { formatTime, orderTotal, plural } from "./format.js";
import { PageTrail } from "./paging.js";
import { hrefFor, orderHref } from "./router.js";
import { STATUSES } from "./statuses.js";

const PAGE_SIZES = ["10", "25", "50", "100"];

export function renderOrders(container, { api, query }) {
  const filters = {
    status: query.get("status") || "",
    customer_name: query.get("customer_name") || "",
    customer_id: query.get("customer_id") || "",
    page_size: query.get("page_size") || "25",
  };
  const sizes = PAGE_SIZES.includes(filters.page_size) ? PAGE_SIZES : [filters.page_size, ...PAGE_SIZES];
  const ids = { status: uniqueId("status"), name: uniqueId("customer-name"), id: uniqueId("customer-id"), size: uniqueId("page-size") };

  const form = h("form", { class: "filters", "aria-label": "Filter orders" },
    h("div", { class: "field" },
      h("label", { for: ids.status }, "Status"),
      h("select", { id: ids.status, name: "status" },
        h("option", { value: "" }, "Any status"),
        STATUSES.map((status) => h("option", { value: status, selected: status === filters.status }, status)))),
    h("div", { class: "field" },
      h("label", { for: ids.name }, "Customer name"),
      h("input", { id: ids.name, name: "customer_name", value: filters.customer_name })),
    h("div", { class: "field" },
      h("label", { for: ids.id }, "Customer id (admins)"),
      h("input", { id: ids.id, name: "customer_id", value: filters.customer_id })),
    h("div", { class: "field" },
      h("label", { for: ids.size }, "Per page"),
      h("select", { id: ids.size, name: "page_size" },
        sizes.map((size) => h("option", { value: size, selected: size === filters.page_size }, size)))),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Apply filters")),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const target = hrefFor("/orders", Object.fromEntries(new FormData(form).entries()));
    if (window.location.hash === target) {
      trail.restart();
      load();
    } else {
      window.location.hash = target;
    }
  });

  const alert = alertRegion();
  const caption = h("caption", {});
  const body = h("tbody", {});
  const table = h("table", { class: "data" },
    caption,
    h("thead", {}, h("tr", {},
      ["Order", "Customer", "Status", "Items", "Total", "Created", "Updated"].map((title) => h("th", { scope: "col" }, title)))),
    body);
  const previous = h("button", { type: "button", disabled: true }, "Previous page");
  const next = h("button", { type: "button", disabled: true }, "Next page");
  const pageLabel = h("span", { class: "page-label", "aria-live": "polite" });

  replaceChildren(
    container,
    h("h1", { tabindex: "-1" }, "Orders"),
    form, alert, table,
    h("div", { class: "pager" }, previous, pageLabel, next),
  );

  const trail = new PageTrail();
  let nextToken = "";
  let controller = null;

  async function load() {
    if (controller) controller.abort();
    controller = new AbortController();
    previous.disabled = true;
    next.disabled = true;
    try {
      const page = await api.get("/v1/orders", { ...filters, page_token: trail.current }, controller.signal);
      const orders = page.orders || [];
      nextToken = page.next_page_token || "";
      caption.textContent = orders.length
        ? `Page ${trail.number}: ${plural(orders.length, "order")}`
        : trail.number > 1 ? `Page ${trail.number}: no more orders` : "No orders match these filters.";
      replaceChildren(body, orders.map(orderRow));
      pageLabel.textContent = `Page ${trail.number}`;
      previous.disabled = !trail.hasPrevious;
      next.disabled = !nextToken;
      alert.textContent = "";
    } catch (error) {
      if (error.name === "AbortError") return;
      alert.textContent = describeError(error);
      previous.disabled = !trail.hasPrevious;
    }
  }

  next.addEventListener("click", () => {
    if (!nextToken) return;
    trail.forward(nextToken);
    load();
  });
  previous.addEventListener("click", () => {
    trail.back();
    load();
  });
  load();
  return () => controller && controller.abort();
}

function orderRow(order) {
  const items = order.items || [];
  const quantity = items.reduce((sum, item) => sum + Number(item.quantity || 0), 0);
  return h("tr", { "data-order-id": order.order_id },
    h("td", {}, h("a", { href: orderHref(order.order_id), class: "mono" }, order.order_id)),
    h("td", {}, order.customer_name || "", order.customer_id ? h("span", { class: "hint" }, ` (${order.customer_id})`) : null),
    h("td", {}, statusBadge(order.status)),
    h("td", { class: "number" }, `${quantity} in ${plural(items.length, "line")}`),
    h("td", { class: "number" }, orderTotal(order) ?? ""),
    h("td", {}, formatTime(order.create_time)),
    h("td", {}, formatTime(order.update_time)),
  );
}
