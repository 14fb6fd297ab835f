// The event debugger refreshes its rows every two seconds (htmx swaps them): a
// payload someone opened stays open, across refreshes and reloads of the tab. The
// open events' ids are kept in sessionStorage, one list per tab.
(function () {
  "use strict";
  var KEY = "rapport.debugger.open";

  function openIds() {
    try {
      return JSON.parse(sessionStorage.getItem(KEY) || "[]");
    } catch (e) {
      return [];
    }
  }

  function save(ids) {
    try {
      sessionStorage.setItem(KEY, JSON.stringify(ids.slice(-200)));
    } catch (e) {
      /* storage full or refused: the payload simply closes on the next refresh */
    }
  }

  function reopen(root) {
    var ids = openIds();
    root.querySelectorAll("details[data-event]").forEach(function (d) {
      if (ids.indexOf(d.dataset.event) !== -1) d.open = true;
    });
  }

  document.addEventListener(
    "toggle",
    function (e) {
      var d = e.target;
      if (!d.matches || !d.matches("details[data-event]")) return;
      var ids = openIds().filter(function (id) {
        return id !== d.dataset.event;
      });
      if (d.open) ids.push(d.dataset.event);
      save(ids);
    },
    true
  );
  document.addEventListener("htmx:afterSwap", function (e) {
    reopen(e.target);
  });
  document.addEventListener("DOMContentLoaded", function () {
    reopen(document);
  });
})();
