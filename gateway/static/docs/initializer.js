// Swagger UI on this gateway's own OpenAPI document. Loaded by /docs/index.html after the
// vendored bundle (swagger-ui/README.md), which defines SwaggerUIBundle.
"use strict";

window.addEventListener("DOMContentLoaded", () => {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    presets: [SwaggerUIBundle.presets.apis],
    // No top bar: this page documents this gateway only, never a document named in the URL.
    layout: "BaseLayout",
    queryConfigEnabled: false,
    // The online validator badge would send the document to validator.swagger.io.
    validatorUrl: null,
    // Off: our operation ids hold "_" (InventoryService_ListProducts), which Swagger UI's
    // deep links read as an escaped space and report as an error in the console.
    deepLinking: false,
    // "Authorize" takes a token from `fulfillment token`; it lives in this page only and
    // is gone on reload, never written to localStorage.
    persistAuthorization: false,
    displayOperationId: true,
    displayRequestDuration: true,
    filter: true,
    showExtensions: false,
    tryItOutEnabled: false,
  });
});
