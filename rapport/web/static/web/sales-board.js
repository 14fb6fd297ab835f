// The deals board: drag a deal to a stage. Each move is posted with the version of the
// deal the board was drawn from; a deal someone else moved meanwhile is refused (409)
// and goes back to where it was, with a notice. Without this script (or SortableJS)
// each card's own "Move" form does the same.
(function () {
  "use strict";
  var board = document.getElementById("deal-board");
  if (!board || typeof Sortable === "undefined") return;
  var notice = document.getElementById("board-notice");
  var token = board.querySelector("input[name=csrfmiddlewaretoken]").value;
  var template = board.dataset.moveTemplate;
  board.classList.add("draggable");

  function say(text) {
    notice.textContent = text;
    notice.hidden = !text;
  }

  function moved(event) {
    var card = event.item;
    var from = event.from, to = event.to;
    if (from === to) return;
    var back = function () {
      from.insertBefore(card, from.children[event.oldIndex] || null);
    };
    var body = new URLSearchParams();
    body.set("stage", to.dataset.stage);
    body.set("version", card.dataset.version);
    card.classList.add("moving");
    say("");
    fetch(template.replace("00000000-0000-0000-0000-000000000000", card.dataset.deal), {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": token, Accept: "application/json" },
      body: body,
    })
      .then(function (response) {
        return response.json().then(function (data) {
          return { ok: response.ok, status: response.status, data: data };
        });
      })
      .then(function (answer) {
        card.classList.remove("moving");
        if (!answer.ok) {
          back();
          say(answer.status === 409 ? board.dataset.stale : answer.data.error || board.dataset.failed);
          return;
        }
        card.dataset.version = answer.data.version;
        card.querySelectorAll("input[name=version]").forEach(function (input) {
          input.value = answer.data.version;
        });
        var select = card.querySelector("select[name=stage]");
        if (select) select.value = to.dataset.stage;
        var counts = [from, to].map(function (list) {
          return list.closest(".board-column").querySelector("[data-count]");
        });
        counts[0].textContent = Math.max(0, parseInt(counts[0].textContent, 10) - 1);
        counts[1].textContent = parseInt(counts[1].textContent, 10) + 1;
        board.dataset.moves = String(parseInt(board.dataset.moves || "0", 10) + 1);
      })
      .catch(function () {
        card.classList.remove("moving");
        back();
        say(board.dataset.failed);
      });
  }

  board.querySelectorAll(".board-cards").forEach(function (list) {
    Sortable.create(list, {
      group: "deals",
      animation: 120,
      // Pointer events rather than the browser's drag and drop: the same on touch screens.
      forceFallback: true,
      filter: "select, button, a",
      preventOnFilter: false,
      onEnd: moved,
    });
  });
})();
