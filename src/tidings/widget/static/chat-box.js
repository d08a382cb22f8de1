/* The Tidings chat box: history, live updates (Server-Sent Events), replies and
   templates for one WhatsApp conversation.

   Safety: every piece of text from the server is inserted with textContent, never
   as HTML. The only credential is the chat-box token from this page's own URL; it is
   sent as a bearer token to /widget/api and as ?token= to the event stream (an
   EventSource cannot send headers). */
(function () {
  "use strict";

  var PAGE_SIZE = 30;
  var TICKS = {
    scheduled: { mark: "\u25F7", label: "Scheduled", cls: "" },
    queued: { mark: "\u25F7", label: "Sending", cls: "" },
    sent: { mark: "\u2713", label: "Sent", cls: "" },
    delivered: { mark: "\u2713\u2713", label: "Delivered", cls: "" },
    read: { mark: "\u2713\u2713", label: "Read", cls: "read" },
    failed: { mark: "\u26A0", label: "Failed", cls: "failed" },
    undelivered: { mark: "\u26A0", label: "Not delivered", cls: "failed" },
    canceled: { mark: "\u2298", label: "Canceled", cls: "failed" }
  };

  function meta(name) {
    var el = document.querySelector('meta[name="' + name + '"]');
    return el ? el.getAttribute("content") : "";
  }

  var api = meta("tidings-api");
  var token = new URLSearchParams(window.location.search).get("token") || "";
  var $ = function (id) { return document.getElementById(id); };
  var els = {
    windowState: $("window-state"),
    notice: $("notice"),
    scroller: $("scroller"),
    older: $("older"),
    list: $("messages"),
    announcer: $("announcer"),
    composer: $("composer"),
    reply: $("reply"),
    send: $("send"),
    templates: $("templates"),
    template: $("template"),
    preview: $("template-preview"),
    params: $("template-params"),
    sendTemplate: $("send-template"),
    readOnly: $("read-only")
  };
  var state = {
    items: new Map(),
    cursor: null,
    loadingOlder: false,
    expired: false,
    readOnly: meta("tidings-read-only") === "true",
    window: null,
    templates: null,
    source: null,
    expiryTimer: null
  };

  /* ---- the API ---- */

  function ApiProblem(status, problem) {
    this.status = status;
    this.code = (problem && problem.code) || "error";
    this.detail = (problem && problem.detail) || "Something went wrong (HTTP " + status + ").";
  }

  function randomKey() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") {
      return window.crypto.randomUUID();
    }
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) {
      return ("0" + b.toString(16)).slice(-2);
    }).join("");
  }

  function call(path, options) {
    options = options || {};
    var headers = { Authorization: "Bearer " + token, Accept: "application/json" };
    if (options.body !== undefined) {
      headers["Content-Type"] = "application/json";
      headers["Idempotency-Key"] = randomKey();
    }
    return fetch(api + path, {
      method: options.method || "GET",
      headers: headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      credentials: "omit",
      cache: "no-store"
    }).then(function (response) {
      return response.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (ignored) { data = null; }
        if (!response.ok) {
          var problem = new ApiProblem(response.status, data);
          if (problem.code === "token_expired") { showExpired(); }
          throw problem;
        }
        return data;
      });
    });
  }

  /* ---- notices ---- */

  function showNotice(text) {
    els.notice.textContent = text;
    els.notice.hidden = !text;
  }

  function announce(text) {
    var line = document.createElement("p");
    line.textContent = text;
    els.announcer.appendChild(line);
    while (els.announcer.childNodes.length > 5) {
      els.announcer.removeChild(els.announcer.firstChild);
    }
  }

  function showExpired() {
    if (state.expired) { return; }
    state.expired = true;
    if (state.source) { state.source.close(); }
    if (state.expiryTimer) { window.clearTimeout(state.expiryTimer); }
    document.documentElement.setAttribute("data-expired", "true");
    showNotice("This chat has expired. Reload the page that showed it to open it again.");
    els.windowState.textContent = "Expired";
    updateControls();
  }

  /* ---- rendering ---- */

  function formatTime(iso) {
    var when = new Date(iso);
    var now = new Date();
    var time = when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    if (when.toDateString() === now.toDateString()) { return time; }
    return when.toLocaleDateString([], { day: "numeric", month: "short" }) + " " + time;
  }

  function messageText(message) {
    if (message.body) { return message.body; }
    if (message.mediaType) { return "[" + message.mediaType + "]"; }
    if (message.template) { return "[template " + message.template + "]"; }
    return "";
  }

  function build(message) {
    var item = document.createElement("li");
    item.className = "msg " + (message.direction === "inbound" ? "in" : "out");
    item.setAttribute("data-id", message.id);
    var bubble = document.createElement("div");
    bubble.className = "bubble";
    if (message.template) {
      var name = document.createElement("p");
      name.className = "template-name";
      name.textContent = "Template: " + message.template;
      bubble.appendChild(name);
    }
    var text = document.createElement("p");
    text.className = "text";
    text.textContent = messageText(message);
    bubble.appendChild(text);
    var info = document.createElement("div");
    info.className = "meta";
    var time = document.createElement("time");
    time.setAttribute("datetime", message.createdAt);
    time.title = new Date(message.createdAt).toLocaleString();
    time.textContent = formatTime(message.createdAt);
    info.appendChild(time);
    bubble.appendChild(info);
    item.appendChild(bubble);
    update(item, message);
    return item;
  }

  function update(item, message) {
    item.setAttribute("data-status", message.status);
    var info = item.querySelector(".meta");
    var bubble = item.querySelector(".bubble");
    var ticks = item.querySelector(".ticks");
    if (message.direction !== "inbound") {
      var tick = TICKS[message.status] || TICKS.queued;
      if (!ticks) {
        ticks = document.createElement("span");
        ticks.setAttribute("role", "img");
        info.appendChild(ticks);
      }
      ticks.className = "ticks " + tick.cls;
      ticks.textContent = tick.mark;
      ticks.setAttribute("aria-label", tick.label);
      ticks.title = tick.label;
    }
    var error = item.querySelector(".error");
    if (message.error && message.error.message) {
      if (!error) {
        error = document.createElement("p");
        error.className = "error";
        bubble.appendChild(error);
      }
      error.textContent = message.error.message;
    } else if (error) {
      error.parentNode.removeChild(error);
    }
  }

  function nearBottom() {
    var s = els.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight < 80;
  }

  function scrollToBottom() {
    els.scroller.scrollTop = els.scroller.scrollHeight;
  }

  /* Insert or update one message, keeping the list in id (= time) order. */
  function upsert(message) {
    var known = state.items.get(message.id);
    if (known) {
      update(known, message);
      return false;
    }
    var item = build(message);
    state.items.set(message.id, item);
    var next = null;
    var children = els.list.children;
    for (var i = children.length - 1; i >= 0; i--) {
      if (children[i].getAttribute("data-id") > message.id) { next = children[i]; } else { break; }
    }
    els.list.insertBefore(item, next);
    return true;
  }

  /* ---- history ---- */

  function loadPage(after) {
    var query = "?limit=" + PAGE_SIZE + (after ? "&after=" + encodeURIComponent(after) : "");
    return call("/messages" + query).then(function (page) {
      page.data.forEach(upsert);
      state.cursor = page.nextCursor;
      els.older.hidden = !state.cursor;
    });
  }

  function loadOlder() {
    if (state.loadingOlder || !state.cursor) { return; }
    state.loadingOlder = true;
    var s = els.scroller;
    var before = s.scrollHeight - s.scrollTop;
    loadPage(state.cursor).then(function () {
      s.scrollTop = s.scrollHeight - before;
    }).catch(function (problem) {
      showNotice(problem.detail);
    }).then(function () {
      state.loadingOlder = false;
    });
  }

  function reloadHistory() {
    state.items.clear();
    while (els.list.firstChild) { els.list.removeChild(els.list.firstChild); }
    return loadPage(null).then(scrollToBottom);
  }

  /* ---- the window and the controls ---- */

  function setWindow(window_) {
    state.window = window_;
    if (state.expired) { return; }
    if (window_.open && window_.expiresAt) {
      els.windowState.textContent = "Replies open until " + formatTime(window_.expiresAt);
    } else {
      els.windowState.textContent = "Window closed: templates only";
    }
    updateControls();
  }

  function updateControls() {
    var live = !state.expired && !state.readOnly && state.window !== null;
    var open = live && state.window.open;
    els.composer.hidden = !open;
    els.templates.hidden = !(live && !open);
    els.readOnly.hidden = !(state.readOnly && !state.expired);
    if (live && !open && state.templates === null) { loadTemplates(); }
  }

  /* ---- replies ---- */

  function sendReply(event) {
    event.preventDefault();
    var text = els.reply.value;
    if (!text.trim() || els.send.disabled || state.expired) { return; }
    els.send.disabled = true;
    call("/messages", { method: "POST", body: { body: text } }).then(function (message) {
      els.reply.value = "";
      fitReply();
      showNotice("");
      upsert(message);
      scrollToBottom();
    }).catch(function (problem) {
      showNotice(problem.detail);
      if (problem.code === "outside_customer_service_window") { refreshChat(); }
    }).then(function () {
      els.send.disabled = false;
      els.reply.focus();
    });
  }

  function fitReply() {
    els.reply.style.height = "auto";
    els.reply.style.height = Math.min(els.reply.scrollHeight + 2, 120) + "px";
  }

  /* ---- templates ---- */

  function loadTemplates() {
    state.templates = [];
    call("/templates").then(function (page) {
      state.templates = page.data;
      while (els.template.firstChild) { els.template.removeChild(els.template.firstChild); }
      page.data.forEach(function (template, index) {
        var option = document.createElement("option");
        option.value = String(index);
        option.textContent = template.name + " (" + template.language + ")";
        els.template.appendChild(option);
      });
      els.sendTemplate.disabled = page.data.length === 0;
      if (page.data.length === 0) {
        els.preview.textContent = "No approved templates yet.";
      }
      showParams();
    }).catch(function (problem) {
      state.templates = null;
      showNotice(problem.detail);
    });
  }

  function paramInput(field, index) {
    var id = "param-" + index;
    var label = document.createElement("label");
    label.setAttribute("for", id);
    label.textContent = field.label;
    var input = document.createElement("input");
    input.id = id;
    input.type = field.key === "media" ? "url" : "text";
    input.required = true;
    input.maxLength = 1024;
    input.setAttribute("data-part", field.part);
    input.setAttribute("data-key", field.key);
    els.params.appendChild(label);
    els.params.appendChild(input);
  }

  function showParams() {
    while (els.params.firstChild) { els.params.removeChild(els.params.firstChild); }
    var template = state.templates && state.templates[Number(els.template.value)];
    if (!template) { return; }
    els.preview.textContent = template.text || "";
    template.fields.forEach(paramInput);
  }

  /* The notification's parameters: positional values as lists in order, named ones
     as objects, a media header as its URL (the shape /api/v4 accepts). */
  function collectParameters(template) {
    var named = template.parameterFormat === "NAMED";
    var parameters = {};
    els.params.querySelectorAll("input").forEach(function (input) {
      var part = input.getAttribute("data-part");
      var key = input.getAttribute("data-key");
      if (key === "media") {
        parameters.header = input.value;
      } else if (named && part !== "buttons") {
        parameters[part] = parameters[part] || {};
        parameters[part][key] = input.value;
      } else {
        parameters[part] = parameters[part] || [];
        parameters[part].push(input.value);
      }
    });
    return parameters;
  }

  function sendTemplate(event) {
    event.preventDefault();
    var template = state.templates && state.templates[Number(els.template.value)];
    if (!template || els.sendTemplate.disabled || state.expired) { return; }
    var missing = null;
    els.params.querySelectorAll("input").forEach(function (input) {
      if (!input.value.trim() && missing === null) { missing = input; }
    });
    if (missing) {
      showNotice("Fill in every parameter of the template.");
      missing.focus();
      return;
    }
    els.sendTemplate.disabled = true;
    call("/templates/send", {
      method: "POST",
      body: {
        name: template.name,
        language: template.language,
        parameters: collectParameters(template)
      }
    }).then(function (message) {
      showNotice("");
      upsert(message);
      scrollToBottom();
      els.params.querySelectorAll("input").forEach(function (input) { input.value = ""; });
    }).catch(function (problem) {
      showNotice(problem.detail);
    }).then(function () {
      els.sendTemplate.disabled = false;
    });
  }

  /* ---- live updates ---- */

  function connect() {
    if (state.expired) { return; }
    var source = new EventSource(api + "/stream?token=" + encodeURIComponent(token));
    state.source = source;
    source.addEventListener("message", function (event) {
      var message = JSON.parse(event.data);
      var follow = nearBottom();
      var added = upsert(message);
      if (added && message.direction === "inbound") {
        announce("New message: " + messageText(message));
      }
      if (added && follow) { scrollToBottom(); }
    });
    source.addEventListener("window", function (event) {
      setWindow(JSON.parse(event.data));
    });
    source.addEventListener("reset", function () {
      reloadHistory().catch(function (problem) { showNotice(problem.detail); });
    });
    source.addEventListener("expired", showExpired);
    source.addEventListener("open", function () {
      if (els.notice.getAttribute("data-kind") === "offline") {
        els.notice.removeAttribute("data-kind");
        showNotice("");
      }
    });
    source.addEventListener("error", function () {
      if (state.expired) { return; }
      if (source.readyState === EventSource.CLOSED) {
        // Refused (not a network drop): ask the API why, which notices expiry.
        refreshChat().then(function () {
          if (!state.expired) { window.setTimeout(connect, 5000); }
        });
      } else {
        els.notice.setAttribute("data-kind", "offline");
        showNotice("Connection lost; reconnecting\u2026");
      }
    });
  }

  function refreshChat() {
    return call("/chat").then(function (info) {
      setWindow(info.window);
      return info;
    }).catch(function (problem) {
      if (!state.expired) { showNotice(problem.detail); }
      return null;
    });
  }

  function scheduleExpiry(expiresAt) {
    var delay = new Date(expiresAt).getTime() - Date.now();
    // setTimeout cannot wait longer than about 24.8 days; tokens never live that long.
    state.expiryTimer = window.setTimeout(showExpired, Math.max(0, Math.min(delay, 2147483647)));
  }

  /* ---- start ---- */

  els.composer.addEventListener("submit", sendReply);
  els.reply.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      sendReply(event);
    }
  });
  els.reply.addEventListener("input", fitReply);
  els.templates.addEventListener("submit", sendTemplate);
  els.template.addEventListener("change", showParams);
  els.older.addEventListener("click", loadOlder);
  els.scroller.addEventListener("scroll", function () {
    if (els.scroller.scrollTop < 60) { loadOlder(); }
  });

  Promise.all([refreshChat(), loadPage(null)]).then(function (results) {
    var info = results[0];
    scrollToBottom();
    if (info) {
      scheduleExpiry(info.expiresAt);
      connect();
    }
    document.documentElement.setAttribute("data-ready", "true");
  }).catch(function (problem) {
    showNotice(problem.detail || String(problem));
  });
})();
