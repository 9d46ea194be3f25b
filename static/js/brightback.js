/*!
 * Cancel-flow snippet, drop-in compatible with Brightback.js.
 *
 *   <script src="https://YOUR-SERVER/js/brightback.js"></script>
 *   <script>window.Brightback.handleData({app_id: "...", email: "...", ...});</script>
 *   <a id="bb-cancel" href="/fallback-cancel">Cancel</a>
 *
 * handleData(data) posts the data to /precancel on the server this file was loaded from and stores the
 * hosted page's URL; clicks on #bb-cancel then go there (or to the link's own href when no URL came
 * back). handleDataPromise(data) resolves with the parsed answer ({valid, url, message}), a refusal
 * included ({valid: false, message}), and rejects only when the server cannot be reached. Either way
 * one console line names the problem and #bb-cancel keeps its own href.
 *
 * display: "modal" in the data opens the hosted page in an overlay on this page instead (a dialog on
 * desktops, full screen on phones; the close button and Escape close it, deciding nothing). A decision
 * made in it dispatches a cancelable "brightback:decision" event on document (detail: {event, url},
 * url being the signed return URL), then takes the whole window there unless a listener called
 * event.preventDefault().
 */
(function (window, document) {
  "use strict";
  if (window.Brightback && window.Brightback.__ours) { return; }

  var script = document.currentScript;
  var base = (function () {
    try { return new URL(script && script.src ? script.src : window.location.href).origin; }
    catch (e) { return ""; }
  })();
  var cancelUrl = false;
  var pending = null;
  var display = "redirect";
  var modal = null;

  function context() {
    var tz = "";
    try { tz = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { /* old browsers */ }
    return {
      locale: navigator.language || "",
      timezone: tz,
      user_agent: navigator.userAgent || "",
      url: window.location.href,
      referrer: document.referrer || ""
    };
  }

  function warn(message) {
    if (window.console) { window.console.warn("Brightback: " + message); }
  }

  function send(data) {
    var body = {};
    for (var key in data) { if (Object.prototype.hasOwnProperty.call(data, key)) { body[key] = data[key]; } }
    display = body.display === "modal" ? "modal" : "redirect";
    delete body.display;
    body.context = context();
    body.timestamp = new Date().toISOString();
    return new Promise(function (resolve, reject) {
      var xhr = new XMLHttpRequest();
      xhr.open("POST", base + "/precancel", true);
      xhr.withCredentials = true;
      xhr.setRequestHeader("Content-Type", "application/json");
      xhr.onload = function () {
        // Any answer, refusal or not, resolves: only an unreachable server rejects.
        var answer;
        try { answer = JSON.parse(xhr.responseText); } catch (e) { answer = null; }
        if (!answer || typeof answer !== "object") {
          answer = {valid: false, message: "unreadable answer (HTTP " + xhr.status + ")"};
        }
        cancelUrl = answer.valid ? (answer.url || answer.message) : false;
        if (!answer.valid) { warn("/precancel refused (HTTP " + xhr.status + "): " + answer.message + "; #bb-cancel keeps its own href"); }
        resolve(answer);
      };
      xhr.onerror = function () {
        var problem = "/precancel unreachable at " + base + " (network, or this origin is not allowed); #bb-cancel keeps its own href";
        cancelUrl = false;
        warn(problem);
        reject(new Error("Brightback: " + problem));
      };
      xhr.send(JSON.stringify(body));
    });
  }

  function handleDataPromise(data) {
    pending = send(data || {});
    return pending;
  }

  function handleData(data) {
    handleDataPromise(data).catch(function () { /* send() said why, once */ });
  }

  // --- display: "modal": the hosted page in an overlay on this page ----------------------------------
  var CSS = "#bb-modal{position:fixed;inset:0;z-index:2147483647;background:rgba(0,0,0,.55);display:flex;" +
    "align-items:center;justify-content:center}#bb-modal>div{position:relative;background:#fff;width:100%;" +
    "height:100%}#bb-modal iframe{border:0;width:100%;height:100%;display:block}#bb-modal button{position:" +
    "absolute;top:4px;right:4px;width:44px;height:44px;border:0;border-radius:22px;background:#fff;color:#1b1f24;" +
    "font:28px/44px sans-serif;cursor:pointer}#bb-modal button:focus-visible{outline:3px solid #1f6feb}" +
    "@media (min-width:641px){#bb-modal>div{width:min(640px,calc(100% - 32px));height:min(820px,calc(100% - 48px));" +
    "border-radius:12px;overflow:hidden;box-shadow:0 12px 48px rgba(0,0,0,.35)}}";

  function openModal(url) {
    if (modal) { return; }
    var src = new URL(url);
    src.searchParams.set("bb_display", "modal");
    src.searchParams.set("bb_origin", window.location.origin);
    if (!document.getElementById("bb-modal-css")) {
      var style = document.createElement("style");
      style.id = "bb-modal-css";
      style.textContent = CSS;
      document.head.appendChild(style);
    }
    var overlay = document.createElement("div");
    overlay.id = "bb-modal";
    overlay.innerHTML = '<div role="dialog" aria-modal="true" aria-label="Cancel subscription">' +
      '<button type="button" aria-label="Close">\u00d7</button><iframe title="Cancel subscription"></iframe></div>';
    var frame = overlay.querySelector("iframe");
    frame.src = src.href;
    var hidden = [];
    for (var i = 0; i < document.body.children.length; i++) {
      var el = document.body.children[i];
      if (!el.inert) { el.inert = true; hidden.push(el); }
    }
    modal = {overlay: overlay, frame: frame, hidden: hidden, back: document.activeElement};
    overlay.querySelector("button").addEventListener("click", closeModal);
    document.body.appendChild(overlay);
    frame.focus();
  }

  function closeModal() {
    if (!modal) { return; }
    var m = modal;
    modal = null;
    m.overlay.parentNode.removeChild(m.overlay);
    for (var i = 0; i < m.hidden.length; i++) { m.hidden[i].inert = false; }
    if (m.back && m.back.focus) { m.back.focus(); }
  }

  function onMessage(event) {
    // Only the page this modal framed, from the server this file came from.
    if (!modal || event.origin !== base || event.source !== modal.frame.contentWindow) { return; }
    var message = event.data || {};
    if (message.brightback === "close") { closeModal(); return; }
    if (message.brightback !== "decision" || !/^https?:/i.test(String(message.url))) { return; }
    var decided = new CustomEvent("brightback:decision",
      {bubbles: true, cancelable: true, detail: {event: message.event, url: message.url}});
    var proceed = document.dispatchEvent(decided);
    closeModal();
    if (proceed) { (window.top || window).location.href = message.url; }
  }

  function onKey(event) {
    if (modal && (event.key === "Escape" || event.key === "Esc")) { event.preventDefault(); closeModal(); }
  }

  function go(link) {
    if (cancelUrl && display === "modal") { openModal(cancelUrl); return; }
    if (cancelUrl) { window.location.href = cancelUrl; return; }
    if (link && link.getAttribute("href")) { window.location.href = link.href; }
  }

  function onClick(event) {
    var link = event.target && event.target.closest ? event.target.closest("#bb-cancel") : null;
    if (!link) { return; }
    event.preventDefault();
    if (cancelUrl || !pending) { go(link); return; }
    // The customer clicked before /precancel answered: wait for it, but never strand them.
    var done = false;
    var finish = function () { if (!done) { done = true; go(link); } };
    pending.then(finish, finish);
    window.setTimeout(finish, 3000);
  }

  document.addEventListener("click", onClick, true);
  document.addEventListener("keydown", onKey, true);
  window.addEventListener("message", onMessage);
  window.Brightback = {__ours: true, handleData: handleData, handleDataPromise: handleDataPromise};
})(window, document);
