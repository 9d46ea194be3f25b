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

  function go(link) {
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
  window.Brightback = {__ours: true, handleData: handleData, handleDataPromise: handleDataPromise};
})(window, document);
