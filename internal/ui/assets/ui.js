// lading web UI: the page's own small script, written for lading (no
// library). Loaded from the UI's origin, as the Content-Security-Policy
// allows no inline script; every page works without it: forms submit and
// links navigate as they are.
//
// What it adds:
//   - <button class="copy-btn" data-copy="TEXT">: copies TEXT.
//   - <form data-confirm="QUESTION">: asks before submitting.
//   - <form method="get" data-target="ID" [data-push]>: a live filter. As
//     its fields change (typing settles after 250 ms) it fetches the form's
//     URL with the header X-Lading-Fragment: ID and puts the element with
//     that id from the answer in place of the page's own; data-push also
//     records the URL in the history.
//   - <div id="ID" data-load="URL">: replaced the same way once the page
//     has loaded (slow panels).
// The server answers a fragment request with the fragment alone when it
// has one by that name, else with the whole page, from which the element
// is picked. An answer without that element (an error page, the login
// form after the session ended) is opened as a page.
(function () {
  "use strict";
  var FRAGMENT = "X-Lading-Fragment";

  // Copy buttons.
  document.addEventListener("click", function (ev) {
    var b = ev.target.closest && ev.target.closest("button.copy-btn");
    if (!b) return;
    var text = b.getAttribute("data-copy") || "";
    var done = function () {
      var old = b.textContent;
      b.textContent = "Copied";
      setTimeout(function () { b.textContent = old; }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { select(b); });
    } else {
      select(b);
    }
  });
  // Without the clipboard API (plain HTTP), select the text for Ctrl+C.
  function select(b) {
    var code = b.parentNode.querySelector("code");
    if (!code) return;
    var r = document.createRange();
    r.selectNodeContents(code);
    var s = window.getSelection();
    s.removeAllRanges();
    s.addRange(r);
    b.textContent = "Press Ctrl+C";
  }

  // Confirmations, and live filters submitted with Enter or their button.
  document.addEventListener("submit", function (ev) {
    var f = ev.target;
    var question = f.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      ev.preventDefault();
      return;
    }
    if (isLive(f)) {
      ev.preventDefault();
      refresh(f, true);
    }
  });

  function isLive(f) {
    return f && f.hasAttribute && f.hasAttribute("data-target") && (f.getAttribute("method") || "get").toLowerCase() === "get";
  }

  // Live filters: typing settles, a select or box changes.
  var timers = {};
  function changed(ev) {
    var el = ev.target, f = el.form;
    if (!isLive(f)) return;
    if (ev.type === "input" && el.tagName !== "INPUT") return; // selects send "change"
    var id = f.getAttribute("data-target");
    clearTimeout(timers[id]);
    timers[id] = setTimeout(function () { refresh(f, false); }, ev.type === "input" ? 250 : 0);
  }
  document.addEventListener("input", changed);
  document.addEventListener("change", changed);

  // last is the URL each target shows, so that an unchanged form fetches
  // nothing.
  var last = {};
  function refresh(f, always) {
    var id = f.getAttribute("data-target");
    var u = new URL(f.getAttribute("action") || location.pathname, location.href);
    u.search = new URLSearchParams(new FormData(f)).toString();
    u.hash = "";
    if (!always && last[id] === u.href) return;
    last[id] = u.href;
    load(id, u.href, f.hasAttribute("data-push"));
  }

  // load fetches href as fragment id and swaps it in; a newer load of the
  // same target cancels an older one.
  var pending = {};
  function load(id, href, push) {
    if (pending[id]) pending[id].abort();
    var ctl = new AbortController();
    pending[id] = ctl;
    var el = document.getElementById(id);
    if (el) {
      el.setAttribute("aria-busy", "true");
      el.classList.add("loading");
    }
    var headers = {};
    headers[FRAGMENT] = id;
    fetch(href, { headers: headers, credentials: "same-origin", signal: ctl.signal })
      .then(function (r) {
        return r.text().then(function (text) { return { r: r, text: text }; });
      })
      .then(function (got) {
        if (pending[id] !== ctl) return;
        delete pending[id];
        var fresh = new DOMParser().parseFromString(got.text, "text/html").getElementById(id);
        if (!fresh || got.r.redirected) {
          location.assign(got.r.url);
          return;
        }
        swap(id, fresh);
        if (push) {
          history.pushState(null, "", href);
          shown = here();
        }
      })
      .catch(function (e) {
        if (e.name !== "AbortError") location.assign(href);
      });
  }

  // swap puts fresh in place of the element with its id, keeping the
  // focus (and what is being typed) in a field the element holds.
  function swap(id, fresh) {
    var old = document.getElementById(id);
    if (!old) return;
    var a = document.activeElement;
    var keep = a && a.id && old.contains(a) ? a : null;
    var node = document.importNode(fresh, true);
    old.replaceWith(node);
    if (keep) {
      var n = document.getElementById(keep.id);
      if (n && n !== keep) {
        if ("value" in n && n.type !== "checkbox" && n.type !== "radio" && n.tagName !== "SELECT") {
          n.value = keep.value;
        }
        n.focus();
        if (typeof keep.selectionStart === "number" && n.setSelectionRange) {
          try { n.setSelectionRange(keep.selectionStart, keep.selectionEnd); } catch (e) { /* not a text field */ }
        }
      }
    }
    loadAll(node);
  }

  function loadAll(root) {
    var els = root.querySelectorAll("[data-load][id]");
    if (root.matches && root.matches("[data-load][id]")) els = [root];
    for (var i = 0; i < els.length; i++) {
      load(els[i].id, els[i].getAttribute("data-load"), false);
    }
  }

  // Back and forward over pushed filter URLs: show that page. (Moves
  // between anchors of one page change no path or query, and stay.)
  function here() { return location.pathname + location.search; }
  var shown = here();
  window.addEventListener("popstate", function () {
    if (here() !== shown) location.reload();
  });

  loadAll(document);
})();
