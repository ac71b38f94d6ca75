// claimkb: small enhancements only; every page works without this script.
(function () {
  "use strict";
  // In-place filtering of a claims list (the per-status, per-kind … pages work without it).
  var form = document.getElementById("filter");
  if (form) {
    var rows = Array.prototype.slice.call(document.querySelectorAll("li.claim-row"));
    var shown = document.getElementById("shown");
    var texts = rows.map(function (r) { return r.textContent.toLowerCase(); });
    form.hidden = false;
    var apply = function () {
      var want = {};
      ["status", "kind", "tags", "entities", "sources"].forEach(function (k) { want[k] = form.elements[k].value; });
      var q = form.elements.q.value.trim().toLowerCase();
      var n = 0;
      rows.forEach(function (r, i) {
        var ok = (!want.status || r.dataset.status === want.status) &&
          (!want.kind || r.dataset.kind === want.kind) &&
          ["tags", "entities", "sources"].every(function (k) {
            return !want[k] || (" " + r.dataset[k] + " ").indexOf(" " + want[k] + " ") >= 0;
          }) && (!q || texts[i].indexOf(q) >= 0);
        r.hidden = !ok;
        if (ok) { n++; }
      });
      if (shown) { shown.textContent = String(n); }
      var params = new URLSearchParams();
      Object.keys(want).forEach(function (k) { if (want[k]) { params.set(k, want[k]); } });
      if (q) { params.set("q", q); }
      var s = params.toString();
      history.replaceState(null, "", s ? "?" + s : location.pathname);
    };
    var initial = new URLSearchParams(location.search);
    initial.forEach(function (v, k) { if (form.elements[k]) { form.elements[k].value = v; } });
    form.addEventListener("input", apply);
    form.addEventListener("change", apply);
    form.addEventListener("submit", function (e) { e.preventDefault(); });
    if (location.search) { apply(); }
  }
  // Search: pagefind's UI where the build made its index, else the small JSON index.
  var box = document.getElementById("search");
  if (!box) { return; }
  if (box.dataset.engine === "pagefind" && window.PagefindUI) {
    // The index's other shards, merged into shard 0's: each bundle's path from the site's root
    // (so the site works under any base path); pagefind makes each result's URL from its
    // bundle's path, as for shard 0.
    var root = new URL(box.dataset.root || "", location.href);
    var merge = (box.dataset.bundles || "").split(" ").filter(Boolean).map(function (rel) {
      return { bundlePath: new URL(rel, root).pathname };
    });
    new window.PagefindUI({ element: "#search", showSubResults: false, showImages: false,
      mergeIndex: merge });
    return;
  }
  if (box.dataset.engine !== "json") { return; }
  var input = document.createElement("input");
  input.type = "search"; input.id = "q"; input.setAttribute("aria-label", "Search");
  var list = document.createElement("ul");
  list.setAttribute("aria-live", "polite");
  box.appendChild(input); box.appendChild(list);
  fetch(box.dataset.index).then(function (r) { return r.json(); }).then(function (items) {
    input.addEventListener("input", function () {
      var q = input.value.trim().toLowerCase();
      list.textContent = "";
      if (q.length < 2) { return; }
      items.filter(function (it) { return it.text.toLowerCase().indexOf(q) >= 0; }).slice(0, 50).forEach(function (it) {
        var li = document.createElement("li"); var a = document.createElement("a");
        a.href = box.dataset.index.replace(/search\/index\.json$/, "") + it.url;
        a.textContent = it.title; li.appendChild(a);
        var meta = document.createElement("span"); meta.className = "meta"; meta.textContent = " " + it.kind;
        li.appendChild(meta); list.appendChild(li);
      });
    });
  });
})();
