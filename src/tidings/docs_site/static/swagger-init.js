// Starts Swagger UI with the configuration the server embedded in the page as JSON.
// It is a file rather than an inline script so that /docs can send a CSP with
// `script-src 'self'`: the embedded JSON block is data, never executed.
(function () {
  "use strict";
  var node = document.getElementById("swagger-ui-config");
  var config = JSON.parse(node.textContent);
  config.dom_id = "#swagger-ui";
  config.presets = [SwaggerUIBundle.presets.apis];
  config.layout = "BaseLayout";
  window.ui = SwaggerUIBundle(config);
})();
