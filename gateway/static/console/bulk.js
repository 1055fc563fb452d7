// #/bulk : orders from a CSV or JSON file sent through BulkCreateOrders, the streamed
// results shown as they arrive (n of N), each with its order or its error.

import { describeError, fieldViolationsOf, isAbort } from "./api.js";
import { alertRegion, h, replaceChildren, statusBadge, statusRegion } from "./dom.js";
import { CSV_COLUMNS, parseOrdersFile } from "./bulk_file.js";
import { orderHref } from "./router.js";

const MAX_UPLOAD_BYTES = 4 * 1024 * 1024;
const CSV_EXAMPLE = [
  "customer_name,product_id,quantity,request_id",
  "Ada Lovelace,1,2,ada-1",
  "Ada Lovelace,2,1,ada-1",
  "Grace Hopper,1,1,",
].join("\n");
const JSON_EXAMPLE = '[{"customer_name": "Ada Lovelace", "request_id": "ada-1",\n  "items": [{"product_id": 1, "quantity": 2}]}]';

export function renderBulk(container, { api }) {
  const controller = new AbortController();
  const { signal } = controller;
  const fileInput = h("input", { id: "bulk-file", name: "file", type: "file", accept: ".csv,.json,text/csv,application/json", "aria-describedby": "bulk-format" });
  const alert = alertRegion();
  const preview = statusRegion();
  const send = h("button", { type: "submit", disabled: true }, "Create orders");
  const progress = h("progress", { max: "1", value: "0", "aria-labelledby": "bulk-progress-text", hidden: true });
  const progressText = h("p", { id: "bulk-progress-text", role: "status", "data-testid": "bulk-progress" });
  const outcome = alertRegion();
  const results = h("tbody", {});
  const resultsTable = h("table", { class: "data", hidden: true },
    h("caption", {}, "Results, in the order of the file"),
    h("thead", {}, h("tr", {}, ["#", "From the file", "Customer", "Request id", "Result"].map((title) => h("th", { scope: "col" }, title)))),
    results);
  const form = h("form", { class: "panel", "aria-label": "Upload orders" },
    h("div", { class: "field" }, h("label", { for: "bulk-file" }, "Orders file (CSV or JSON)"), fileInput),
    preview, send);

  replaceChildren(
    container,
    h("h1", { tabindex: "-1" }, "Bulk upload"),
    h("section", { id: "bulk-format", class: "format-help", "aria-label": "File format" },
      h("p", {}, "A CSV file has a header row naming its columns: ",
        h("code", {}, CSV_COLUMNS.join(",")), " (the first three required). ",
        "Rows with the same customer_name and a non-empty request_id become one order with several items; ",
        "any other row is an order of one item. customer_id (admins only) orders on a customer's behalf."),
      h("pre", {}, CSV_EXAMPLE),
      h("p", {}, "A JSON file holds an array of orders as POST /v1/orders takes them:"),
      h("pre", {}, JSON_EXAMPLE)),
    form, alert, progress, progressText, outcome, resultsTable,
  );

  let parsed = null;
  fileInput.addEventListener("change", async () => {
    parsed = null;
    send.disabled = true;
    alert.textContent = "";
    preview.textContent = "";
    const file = fileInput.files[0];
    if (!file) return;
    if (file.size > MAX_UPLOAD_BYTES) {
      alert.textContent = `${file.name} is larger than the gateway takes in one upload (4 MiB); split it.`;
      return;
    }
    try {
      parsed = parseOrdersFile(file.name, await file.text());
    } catch (error) {
      alert.textContent = `${file.name}: ${error.message}`;
      return;
    }
    const problems = parsed.orders.filter((order) => order.problem).length;
    preview.textContent = `${file.name}: ${parsed.orders.length} orders` +
      (problems ? `, ${problems} of them with problems in the file (they will not be sent)` : "") + ".";
    send.disabled = parsed.orders.length === problems;
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!parsed) return;
    const orders = parsed.orders;
    send.disabled = true;
    fileInput.disabled = true;
    alert.textContent = "";
    outcome.textContent = "";
    const rows = orders.map((order, index) => resultRow(index, order));
    replaceChildren(results, rows.map((row) => row.element));
    resultsTable.hidden = false;
    const sent = [];
    orders.forEach((order, index) => {
      if (order.problem) rows[index].fail(`Not sent: ${order.problem}`, {});
      else sent.push(index);
    });
    progress.hidden = false;
    progress.max = sent.length;
    progress.value = 0;
    let done = 0;
    let failed = orders.length - sent.length;
    progressText.textContent = `0 of ${sent.length} orders processed`;
    try {
      const requests = sent.map((index) => orders[index].request);
      for await (const result of api.stream("POST", "/v1/orders:bulkCreate", { body: requests, signal })) {
        const row = rows[sent[result.index || 0]];
        const status = result.status || {};
        if (status.code) {
          failed += 1;
          row.fail(status.message || `error code ${status.code}`, fieldViolationsOf(status.details));
        } else {
          row.created(result.order || {});
        }
        done += 1;
        progress.value = done;
        progressText.textContent = `${done} of ${sent.length} orders processed`;
      }
      const created = orders.length - failed;
      outcome.textContent = failed
        ? `${created} orders created, ${failed} not: see the rows marked Error.`
        : "";
      progressText.textContent = `Done: ${done} of ${sent.length} orders processed, ${created} created.`;
      parsed = null;
    } catch (error) {
      if (isAbort(error)) return;
      alert.textContent = `The upload stopped after ${done} of ${sent.length} orders: ${describeError(error)}`;
    } finally {
      fileInput.disabled = false;
      send.disabled = parsed === null;
    }
  });

  return () => controller.abort();
}

function resultRow(index, order) {
  const result = h("td", { "data-testid": "bulk-result" }, "waiting");
  const element = h("tr", { "data-index": String(index) },
    h("td", { class: "number" }, String(index + 1)),
    h("td", {}, order.source),
    h("td", {}, String(order.request.customer_name ?? "")),
    h("td", { class: "mono" }, String(order.request.request_id ?? "")),
    result);
  return {
    element,
    created(created) {
      element.classList.add("ok");
      replaceChildren(result, "Created ",
        h("a", { href: orderHref(created.order_id), class: "mono" }, created.order_id), " ",
        statusBadge(created.status));
    },
    fail(message, violations) {
      element.classList.add("failed");
      // Field violations the message does not already spell out.
      const list = Object.entries(violations).filter(([name, text]) => !message.includes(`${name}: ${text}`));
      replaceChildren(result, h("strong", {}, "Error: "), message,
        list.length ? h("ul", { class: "violations" }, list.map(([name, text]) => h("li", {}, h("code", {}, name), `: ${text}`))) : null);
    },
  };
}
