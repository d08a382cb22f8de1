// Adds a "Copy" button to every code sample marked `data-copy` on the landing page.
// Served as a file so the page's CSP can stay `script-src 'self'` (no inline script);
// without JavaScript the samples are still there to select by hand.
(function () {
  "use strict";

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    // Plain http:// on a LAN address is not a secure context, so the Clipboard API is
    // missing there: fall back to selecting a hidden textarea.
    return new Promise(function (resolve, reject) {
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.className = "copy-buffer";
      document.body.appendChild(area);
      area.select();
      var ok = false;
      try {
        ok = document.execCommand("copy");
      } finally {
        document.body.removeChild(area);
      }
      if (ok) {
        resolve();
      } else {
        reject(new Error("copy refused"));
      }
    });
  }

  function addButton(block) {
    var button = document.createElement("button");
    button.type = "button";
    button.className = "copy";
    button.textContent = "Copy";
    button.addEventListener("click", function () {
      var code = block.querySelector("code") || block;
      copyText(code.textContent).then(
        function () { button.textContent = "Copied"; },
        function () { button.textContent = "Select and copy"; }
      ).then(function () {
        window.setTimeout(function () { button.textContent = "Copy"; }, 1600);
      });
    });
    block.appendChild(button);
  }

  document.querySelectorAll("[data-copy]").forEach(addButton);
})();
