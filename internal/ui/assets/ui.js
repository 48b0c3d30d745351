// lading web UI: the little JavaScript the pages use beyond htmx. Loaded
// from the UI's own origin (the Content-Security-Policy allows no inline
// script); the pages work without it.
(function () {
  "use strict";
  // Copy buttons: <button class="copy-btn" data-copy="TEXT">.
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
  // Forms with hx-confirm ask before a plain (non-htmx) submit too.
  document.addEventListener("submit", function (ev) {
    var f = ev.target;
    if (window.htmx || !f.hasAttribute("hx-confirm")) return;
    if (!window.confirm(f.getAttribute("hx-confirm"))) ev.preventDefault();
  }, true);
})();
