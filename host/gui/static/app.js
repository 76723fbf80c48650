// syncplane GUI: live updates. Pages work without this script; with it,
// what the page shows is fetched again (rendered and escaped by the
// server) when the change stream says something it shows changed.
(function () {
  "use strict";
  var body = document.body;
  if (!body) { return; }

  // Link fields: a search box under the id input offers up to 20 objects
  // of the target model by name (never a list of every object); picking
  // one fills in its id. Labels are set as text, never as HTML.
  function linkPicker(input) {
    var model = input.getAttribute("data-link-model");
    var box = document.createElement("input");
    box.type = "search";
    box.id = input.id + "-search";
    box.className = "link-search";
    box.setAttribute("aria-label", "Find a " + model + " by name or id");
    box.placeholder = "find a " + model + " by name or id";
    var list = document.createElement("ul");
    list.className = "picks";
    list.id = input.id + "-picks";
    input.parentNode.insertBefore(list, input.nextSibling);
    input.parentNode.insertBefore(box, list);
    var timer = null;
    function show(items) {
      list.textContent = "";
      items.forEach(function (item) {
        var li = document.createElement("li");
        var button = document.createElement("button");
        button.type = "button";
        button.textContent = item.label + " (" + item.id + ")";
        button.addEventListener("click", function () {
          input.value = String(item.id);
          list.textContent = "";
          input.focus();
        });
        li.appendChild(button);
        list.appendChild(li);
      });
    }
    box.addEventListener("input", function () {
      if (timer) { window.clearTimeout(timer); }
      timer = window.setTimeout(function () {
        var q = box.value.trim();
        if (!q) { show([]); return; }
        fetch("/ui/m/" + encodeURIComponent(model) + "/search?q=" + encodeURIComponent(q),
              { credentials: "same-origin", headers: { "Accept": "application/json" } })
          .then(function (r) { return r.ok ? r.json() : { items: [] }; })
          .then(function (answer) { show(answer.items || []); })
          .catch(function () { show([]); });
      }, 200);
    });
  }
  var links = document.querySelectorAll("input[data-link-model]");
  for (var l = 0; l < links.length; l++) { linkPicker(links[l]); }

  if (body.getAttribute("data-live") !== "on" || !window.EventSource) {
    return;
  }
  var model = body.getAttribute("data-live-model");
  var id = body.getAttribute("data-live-id");
  var indicator = document.getElementById("live");
  var source = null;
  var lastId = null;
  var timer = null;
  var inFlight = false;
  var again = false;
  var COALESCE_MS = 250;

  function show(state, text) {
    if (!indicator) { return; }
    indicator.className = "live live-" + state;
    var dot = indicator.querySelector(".dot");
    var label = indicator.querySelector(".live-text");
    if (dot) { dot.textContent = state === "on" ? "\u25cf" : "\u25cb"; }
    if (label) { label.textContent = text; }
  }

  // Swap each live region for the one in a freshly fetched copy of the
  // page; forms being edited are never touched.
  function refresh() {
    timer = null;
    // A paused tab does not change; shown again, it refreshes once.
    if (document.hidden) { return; }
    if (inFlight) { again = true; return; }
    inFlight = true;
    fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) {
        if (response.redirected && response.url.indexOf("/ui/login") !== -1) {
          window.location.reload();
          return null;
        }
        return response.text();
      })
      .then(function (html) {
        if (html === null || html === undefined || document.hidden) { return; }
        var doc = new DOMParser().parseFromString(html, "text/html");
        var regions = document.querySelectorAll("[data-live-region]");
        for (var i = 0; i < regions.length; i++) {
          var region = regions[i];
          var fresh = region.id ? doc.getElementById(region.id) : null;
          if (fresh) { region.replaceWith(document.adoptNode(fresh)); }
        }
        body.setAttribute("data-refreshed", String(Date.now()));
      })
      .catch(function () { /* the next event tries again */ })
      .then(function () {
        inFlight = false;
        if (again) { again = false; schedule(); }
      });
  }

  function schedule() {
    if (!timer) { timer = window.setTimeout(refresh, COALESCE_MS); }
  }

  function relevant(change) {
    if (!change) { return true; }
    if (id) { return String(change.id) === id; }
    return true;
  }

  function open() {
    var url = "/ui/events";
    var params = [];
    if (model) { params.push("model=" + encodeURIComponent(model)); }
    if (id) { params.push("id=" + encodeURIComponent(id)); }
    if (lastId) { params.push("since=" + encodeURIComponent(lastId)); }
    if (params.length) { url += "?" + params.join("&"); }
    source = new EventSource(url);
    show("reconnecting", "connecting");
    source.onopen = function () { show("on", "live"); };
    source.onerror = function () {
      show("reconnecting", "reconnecting");
      // A refused stream (signed out, server restarting) is not retried by
      // the browser itself: try again a little later.
      if (source && source.readyState === EventSource.CLOSED) {
        close();
        // If the session ended, the refresh lands on the login page.
        schedule();
        window.setTimeout(function () { if (!source && !document.hidden) { open(); } }, 3000);
      }
    };
    source.onmessage = function (event) {
      if (event.lastEventId) { lastId = event.lastEventId; }
      var change = null;
      try { change = JSON.parse(event.data); } catch (e) { change = null; }
      if (relevant(change)) { schedule(); }
    };
    source.addEventListener("resync", function () { schedule(); });
  }

  function close() {
    if (source) { source.close(); source = null; }
  }

  // A form is sent once: a second click while the first is on its way
  // would save twice.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.getAttribute("data-sent") === "yes") {
      event.preventDefault();
      return;
    }
    form.setAttribute("data-sent", "yes");
  });

  // Back to a page from the history: its forms may be sent again.
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) { return; }
    var sent = document.querySelectorAll("form[data-sent]");
    for (var i = 0; i < sent.length; i++) { sent[i].removeAttribute("data-sent"); }
  });

  // A hidden tab stops listening; shown again, it resumes after the last
  // change it saw and refreshes once.
  document.addEventListener("visibilitychange", function () {
    if (document.hidden) {
      close();
      if (timer) { window.clearTimeout(timer); timer = null; }
      again = false;
      show("off", "paused");
    } else if (!source) {
      open();
      schedule();
    }
  });

  if (!document.hidden) { open(); } else { show("off", "paused"); }
})();
