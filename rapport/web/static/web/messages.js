// The template editor's live preview: each change of the form (debounced) is posted,
// with the CSRF token, to the preview endpoint, whose answer (the message rendered as
// the chosen customer, its HTML inside a sandboxed iframe) replaces the preview pane.
// Choosing MJML for an empty body starts it with a skeleton.
(function () {
  "use strict";
  var form = document.querySelector("form[data-preview-url]");
  if (!form || !window.fetch || !window.FormData) return;
  var target = document.querySelector(form.getAttribute("data-preview-target"));
  if (!target) return;
  var timer = null;
  var sent = 0;
  var shown = 0;

  function token() {
    var input = form.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function mirror() {
    // The test send previews as the customer typed in the picker.
    document.querySelectorAll("[data-mirror]").forEach(function (hidden) {
      var source = document.querySelector(hidden.getAttribute("data-mirror"));
      if (source) hidden.value = source.value;
    });
  }

  function refresh() {
    var mine = ++sent;
    target.setAttribute("aria-busy", "true");
    fetch(form.getAttribute("data-preview-url"), {
      method: "POST",
      body: new FormData(form),
      headers: { "X-CSRFToken": token() },
      credentials: "same-origin"
    })
      .then(function (response) {
        if (!response.ok) throw new Error(String(response.status));
        return response.text();
      })
      .then(function (html) {
        // An older answer arriving late never replaces a newer one.
        if (mine < shown) return;
        shown = mine;
        target.innerHTML = html;
        target.setAttribute("data-version", String(mine));
      })
      .catch(function () { /* the previous preview stays */ })
      .then(function () { if (mine === sent) target.removeAttribute("aria-busy"); });
  }

  function later() {
    mirror();
    clearTimeout(timer);
    timer = setTimeout(refresh, 400);
  }

  form.addEventListener("input", later);
  form.addEventListener("change", later);

  var format = form.querySelector("select[name=format]");
  var body = form.querySelector("textarea[name=html]");
  if (format && body) {
    format.addEventListener("change", function () {
      if (format.value === "mjml" && !body.value.trim()) {
        body.value = format.getAttribute("data-starter") || "";
      }
    });
  }
})();
