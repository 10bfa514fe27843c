// doorstep dashboard: live updates over server-sent events (GET /events).
// - Overview cards ([data-live-mode="push"]) are pushed by the server as `card` events (one
//   render per changed campaign every 2 s, whatever the number of open pages) and replaced in
//   place; after a reconnect or when the page fell behind they are refetched from data-live-url.
// - Other [data-live] elements with data-live-mode="badge" only show the badge, like tables.
// - [data-live-table] sections are never re-rendered under the reader: they show
//   "N 条新同步 · 刷新" instead; the link reloads the page.
// - The status bar says whether the stream is connected and when data was last updated; the
//   browser's EventSource reconnects by itself after a drop.
(function () {
  "use strict";
  var state = document.getElementById("live-state");
  var updated = document.getElementById("updated-at");
  if (!state || !window.EventSource) { return; }

  function now() {
    return new Date().toLocaleTimeString("zh-CN", { hour12: false, timeZone: "Asia/Shanghai" });
  }
  function setState(s, text) { state.dataset.state = s; state.textContent = text; }
  function matches(el, change) {
    var kinds = (el.dataset.live || el.dataset.liveTable || "").split(/\s+/);
    if (kinds.indexOf(change.kind) < 0) { return false; }
    var campaign = el.dataset.liveCampaign;
    return !campaign || !change.campaign || campaign === change.campaign;
  }
  function bump(el) {
    var badge = el.querySelector(".badge");
    if (!badge) { return; }
    var count = badge.querySelector(".badge-count");
    var n = Number(count.textContent || "0") + 1;
    count.textContent = String(n);
    badge.hidden = false;
  }
  function refresh(el) {
    var url = el.dataset.liveUrl;
    if (!url || !window.htmx) { bump(el); return; }
    window.htmx.ajax("GET", url, { target: el, swap: "outerHTML" }).then(function () {
      updated.textContent = now();
    });
  }
  function refreshPushed() {
    document.querySelectorAll("[data-live-mode='push']").forEach(refresh);
  }
  document.addEventListener("click", function (e) {
    var link = e.target.closest && e.target.closest(".refresh-link");
    if (link) { e.preventDefault(); window.location.reload(); }
  });

  var pushed = document.querySelector("[data-live-mode='push']") !== null;
  var source = new EventSource(pushed ? "/events?cards=1" : "/events");
  var lost = false;
  source.addEventListener("open", function () {
    setState("on", "实时更新：已连接");
    // Cards pushed while the stream was down were missed: fetch them once.
    if (lost) { refreshPushed(); }
    lost = false;
  });
  source.addEventListener("error", function () {
    lost = true;
    setState("lost", "实时更新已断开，正在重新连接…");
  });
  source.addEventListener("card", function (e) {
    var tpl = document.createElement("template");
    tpl.innerHTML = e.data.trim();
    var fresh = tpl.content.firstElementChild;
    var old = fresh && fresh.id && document.getElementById(fresh.id);
    if (!old) { return; }
    old.replaceWith(fresh);
    updated.textContent = now();
  });
  source.addEventListener("change", function (e) {
    var change;
    try { change = JSON.parse(e.data); } catch (err) { return; }
    document.querySelectorAll("[data-live]").forEach(function (el) {
      if (!matches(el, change)) { return; }
      if (el.dataset.liveMode === "badge") { bump(el); }
    });
    document.querySelectorAll("[data-live-table]").forEach(function (el) {
      if (matches(el, change)) { bump(el); }
    });
    document.body.dataset.lastChange = change.kind + ":" + change.id;
  });
  source.addEventListener("reload", function () {
    document.querySelectorAll("[data-live-table], [data-live-mode='badge']").forEach(bump);
    refreshPushed();
  });
})();
