// The lists' checkboxes: tick a whole page, and "select all matching" (which sends
// the filters instead of ids) clears the ticks so that one selection is sent.
(function () {
  "use strict";

  function wire(root) {
    root.querySelectorAll("[data-select-page]").forEach(function (box) {
      if (box.dataset.wired) return;
      box.dataset.wired = "1";
      box.addEventListener("change", function () {
        var form = box.closest("form");
        form.querySelectorAll('input[name="ids"]').forEach(function (row) {
          row.checked = box.checked;
        });
        var all = form.querySelector("[data-select-all-matching]");
        if (all && box.checked) all.checked = false;
      });
    });
    root.querySelectorAll("[data-select-all-matching]").forEach(function (all) {
      if (all.dataset.wired) return;
      all.dataset.wired = "1";
      all.addEventListener("change", function () {
        var form = all.closest("form");
        form.querySelectorAll('input[name="ids"], [data-select-page]').forEach(function (row) {
          row.checked = false;
          row.disabled = all.checked;
        });
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () { wire(document); });
  // The results are swapped in by htmx when a filter changes.
  document.addEventListener("htmx:afterSwap", function (event) { wire(event.target); });
})();
