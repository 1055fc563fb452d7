// #/products : the catalogue a page at a time, a product created with the server's
// validation messages beside their fields, and each product's stock set or adjusted.

import { describeError } from "./api.js";
import { alertRegion, field, h, replaceChildren, setFieldMessage, statusRegion, uniqueId } from "./dom.js";
import { formatTime, plural } from "./format.js";
import { PageTrail } from "./paging.js";

const PAGE_SIZE = 20;
const CREATE_FIELDS = [
  { name: "sku", label: "SKU", attrs: { required: true, autocomplete: "off" } },
  { name: "name", label: "Name", attrs: { required: true } },
  { name: "description", label: "Description" },
  { name: "price", label: "Price", hint: "A decimal amount, e.g. 1200.99", attrs: { inputmode: "decimal" } },
  { name: "initial_stock", label: "Initial stock", type: "number", attrs: { min: "0", step: "1" } },
];

export function renderProducts(container, { api }) {
  const controller = new AbortController();
  const { signal } = controller;
  const listAlert = alertRegion();
  const body = h("tbody", {});
  const caption = h("caption", {});
  const previous = h("button", { type: "button", disabled: true }, "Previous page");
  const next = h("button", { type: "button", disabled: true }, "Next page");
  const pageLabel = h("span", { class: "page-label", "aria-live": "polite" });
  const trail = new PageTrail();
  let nextToken = "";

  const create = createForm(api, signal, () => load());

  replaceChildren(
    container,
    h("h1", { tabindex: "-1" }, "Products"),
    h("div", { class: "columns" },
      h("section", { "aria-labelledby": "products-list-title", class: "wide" },
        h("h2", { id: "products-list-title" }, "Catalogue"),
        listAlert,
        h("table", { class: "data" },
          caption,
          h("thead", {}, h("tr", {},
            ["Id", "SKU", "Name", "Price", "Stock", "Created", "Change stock"].map((title) => h("th", { scope: "col" }, title)))),
          body),
        h("div", { class: "pager" }, previous, pageLabel, next)),
      create),
  );

  async function load() {
    previous.disabled = true;
    next.disabled = true;
    try {
      const page = await api.get("/v1/products", { page_size: PAGE_SIZE, page_token: trail.current }, signal);
      const products = page.products || [];
      nextToken = page.next_page_token || "";
      caption.textContent = products.length ? `Page ${trail.number}: ${plural(products.length, "product")}` : "No products yet.";
      replaceChildren(body, products.map((product) => productRow(api, signal, product)));
      pageLabel.textContent = `Page ${trail.number}`;
      next.disabled = !nextToken;
      listAlert.textContent = "";
    } catch (error) {
      if (error.name === "AbortError") return;
      listAlert.textContent = describeError(error);
    }
    previous.disabled = !trail.hasPrevious;
  }

  next.addEventListener("click", () => {
    trail.forward(nextToken);
    load();
  });
  previous.addEventListener("click", () => {
    trail.back();
    load();
  });
  load();
  return () => controller.abort();
}

function createForm(api, signal, created) {
  const fields = Object.fromEntries(CREATE_FIELDS.map((spec) => [spec.name, field(spec)]));
  const alert = alertRegion();
  const done = statusRegion();
  const form = h("form", { novalidate: true, "aria-labelledby": "create-product-title" },
    Object.values(fields).map((entry) => entry.wrapper),
    h("button", { type: "submit" }, "Create product"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    alert.textContent = "";
    done.textContent = "";
    for (const entry of Object.values(fields)) setFieldMessage(entry, "");
    const request = {};
    for (const [name, entry] of Object.entries(fields)) {
      if (entry.input.value.trim() !== "" || name === "sku" || name === "name") request[name] = entry.input.value.trim();
    }
    try {
      const product = await api.post("/v1/products", request, signal);
      done.textContent = `Created product ${product.sku} (id ${product.product_id}).`;
      form.reset();
      created();
    } catch (error) {
      if (error.name === "AbortError") return;
      const violations = error.fieldViolations || {};
      const unplaced = [];
      for (const [name, description] of Object.entries(violations)) {
        if (fields[name]) setFieldMessage(fields[name], description);
        else unplaced.push(`${name}: ${description}`);
      }
      const first = Object.keys(violations).find((name) => fields[name]);
      alert.textContent = first
        ? `The product was not created; see the messages by the fields.${unplaced.length ? ` ${unplaced.join("; ")}` : ""}`
        : describeError(error);
      (first ? fields[first].input : form.querySelector("input")).focus();
    }
  });
  return h("section", { "aria-labelledby": "create-product-title", class: "panel" },
    h("h2", { id: "create-product-title" }, "Create a product"), alert, form, done);
}

function productRow(api, signal, product) {
  const path = `/v1/products/${encodeURIComponent(product.product_id)}`;
  const stock = h("td", { class: "number", "data-testid": "stock" }, String(product.stock_level ?? "0"));
  const alert = alertRegion("row-alert");
  const done = statusRegion("row-status");

  function stockForm(label, name, button, send) {
    const id = uniqueId(`${name}-${product.product_id}`);
    const input = h("input", { id, name, type: "number", step: "1", class: "short" });
    const form = h("form", { class: "inline-form", novalidate: true },
      h("label", { for: id }, h("span", { class: "visually-hidden" }, `${product.sku}: `), label),
      input,
      h("button", { type: "submit" }, button, h("span", { class: "visually-hidden" }, ` stock of ${product.sku}`)),
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      alert.textContent = "";
      done.textContent = "";
      input.removeAttribute("aria-invalid");
      const value = input.value.trim();
      if (!/^-?\d+$/.test(value)) {
        alert.textContent = `${label}: enter a whole number.`;
        input.setAttribute("aria-invalid", "true");
        input.focus();
        return;
      }
      try {
        const reply = await send(value);
        stock.textContent = String(reply.stock_level ?? "0");
        done.textContent = `Stock of ${product.sku} is now ${reply.stock_level ?? "0"}.`;
        input.value = "";
      } catch (error) {
        if (error.name === "AbortError") return;
        const violation = (error.fieldViolations || {})[name];
        alert.textContent = violation ? `${label}: ${violation}` : describeError(error);
        input.setAttribute("aria-invalid", "true");
        input.focus();
      }
    });
    return form;
  }

  return h("tr", { "data-product-id": product.product_id, "data-sku": product.sku },
    h("td", { class: "number" }, String(product.product_id)),
    h("td", { class: "mono" }, product.sku),
    h("td", {}, product.name, product.description ? h("span", { class: "hint block" }, product.description) : null),
    h("td", { class: "number" }, product.price),
    stock,
    h("td", {}, formatTime(product.create_time)),
    h("td", { class: "stock-actions" },
      stockForm("Set stock to", "stock_level", "Set", (value) => api.post(`${path}/stock`, { stock_level: value }, signal)),
      stockForm("Adjust by", "delta", "Adjust", (value) => api.post(`${path}/stock:adjust`, { delta: value }, signal)),
      alert, done),
  );
}
