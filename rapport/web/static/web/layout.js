// The page frame: the side bar's menu button on a phone, the global search's keyboard
// shortcuts ("/" and Ctrl/Cmd+K focus the box, Escape closes its live results), and
// the person's menu closing when one clicks elsewhere. No inline script (CSP).
(function () {
  "use strict";

  function ready(fn) {
    if (document.readyState !== "loading") fn();
    else document.addEventListener("DOMContentLoaded", fn);
  }

  // Every table in the content scrolls inside its own box when it is wider than the
  // column (the templates need not each wrap theirs), also after an htmx swap.
  function wrapTables(root) {
    var scope = root && root.querySelectorAll ? root : document;
    var tables = Array.prototype.slice.call(scope.querySelectorAll("main table"));
    if (scope.tagName === "TABLE") tables.push(scope);
    tables.forEach(function (table) {
      var parent = table.parentElement;
      if (!parent || parent.classList.contains("table-scroll") || !table.closest("main")) return;
      var box = document.createElement("div");
      box.className = "table-scroll";
      parent.insertBefore(box, table);
      box.appendChild(table);
    });
  }

  ready(function () {
    wrapTables(document);
    document.body.addEventListener("htmx:afterSettle", function (event) {
      wrapTables(event.target);
    });
    var sidebar = document.getElementById("sidebar");
    var toggle = document.querySelector("[data-menu-toggle]");
    if (sidebar && toggle) {
      toggle.addEventListener("click", function () {
        var open = toggle.getAttribute("aria-expanded") !== "true";
        toggle.setAttribute("aria-expanded", open ? "true" : "false");
        sidebar.classList.toggle("open", open);
      });
    }

    var box = document.getElementById("global-search");
    var popover = document.getElementById("search-popover");

    function typing(target) {
      if (!target) return false;
      var tag = target.tagName;
      return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || target.isContentEditable;
    }

    function closePopover() {
      if (popover) popover.replaceChildren();
    }

    document.addEventListener("keydown", function (event) {
      if (!box) return;
      var shortcut = (event.key === "k" || event.key === "K") && (event.ctrlKey || event.metaKey);
      if (shortcut || (event.key === "/" && !typing(event.target) && !event.altKey)) {
        event.preventDefault();
        box.focus();
        box.select();
      } else if ((event.key === "ArrowDown" || event.key === "ArrowUp") && popover &&
                 (event.target === box || popover.contains(event.target))) {
        // Arrow keys walk the live results; Enter opens the one in focus.
        var hits = Array.prototype.slice.call(popover.querySelectorAll("a"));
        if (!hits.length) return;
        event.preventDefault();
        var at = hits.indexOf(document.activeElement);
        var next = event.key === "ArrowDown" ? at + 1 : at - 1;
        if (next < 0) box.focus();
        else hits[Math.min(next, hits.length - 1)].focus();
      } else if (event.key === "Escape" && (event.target === box || (popover && popover.contains(event.target)))) {
        closePopover();
        box.blur();
      }
    });

    document.addEventListener("click", function (event) {
      if (popover && box && !popover.contains(event.target) && event.target !== box) closePopover();
      document.querySelectorAll("details.me[open]").forEach(function (menu) {
        if (!menu.contains(event.target)) menu.removeAttribute("open");
      });
    });

    if (box) {
      box.addEventListener("input", function () {
        if (!box.value.trim()) closePopover();
      });
    }
  });
})();
