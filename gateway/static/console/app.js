// The console's shell: sign-in and sign-out, the navigation, and one view at a time
// rendered for the hash route (each view returns a function that stops its work).

import { Api, ApiError } from "./api.js";
import { h, replaceChildren } from "./dom.js";
import { currentRoute, matchRoute } from "./router.js";
import { describeToken, forgetToken, storeToken, storedToken } from "./session.js";
import { renderBulk } from "./bulk.js";
import { renderOrder } from "./order.js";
import { renderOrders } from "./orders.js";
import { renderOverview } from "./overview.js";
import { renderProducts } from "./products.js";

const ROUTES = [
  { pattern: /^\/?$/, nav: "/", title: "Overview", render: renderOverview },
  { pattern: /^\/orders\/?$/, nav: "/orders", title: "Orders", render: renderOrders },
  { pattern: /^\/orders\/([^/]+)$/, nav: "/orders", title: "Order", render: renderOrder },
  { pattern: /^\/products\/?$/, nav: "/products", title: "Products", render: renderProducts },
  { pattern: /^\/bulk\/?$/, nav: "/bulk", title: "Bulk upload", render: renderBulk },
];

const elements = {
  signIn: document.getElementById("sign-in"),
  signInForm: document.getElementById("sign-in-form"),
  signInMessage: document.getElementById("sign-in-message"),
  signInTitle: document.getElementById("sign-in-title"),
  nav: document.getElementById("nav"),
  identity: document.getElementById("identity"),
  identityText: document.getElementById("identity-text"),
  signOut: document.getElementById("sign-out"),
  view: document.getElementById("view"),
  main: document.getElementById("main"),
  skipLink: document.getElementById("skip-link"),
};

let api = null;
let stopView = () => {};

function showSignIn(message) {
  stopView();
  stopView = () => {};
  api = null;
  forgetToken();
  replaceChildren(elements.view);
  elements.nav.hidden = true;
  elements.identity.hidden = true;
  elements.signIn.hidden = false;
  elements.signInMessage.textContent = message || "";
  document.title = "Sign in - Fulfillment console";
  elements.signInForm.elements.token.value = "";
  elements.signInTitle.focus();
}

function signedOutByGateway(error) {
  showSignIn(`The gateway refused your token (${error.message}). Sign in again.`);
}

function showConsole(token) {
  api = new Api(token, signedOutByGateway);
  const { subject, roles } = describeToken(token);
  elements.identityText.textContent = subject
    ? `Signed in as ${subject}${roles.length ? ` (${roles.join(", ")})` : ""}`
    : "Signed in";
  elements.signIn.hidden = true;
  elements.nav.hidden = false;
  elements.identity.hidden = false;
  renderRoute();
}

function renderRoute() {
  if (!api) return;
  stopView();
  stopView = () => {};
  const { path, query } = currentRoute();
  const found = matchRoute(ROUTES, path);
  for (const link of elements.nav.querySelectorAll("a[data-nav]")) {
    if (found && link.dataset.nav === found.route.nav) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const container = h("div", { class: "view" });
  replaceChildren(elements.view, container);
  if (!found) {
    document.title = "Not found - Fulfillment console";
    replaceChildren(
      container,
      h("h1", { tabindex: "-1" }, "Not found"),
      h("p", {}, "There is no such page in the console. ", h("a", { href: "#/" }, "Go to the overview.")),
    );
  } else {
    document.title = `${found.route.title} - Fulfillment console`;
    stopView = found.route.render(container, { api, params: found.params, query }) || (() => {});
  }
  const heading = container.querySelector("h1");
  if (heading) heading.focus();
}

async function signIn(event) {
  event.preventDefault();
  const token = elements.signInForm.elements.token.value.trim();
  if (!token) {
    elements.signInMessage.textContent = "Paste a token first.";
    return;
  }
  elements.signInMessage.textContent = "";
  const probe = new Api(token, null);
  try {
    await probe.get("/v1/products", { page_size: 1 });
  } catch (error) {
    // A token the gateway accepts but whose role may not list products still signs in.
    if (!(error instanceof ApiError) || error.httpStatus !== 403) {
      elements.signInMessage.textContent = error.httpStatus === 401
        ? `The gateway refused this token: ${error.message}`
        : `Could not sign in: ${error.message}`;
      elements.signInForm.elements.token.focus();
      return;
    }
  }
  storeToken(token);
  showConsole(token);
}

elements.signInForm.addEventListener("submit", signIn);
elements.signOut.addEventListener("click", () => showSignIn("You are signed out."));
elements.skipLink.addEventListener("click", (event) => {
  event.preventDefault();
  elements.main.focus();
});
window.addEventListener("hashchange", renderRoute);

const token = storedToken();
if (token) showConsole(token);
else showSignIn("");
