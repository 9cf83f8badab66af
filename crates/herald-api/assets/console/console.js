// Herald console: the only script the pages load (no inline scripts, no handlers in markup).
//  1. Dates: every <time datetime> shows the instant in the viewer's time zone; the UTC text
//     the server wrote moves to the title (shown on hover).
//  2. Live refresh: every 2 s the page is fetched again and each element marked `data-live`
//     is replaced by its new version (by id). The server escaped everything in it; parsed
//     with DOMParser, no script in it runs.
//  3. "Copy" buttons copy the text of the element their data-copy names.
//  4. Portal entry: the link's #key=… is read, removed from the address bar and history, and
//     exchanged for a session by a POST (the key never reaches the server in a URL).
//  5. Forms marked data-local-instant send their datetime-local field as a UTC instant
//     (`since`) and the viewer's offset (`tz_offset`), so the server reads the viewer's zone.
//  6. A region with data-poll (the "Recover" progress) is fetched every second from its URL
//     and replaced until its content carries data-done.
// The same file serves the console (/console) and the portal (/portal): <body data-base>.
(function () {
  "use strict";

  function base() {
    return document.body.dataset.base || "/console";
  }

  function localTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      if (el.dataset.local === "1") return;
      var d = new Date(el.getAttribute("datetime"));
      if (isNaN(d.getTime())) return;
      el.title = el.textContent;
      el.textContent = d.toLocaleString();
      el.dataset.local = "1";
    });
  }

  var POLL_MS = 2000;
  var busy = false;
  // The server's HTML of each live region as last fetched: a region is replaced only when
  // it changed, so an unchanged page keeps its focus, selection and open <details>.
  var seen = {};

  function refresh() {
    var live = document.querySelectorAll("[data-live][id]");
    if (live.length === 0 || busy || document.hidden) return;
    busy = true;
    fetch(window.location.href, {
      credentials: "same-origin",
      headers: { "X-Console-Poll": "1" },
      redirect: "follow",
    })
      .then(function (r) {
        return r.text().then(function (text) {
          return { ok: r.ok, text: text };
        });
      })
      .then(function (res) {
        var doc = new DOMParser().parseFromString(res.text, "text/html");
        if (doc.querySelector("form[data-sign-in]")) {
          // The session ended (signed out elsewhere, token revoked, idle): show sign-in.
          window.location.assign(base());
          return;
        }
        if (!res.ok) return;
        live.forEach(function (el) {
          var fresh = doc.getElementById(el.id);
          if (!fresh) return;
          var html = fresh.outerHTML;
          if (seen[el.id] === html) return;
          // Keyboard users keep their place: a region holding the focus waits for the next
          // poll after the focus has moved on.
          if (el.contains(document.activeElement) && document.activeElement !== document.body) {
            return;
          }
          seen[el.id] = html;
          var node = document.importNode(fresh, true);
          el.replaceWith(node);
          localTimes(node);
        });
      })
      .catch(function () {})
      .then(function () {
        busy = false;
      });
  }

  function copyButtons() {
    document.addEventListener("click", function (ev) {
      var btn = ev.target.closest("button[data-copy]");
      if (!btn) return;
      var src = document.getElementById(btn.dataset.copy);
      if (src && navigator.clipboard) {
        navigator.clipboard.writeText(src.textContent.trim());
        btn.textContent = "Copied";
      }
    });
  }

  function localInstants() {
    document.addEventListener("submit", function (ev) {
      var form = ev.target.closest("form[data-local-instant]");
      if (!form) return;
      var local = form.querySelector("input[type=datetime-local]");
      if (!local || !local.value) return;
      var d = new Date(local.value);
      if (isNaN(d.getTime())) return;
      form.elements.since.value = d.toISOString();
      form.elements.tz_offset.value = String(d.getTimezoneOffset());
    });
  }

  function pollProgress() {
    var box = document.querySelector("[data-poll]");
    if (!box || box.querySelector("[data-done]")) return;
    var timer = window.setInterval(function () {
      fetch(box.dataset.poll, { credentials: "same-origin", headers: { "X-Console-Poll": "1" } })
        .then(function (r) {
          return r.ok ? r.text() : null;
        })
        .then(function (text) {
          if (text === null) return;
          var doc = new DOMParser().parseFromString(text, "text/html");
          var fresh = doc.querySelector("[data-recover-progress]");
          if (!fresh) return;
          box.replaceChildren(document.importNode(fresh, true));
          localTimes(box);
          if (fresh.hasAttribute("data-done")) window.clearInterval(timer);
        })
        .catch(function () {});
    }, 1000);
  }

  function portalEntry() {
    var box = document.querySelector("[data-portal-entry]");
    if (!box) return;
    var status = document.getElementById("portal-status");
    var m = /(?:^#|&)key=([^&]*)/.exec(window.location.hash);
    if (window.location.hash) {
      // Off the address bar and out of the history before anything else happens.
      window.history.replaceState(null, "", window.location.pathname + window.location.search);
    }
    function say(text) {
      status.textContent = text;
      status.className = "error";
      status.setAttribute("role", "alert");
    }
    if (!m || !m[1]) {
      if (box.dataset.next) {
        window.location.replace(box.dataset.next);
      } else {
        say("Your session has ended. Open the portal again with the link you were given.");
      }
      return;
    }
    var key;
    try {
      key = decodeURIComponent(m[1]);
    } catch (e) {
      say("This portal link is damaged. Open the whole link you were given.");
      return;
    }
    fetch(base() + "/sign-in", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ key: key }).toString(),
    })
      .then(function (r) {
        return r.json().then(function (j) {
          return { ok: r.ok, body: j };
        });
      })
      .then(function (res) {
        if (res.ok && res.body.next) {
          window.location.replace(res.body.next);
        } else {
          say(res.body.message || "The portal could not sign you in.");
        }
      })
      .catch(function () {
        say("The portal could not be reached. Reload the page to try again.");
      });
  }

  document.addEventListener("DOMContentLoaded", function () {
    portalEntry();
    // The regions as the server sent them, before their dates are made local.
    document.querySelectorAll("[data-live][id]").forEach(function (el) {
      seen[el.id] = el.outerHTML;
    });
    localTimes(document);
    copyButtons();
    localInstants();
    pollProgress();
    window.setInterval(refresh, POLL_MS);
  });
})();
