/* Tidings console: the one script. No inline script anywhere (the policy forbids it).

   Live regions: an element with data-refresh="<url>" and data-every="<seconds>" is
   replaced by a fresh copy of itself, fetched from that URL, every so often. The
   server stops the refreshing by sending a copy without data-refresh (a message that
   reached its final status). If the session has ended, the page is reloaded, which
   leads to the sign-in page. */
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
    fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
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

  function start() {
    var live = document.querySelectorAll("[data-refresh]");
    for (var i = 0; i < live.length; i += 1) { schedule(live[i]); }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
}());
