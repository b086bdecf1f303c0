/* Observatoire — search, sortable tables, month selector. No request: the search index
   (recherche.js) and the month list (mois.js) are plain scripts loaded by each page. */
(function () {
  "use strict";
  var root = document.body.getAttribute("data-root") || "";

  // ---- the search and the filters work as one types or chooses: their forms never submit
  // (a handler here, not onsubmit="…": the pages' Content-Security-Policy runs no inline script)
  Array.prototype.forEach.call(document.querySelectorAll("form.search, form.filters"), function (f) {
    f.addEventListener("submit", function (e) { e.preventDefault(); });
  });

  function fold(s) {
    return s.normalize("NFD").replace(/[\u0300-\u036f]/g, "").toLowerCase()
      .replace(/œ/g, "oe").replace(/æ/g, "ae").replace(/[-'’\s]+/g, " ").trim();
  }

  // ---- search: a territory by name or code, accents and case ignored
  var input = document.getElementById("q");
  var list = document.getElementById("search-results");
  var entries = (window.OBS_TERRITOIRES || []).map(function (t) {
    return { name: t[0], code: t[1], page: t[2], label: t[3], key: fold(t[0]), ckey: t[1].toLowerCase() };
  });
  function search(q) {
    q = fold(q);
    list.textContent = "";
    if (!q) { return; }
    var starts = [], inside = [];
    for (var i = 0; i < entries.length; i++) {
      var e = entries[i];
      var at = e.key.indexOf(q);
      if (at === 0 || e.ckey.indexOf(q) === 0) { starts.push(e); }
      else if (at > 0) { inside.push(e); }
    }
    starts.sort(function (a, b) { return a.key.length - b.key.length || a.key.localeCompare(b.key); });
    var found = starts.concat(inside);
    if (!found.length) {
      var none = document.createElement("li");
      none.textContent = "Aucun territoire trouvé";
      list.appendChild(none);
      return;
    }
    found.slice(0, 20).forEach(function (e) {
      var li = document.createElement("li");
      var a = document.createElement("a");
      a.href = root + e.page;
      a.textContent = e.name;
      var small = document.createElement("small");
      small.textContent = " " + e.label + " · " + e.code;
      li.appendChild(a); li.appendChild(small); list.appendChild(li);
    });
  }
  if (input && list) {
    input.addEventListener("input", function () { search(input.value); });
    var m = /[#&]q=([^&]*)/.exec(location.hash);
    if (m) { input.value = decodeURIComponent(m[1]); search(input.value); }
  }

  // ---- région / département filter of the category pages: rows carry data-r / data-d
  var filters = document.querySelector("form.filters");
  if (filters) {
    var byRegion = filters.querySelector("select[data-attr=r]");
    var byDep = filters.querySelector("select[data-attr=d]");
    var shown = filters.querySelector("output");
    var rows = document.querySelectorAll("table.sortable tbody tr");
    var apply = function () {
      var r = byRegion ? byRegion.value : "", d = byDep ? byDep.value : "", n = 0;
      if (byDep) {   // only the départements of the chosen région are offered
        Array.prototype.forEach.call(byDep.options, function (o) {
          o.hidden = !!(r && o.value && o.getAttribute("data-r") !== r);
        });
        if (d && byDep.selectedOptions[0].hidden) { byDep.value = ""; d = ""; }
      }
      Array.prototype.forEach.call(rows, function (tr) {
        var ok = (!r || tr.getAttribute("data-r") === r) && (!d || tr.getAttribute("data-d") === d);
        tr.hidden = !ok;
        if (ok) { n++; }
      });
      if (shown) { shown.textContent = n + " territoire" + (n > 1 ? "s" : "") + " affiché" + (n > 1 ? "s" : ""); }
      var q = (r ? "r=" + r : "") + (d ? (r ? "&" : "") + "d=" + d : "");
      try { history.replaceState(null, "", q ? "#" + q : location.pathname + location.search); }
      catch (e) { /* some browsers refuse it on file:// pages: the filter still applies */ }
    };
    var h = /[#&]r=([^&]*)/.exec(location.hash), hd = /[#&]d=([^&]*)/.exec(location.hash);
    if (h && byRegion) { byRegion.value = decodeURIComponent(h[1]); }
    if (hd && byDep) { byDep.value = decodeURIComponent(hd[1]); }
    if (byRegion) { byRegion.addEventListener("change", apply); }
    if (byDep) { byDep.addEventListener("change", apply); }
    if (h || hd) { apply(); }
  }

  // ---- month selector of the category pages
  var select = document.querySelector("select.month-select");
  if (select && window.OBS_MOIS) {
    var current = select.getAttribute("data-month");
    select.textContent = "";
    window.OBS_MOIS.slice().reverse().forEach(function (mo) {
      var o = document.createElement("option");
      o.value = mo[0]; o.textContent = mo[1]; o.selected = mo[0] === current;
      select.appendChild(o);
    });
    select.addEventListener("change", function () {
      location.href = "../" + select.value + "/" + select.getAttribute("data-category") + ".html"
        + location.hash;   // keeps the région / département filter
    });
  }

  // ---- sortable tables: click a column header
  function value(td) {
    var v = td.hasAttribute("data-v") ? td.getAttribute("data-v") : td.textContent;
    var n = v.replace(/[\s\u202f\u00a0%]/g, "").replace("−", "-").replace(",", ".");
    if (n !== "" && !isNaN(n)) { return { num: true, v: parseFloat(n) }; }
    return { num: false, v: v.trim() };
  }
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    var heads = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(heads, function (th, col) {
      var b = document.createElement("button");
      b.type = "button"; b.textContent = th.textContent;
      th.textContent = ""; th.appendChild(b);
      b.addEventListener("click", function () {
        var asc = th.getAttribute("aria-sort") !== "ascending";
        Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows).map(function (r) {
          return { r: r, k: value(r.cells[col]) };
        });
        rows.sort(function (a, b) {
          if (a.k.v === "" || b.k.v === "") { return (a.k.v === "") - (b.k.v === ""); }
          var d = (a.k.num && b.k.num) ? a.k.v - b.k.v : String(a.k.v).localeCompare(String(b.k.v), "fr");
          return asc ? d : -d;
        });
        rows.forEach(function (x) { body.appendChild(x.r); });
      });
    });
  });
})();
