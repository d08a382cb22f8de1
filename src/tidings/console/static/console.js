/* Tidings console: the one script. No inline script anywhere (the policy forbids it).

   Live regions: an element with data-refresh="<url>" and data-every="<seconds>" is
   replaced by a fresh copy of itself, fetched from that URL, every so often. The
   server stops the refreshing by sending a copy without data-refresh (a message that
   reached its final status). If the session has ended, the page is reloaded, which
   leads to the sign-in page.

   Also: copy buttons (data-copy) and questions before a removal (data-confirm). */
(function () {
  "use strict";

  function schedule(element) {
    var seconds = parseFloat(element.getAttribute("data-every") || "2");
    if (!(seconds >= 0.5)) { seconds = 2; }
    window.setTimeout(function () { refresh(element); }, seconds * 1000);
  }

  function refresh(element) {
    var url = element.getAttribute("data-refresh");
    if (!url || !element.isConnected) { return; }
    fetch(url, {
      credentials: "same-origin",
      headers: { "Accept": "text/html", "X-Console-Refresh": "1" }
    })
      .then(function (response) {
        if (response.redirected || response.status === 401 || response.status === 403) {
          window.location.reload();
          return null;
        }
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.text();
      })
      .then(function (text) {
        if (text === null) { return; }
        var parsed = new DOMParser().parseFromString(text, "text/html");
        var fresh = parsed.body.firstElementChild;
        if (!fresh) { return; }
        var adopted = document.importNode(fresh, true);
        element.replaceWith(adopted);
        if (adopted.hasAttribute("data-refresh")) { schedule(adopted); }
      })
      .catch(function () {
        // A network hiccup: try again later, a little slower.
        element.setAttribute("data-every", "5");
        schedule(element);
      });
  }

  /* Copy buttons: <button type="button" data-copy="text"> says "Copied" for a moment,
     or asks to select and copy by hand where there is no clipboard (a plain-HTTP page
     other than localhost). */
  function copy(button) {
    var text = button.getAttribute("data-copy") || "";
    var label = button.textContent;
    function said(word) {
      button.textContent = word;
      window.setTimeout(function () { button.textContent = label; }, 1500);
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { said("Copied"); },
        function () { said("Copy refused"); });
    } else {
      said("Select and copy");
    }
  }

  /* One listener for the page (elements a refresh brings in work too). Buttons that
     change something hard to undo ask first: data-confirm="question". */
  function clicked(event) {
    var target = event.target;
    if (!target || !target.closest) { return; }
    var copier = target.closest("[data-copy]");
    if (copier) { copy(copier); return; }
    var asking = target.closest("[data-confirm]");
    if (asking && !window.confirm(asking.getAttribute("data-confirm"))) {
      event.preventDefault();
    }
  }

  function start() {
    var live = document.querySelectorAll("[data-refresh]");
    for (var i = 0; i < live.length; i += 1) { schedule(live[i]); }
    document.addEventListener("click", clicked);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
}());
