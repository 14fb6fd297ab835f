// The journey editor (rapport/web/journeys.py): the journey's steps drawn as a graph with
// Drawflow (drag a step's output onto another step's input to connect them), a side
// panel with the chosen step's fields, and the trigger, goal, holdout and re-entry
// panels. Saving writes the whole journey, as docs/journeys (the graph contract) has it,
// into the form's `graph` field and posts the form; the server validates it and shows
// each error beside the step it names. Without JavaScript the `graph` JSON itself is
// the editor.
//
// The page gives everything this needs in #journey-options (json_script): the graph,
// the per-step counts, the errors, the workspace's templates and segments, and the
// words (translated) for every label.
(function () {
  "use strict";
  var optionsNode = document.getElementById("journey-options");
  var canvas = document.getElementById("journey-canvas");
  var form = document.getElementById("journey-form");
  var field = document.getElementById("journey-graph");
  if (!optionsNode || !canvas || !form || !field || typeof window.Drawflow !== "function") return;
  var O = JSON.parse(optionsNode.textContent);
  var T = O.texts;
  var W = O.words;
  var readonly = !!O.readonly;
  // A graph sent back with an error may be any JSON: what cannot be drawn is left out.
  var graph = O.graph && typeof O.graph === "object" ? O.graph : {};
  var panel = document.getElementById("step-panel");
  var triggerPanel = document.getElementById("trigger-panel");
  var goalPanel = document.getElementById("goal-panel");
  document.documentElement.classList.add("journey-editor-on");

  // --- Small DOM helpers -----------------------------------------------------------------
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else if (attrs[k] !== undefined && attrs[k] !== null && attrs[k] !== false) node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) node.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
    return node;
  }
  function esc(text) {
    return String(text === undefined || text === null ? "" : text)
      .replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;").replace(/'/g, "&#39;");
  }
  // Class names (kept out of literals that read like words).
  var HELP = ["muted", "help"].join(" ");
  // Examples in code (the same in every language).
  var RULE_EXAMPLE = JSON.stringify({ all: [{ trait: "plan", op: "eq", value: "pro" }] });
  var VALUE_EXAMPLE = ["true", "42", JSON.stringify("gold")].join(", ");
  var uid = 0;
  function fieldId() { uid += 1; return "jf-" + uid; }

  // --- What each step type has ----------------------------------------------------------
  // outputs: the names of the step's exits, in the order of Drawflow's output_1, output_2…
  var TYPES = {
    send: { outputs: ["next"] },
    wait: { outputs: ["next"] },
    wait_until: { outputs: ["next"] },
    wait_event: { outputs: ["next", "timeout_next"] },
    branch: { outputs: ["yes", "no"] },
    split: { outputs: null },
    update_trait: { outputs: ["next"] },
    segment_add: { outputs: ["next"] },
    segment_remove: { outputs: ["next"] },
    create_task: { outputs: ["next"] },
    webhook: { outputs: ["next"] },
    exit: { outputs: [] }
  };
  var DEFAULTS = {
    send: function () { return { type: "send", channel: "email", purpose: "marketing", template_id: null }; },
    wait: function () { return { type: "wait", seconds: 86400 }; },
    wait_until: function () { return { type: "wait_until", time: "09:00" }; },
    wait_event: function () { return { type: "wait_event", event: "", where: [], timeout_seconds: 259200 }; },
    branch: function () { return { type: "branch", rule: { all: [] } }; },
    split: function () { return { type: "split", paths: [{ share: 50, label: "A" }, { share: 50, label: "B" }] }; },
    update_trait: function () { return { type: "update_trait", trait: "", value: "" }; },
    segment_add: function () { return { type: "segment_add", segment_id: "" }; },
    segment_remove: function () { return { type: "segment_remove", segment_id: "" }; },
    create_task: function () { return { type: "create_task", title: "", due_in_days: 2 }; },
    webhook: function () { return { type: "webhook", url: "" }; },
    exit: function () { return { type: "exit" }; }
  };
  var LINKS = ["next", "timeout_next", "yes", "no"];
  function outputsOf(step) {
    if (step.type === "split") return (step.paths || []).map(function (_, i) { return "paths." + i; });
    return (TYPES[step.type] || { outputs: ["next"] }).outputs || [];
  }
  function typeLabel(type) { return (W.types && W.types[type]) || type; }
  function templateName(id) {
    for (var i = 0; i < O.templates.length; i++) if (O.templates[i].id === id) return O.templates[i].name;
    return "";
  }
  function segmentName(id) {
    for (var i = 0; i < O.segments.length; i++) if (O.segments[i].id === id) return O.segments[i].name;
    return "";
  }
  function duration(seconds) {
    seconds = Number(seconds) || 0;
    var d = Math.floor(seconds / 86400), h = Math.floor((seconds % 86400) / 3600), m = Math.floor((seconds % 3600) / 60);
    var parts = [];
    if (d) parts.push(d + " " + T.days_short);
    if (h) parts.push(h + " " + T.hours_short);
    if (m || !parts.length) parts.push(m + " " + T.minutes_short);
    return parts.join(" ");
  }
  function summary(step) {
    switch (step.type) {
      case "send":
        var what = step.decide ? T.decided : step.content ? T.written : (templateName(step.template_id) || T.template + " ?");
        return (step.channel || "") + " · " + what;
      case "wait": return duration(step.seconds);
      case "wait_until": return T.until + " " + (step.time || "");
      case "wait_event": return (step.event || "?") + " · " + T.timeout + " " + duration(step.timeout_seconds);
      case "branch": return T.yes + " / " + T.no;
      case "split": return (step.paths || []).map(function (p) { return (p.label || "?") + " " + p.share + "%"; }).join(" · ");
      case "update_trait": return (step.trait || "?") + " = " + JSON.stringify(step.value);
      case "segment_add": case "segment_remove": return segmentName(step.segment_id) || "?";
      case "create_task": return step.title || "";
      case "webhook": return step.url || "";
      default: return "";
    }
  }
  function outputWords(step) {
    if (step.type === "split") return (step.paths || []).map(function (p) { return p.label || "?"; });
    return outputsOf(step).map(function (name) { return W.links[name] || name; });
  }

  function isObject(v) { return !!v && typeof v === "object" && !Array.isArray(v); }
  if (!isObject(graph.steps)) graph.steps = {};
  Object.keys(graph.steps).forEach(function (k) {
    if (!isObject(graph.steps[k]) || !TYPES[graph.steps[k].type]) delete graph.steps[k];
    else if (graph.steps[k].type === "split" && !Array.isArray(graph.steps[k].paths)) graph.steps[k].paths = [];
  });
  if (!isObject(graph.layout)) graph.layout = {};
  if (!isObject(graph.goal)) graph.goal = null;

  // --- The canvas ---------------------------------------------------------------------
  var editor = new window.Drawflow(canvas);
  editor.reroute = false;
  editor.editor_mode = readonly ? "view" : "edit";
  editor.start();
  var TRIGGER = "__trigger__";
  var nodes = {};   // Drawflow id -> {key, step}
  var triggerId = null;
  var selected = null;
  var errorsByStep = {};
  (O.errors || []).forEach(function (e) {
    if (e.step) (errorsByStep[e.step] = errorsByStep[e.step] || []).push(e.message);
  });

  function nodeHtml(entry) {
    var step = entry.step;
    var counts = O.counts && O.counts[entry.key];
    var html = '<div class="jn-head"><span class="jn-type">' + esc(typeLabel(step.type)) + '</span> ' +
      '<span class="jn-key" translate="no">' + esc(entry.key) + "</span></div>" +
      '<div class="jn-summary" translate="no">' + esc(summary(step)) + "</div>";
    var words = outputWords(step);
    if (words.length > 1) html += '<div class="jn-outs">' + esc(T.exits) + ": " + esc(words.join(" · ")) + "</div>";
    if (counts) {
      html += '<dl class="jn-counts">' + ["entered", "waiting", "passed", "exited"].map(function (k) {
        return '<div data-count="' + k + '"><dt>' + esc(W.counts[k]) + "</dt><dd>" + esc(counts[k] || 0) + "</dd></div>";
      }).join("") + "</dl>";
    }
    (errorsByStep[entry.key] || []).forEach(function (message) {
      html += '<p class="jn-error" role="alert">' + esc(message) + "</p>";
    });
    return html;
  }
  function redraw(id) {
    var entry = nodes[id];
    var content = canvas.querySelector("#node-" + id + " .drawflow_content_node");
    if (!entry || !content) return;
    content.innerHTML = nodeHtml(entry);
    var box = canvas.querySelector("#node-" + id);
    box.classList.toggle("jn-has-error", !!errorsByStep[entry.key]);
    box.setAttribute("data-step", entry.key);
    editor.updateConnectionNodes("node-" + id);
  }
  function addStepNode(key, step, x, y) {
    var outs = outputsOf(step).length;
    var inputs = 1;
    var id = editor.addNode(step.type, inputs, outs, x, y, ["jn", "jn-" + step.type].join(" "), { key: key }, "");
    nodes[id] = { key: key, step: step };
    redraw(id);
    return id;
  }
  function addTriggerNode(x, y) {
    var id = editor.addNode("trigger", 0, 1, x, y, ["jn", "jn-trigger"].join(" "), { key: TRIGGER }, "");
    triggerId = id;
    var content = canvas.querySelector("#node-" + id + " .drawflow_content_node");
    content.innerHTML = '<div class="jn-head"><span class="jn-type">' + esc(T.trigger) + '</span></div>' +
      '<div class="jn-summary">' + esc(triggerSummary()) + "</div>";
    canvas.querySelector("#node-" + id).setAttribute("data-step", TRIGGER);
    return id;
  }
  function triggerSummary() {
    var t = graph.trigger || {};
    var words = (W.triggers && W.triggers[t.type]) || t.type || "?";
    if (t.type === "event" && t.event) words += ": " + t.event;
    if ((t.type === "segment_entered" || t.type === "segment_left") && t.segment_id) words += ": " + (segmentName(t.segment_id) || t.segment_id);
    return words;
  }
  function idOfKey(key) {
    for (var id in nodes) if (nodes[id].key === key) return id;
    return null;
  }

  // Place the steps: their saved positions, else by depth from the start.
  function autoLayout(steps, start) {
    var place = {}, depth = {}, queue = [];
    if (start && steps[start]) { depth[start] = 0; queue.push(start); }
    while (queue.length) {
      var key = queue.shift(), step = steps[key];
      var targets = LINKS.map(function (l) { return step[l]; });
      (step.paths || []).forEach(function (p) { targets.push(p.next); });
      targets.forEach(function (t) {
        if (t && steps[t] && depth[t] === undefined) { depth[t] = depth[key] + 1; queue.push(t); }
      });
    }
    var rows = {};
    Object.keys(steps).forEach(function (key) {
      var d = depth[key] === undefined ? 0 : depth[key];
      if (depth[key] === undefined) d = Object.keys(depth).length ? Math.max.apply(null, Object.keys(depth).map(function (k) { return depth[k]; })) + 1 : 0;
      rows[d] = (rows[d] || 0) + 1;
      place[key] = { x: 300 + d * 260, y: 40 + (rows[d] - 1) * 170 };
    });
    return place;
  }

  // Steps drawn taller than the room their saved places leave are moved down (the
  // counts and the errors make a step taller than a layout made elsewhere expects).
  function spread() {
    var data = editor.drawflow.drawflow[editor.module].data;
    var ids = Object.keys(nodes).sort(function (a, b) { return data[a].pos_y - data[b].pos_y; });
    ids.forEach(function (id, i) {
      var me = data[id];
      for (var j = 0; j < i; j++) {
        var above = data[ids[j]];
        var box = canvas.querySelector("#node-" + ids[j]);
        var bottom = above.pos_y + (box ? box.offsetHeight : 80) + 24;
        if (Math.abs(above.pos_x - me.pos_x) < 230 && me.pos_y < bottom && me.pos_y >= above.pos_y) {
          me.pos_y = bottom;
        }
      }
      var el = canvas.querySelector("#node-" + id);
      if (el) el.style.top = me.pos_y + "px";
    });
  }

  function load() {
    var steps = graph.steps || {};
    var layout = graph.layout || {};
    var auto = autoLayout(steps, graph.start);
    var places = {};
    Object.keys(steps).forEach(function (key) {
      places[key] = layout[key] && typeof layout[key].x === "number" ? layout[key] : auto[key];
    });
    // Room on the left for the trigger.
    var left = Math.min.apply(null, Object.keys(places).map(function (k) { return places[k].x; }).concat([260]));
    Object.keys(steps).forEach(function (key) {
      var step = JSON.parse(JSON.stringify(steps[key]));
      addStepNode(key, step, places[key].x + (260 - left), places[key].y);
    });
    spread();
    var startAt = graph.start && idOfKey(graph.start) ? editor.getNodeFromId(idOfKey(graph.start)) : null;
    addTriggerNode(startAt ? Math.max(10, startAt.pos_x - 250) : 20, startAt ? startAt.pos_y : 40);
    if (graph.start && idOfKey(graph.start)) editor.addConnection(triggerId, idOfKey(graph.start), "output_1", "input_1");
    Object.keys(nodes).forEach(function (id) {
      var step = nodes[id].step;
      outputsOf(step).forEach(function (name, i) {
        var target = name.indexOf("paths.") === 0 ? (step.paths[i] || {}).next : step[name];
        var to = target ? idOfKey(target) : null;
        if (to) editor.addConnection(id, to, "output_" + (i + 1), "input_1");
      });
      // Where the steps go is read from the connections from now on.
      LINKS.forEach(function (l) { delete step[l]; });
      (step.paths || []).forEach(function (p) { delete p.next; });
    });
  }

  // One connection per exit: a new one replaces the old.
  editor.on("connectionCreated", function (c) {
    var node = editor.getNodeFromId(c.output_id);
    var conns = node.outputs[c.output_class].connections.slice();
    conns.forEach(function (other) {
      if (String(other.node) !== String(c.input_id)) {
        editor.removeSingleConnection(c.output_id, other.node, c.output_class, other.output);
      }
    });
    markDirty();
  });
  editor.on("connectionRemoved", markDirty);
  editor.on("nodeMoved", markDirty);
  editor.on("nodeRemoved", function (id) {
    if (String(id) === String(triggerId)) { triggerId = null; addTriggerNode(20, 40); return; }
    delete nodes[id];
    if (selected === String(id)) showPanel(null);
    markDirty();
  });
  editor.on("nodeSelected", function (id) { showPanel(String(id)); });

  var dirty = false;
  var loaded = false;
  function markDirty() {
    if (!loaded) return;
    dirty = true;
    var flag = document.getElementById("journey-dirty");
    if (flag) flag.hidden = false;
    // The JSON below the editor follows it (what Save sends).
    field.value = JSON.stringify(toGraph(), null, 2);
  }
  window.addEventListener("beforeunload", function (event) {
    if (dirty && !form.dataset.submitting) { event.preventDefault(); event.returnValue = ""; }
  });

  // --- Fields, for the step panel, the trigger and the goal ------------------------------
  // Each field: {name, kind, label, ...}; get(obj) and set(obj, value) read and write it.
  function jsonText(value) { return JSON.stringify(value === undefined ? null : value, null, 2); }
  function fieldRow(label, control, help, errorText) {
    var id = control.id || fieldId();
    control.id = id;
    var parts = [el("label", { "for": id, text: label }), control];
    // A help: its words, or [words, an example in code].
    if (help && Array.isArray(help)) parts.push(el("p", { "class": HELP }, [help[0] + " ", el("code", { translate: "no", text: help[1] })]));
    else if (help) parts.push(el("p", { "class": HELP, text: help }));
    var error = el("p", { "class": "field-error error", id: id + "-error", role: "alert", text: errorText || "" });
    if (!errorText) error.hidden = true;
    else control.setAttribute("aria-invalid", "true");
    parts.push(error);
    return el("div", { "class": "field" }, parts);
  }
  function input(type, value, attrs) {
    var i = el("input", Object.assign({ type: type }, attrs || {}));
    i.value = value === undefined || value === null ? "" : value;
    if (readonly) i.disabled = true;
    return i;
  }
  function select(choices, value, attrs) {
    var s = el("select", attrs || {});
    choices.forEach(function (c) {
      var o = el("option", { value: c[0], text: c[1] });
      if (String(c[0]) === String(value === undefined || value === null ? "" : value)) o.selected = true;
      s.appendChild(o);
    });
    if (readonly) s.disabled = true;
    return s;
  }
  function textarea(value, attrs) {
    var t = el("textarea", Object.assign({ rows: 4 }, attrs || {}));
    t.value = value || "";
    if (readonly) t.disabled = true;
    return t;
  }
  function setError(control, message) {
    var error = document.getElementById(control.id + "-error");
    if (message) control.setAttribute("aria-invalid", "true"); else control.removeAttribute("aria-invalid");
    if (error) { error.textContent = message || ""; error.hidden = !message; }
  }
  // A JSON field: parsed on each change; a mistake shown beside it (and blocks saving).
  function jsonField(label, value, onValue, help) {
    var t = textarea(jsonText(value), { "class": "code", spellcheck: "false", "data-json": "1", rows: 5 });
    var row = fieldRow(label, t, help);
    t.addEventListener("input", function () {
      try { onValue(JSON.parse(t.value || "null")); setError(t, ""); t.removeAttribute("data-bad"); }
      catch (e) { setError(t, T.bad_json); t.setAttribute("data-bad", "1"); }
    });
    return row;
  }
  function textField(label, obj, name, attrs, after) {
    var i = input((attrs && attrs.type) || "text", obj[name], attrs);
    i.addEventListener("input", function () {
      var v = i.value;
      if (i.type === "number") v = i.value === "" ? null : Number(i.value);
      obj[name] = v;
      if (after) after();
    });
    return fieldRow(label, i);
  }
  function selectField(label, obj, name, choices, after) {
    var s = select(choices, obj[name]);
    s.addEventListener("change", function () { obj[name] = s.value; if (after) after(); });
    return fieldRow(label, s);
  }
  // Seconds as days, hours and minutes.
  function durationField(label, obj, name, after) {
    var secs = Number(obj[name]) || 0;
    var d = input("number", Math.floor(secs / 86400), { min: 0, step: 1, "aria-label": T.days });
    var h = input("number", Math.floor((secs % 86400) / 3600), { min: 0, max: 23, step: 1, "aria-label": T.hours });
    var m = input("number", Math.floor((secs % 3600) / 60), { min: 0, max: 59, step: 1, "aria-label": T.minutes });
    function update() {
      obj[name] = (Number(d.value) || 0) * 86400 + (Number(h.value) || 0) * 3600 + (Number(m.value) || 0) * 60;
      if (after) after();
    }
    [d, h, m].forEach(function (i) { i.addEventListener("input", update); });
    var id = fieldId();
    d.id = id;
    return el("div", { "class": ["field", "duration"].join(" ") }, [
      el("label", { "for": id, text: label }),
      el("div", { "class": "duration-parts" }, [
        el("span", {}, [d, " " + T.days]), el("span", {}, [h, " " + T.hours]), el("span", {}, [m, " " + T.minutes])
      ])
    ]);
  }
  function segmentChoices(staticOnly) {
    var list = [["", "—"]];
    O.segments.forEach(function (s) { if (!staticOnly || s.kind === "static") list.push([s.id, s.name]); });
    return list;
  }

  // --- The step panel -----------------------------------------------------------------------
  function showPanel(id) {
    selected = id;
    if (!panel) return;
    panel.innerHTML = "";
    var entry = id && nodes[id];
    if (!entry) {
      panel.appendChild(el("p", { "class": "muted", text: id === String(triggerId) ? T.trigger_help : T.pick_step }));
      return;
    }
    var step = entry.step;
    var after = function () { redraw(id); markDirty(); };
    panel.appendChild(el("h3", { text: typeLabel(step.type) }));
    (errorsByStep[entry.key] || []).forEach(function (m) { panel.appendChild(el("p", { "class": "error", role: "alert", text: m })); });
    var key = input("text", entry.key, { maxlength: 60, pattern: "[A-Za-z0-9_\\-]+", spellcheck: "false", name: "step-key" });
    var keyRow = fieldRow(T.key, key, T.key_help);
    key.addEventListener("change", function () {
      var v = key.value.trim();
      if (!/^[A-Za-z0-9_-]{1,60}$/.test(v)) { setError(key, T.bad_key); return; }
      if (v !== entry.key && idOfKey(v)) { setError(key, T.key_taken); return; }
      setError(key, "");
      if (errorsByStep[entry.key]) { errorsByStep[v] = errorsByStep[entry.key]; delete errorsByStep[entry.key]; }
      entry.key = v;
      editor.updateNodeDataFromId(id, { key: v });
      after();
    });
    panel.appendChild(keyRow);
    var box = el("div", { "class": "step-fields" });
    panel.appendChild(box);
    stepFields(step, box, id, after);
    if (!readonly) {
      var remove = el("button", { type: "button", "class": "danger", "data-remove-step": "1", text: T.remove_step });
      remove.addEventListener("click", function () { editor.removeNodeId("node-" + id); });
      panel.appendChild(el("p", {}, [remove]));
    }
  }

  function stepFields(step, box, id, after) {
    switch (step.type) {
      case "send": return sendFields(step, box, id, after);
      case "wait":
        box.appendChild(durationField(T.wait_for, step, "seconds", after)); break;
      case "wait_until":
        box.appendChild(textField(T.time_of_day, step, "time", { type: "time" }, after));
        box.appendChild(el("p", { "class": HELP, text: T.time_help })); break;
      case "wait_event":
        box.appendChild(textField(T.event, step, "event", { maxlength: 200 }, after));
        box.appendChild(jsonField(T.where, step.where || [], function (v) { step.where = v; after(); }, [T.where_help, "[]"]));
        box.appendChild(durationField(T.timeout_after, step, "timeout_seconds", after));
        box.appendChild(el("p", { "class": HELP, text: T.wait_event_help })); break;
      case "branch":
        box.appendChild(jsonField(T.rule, step.rule, function (v) { step.rule = v; after(); }, [T.rule_help, RULE_EXAMPLE]));
        box.appendChild(el("p", { "class": HELP, text: T.branch_help })); break;
      case "split": return splitFields(step, box, id, after);
      case "update_trait":
        box.appendChild(textField(T.trait, step, "trait", { maxlength: 200 }, after));
        box.appendChild(jsonField(T.value, step.value, function (v) { step.value = v; after(); }, [T.value_help, VALUE_EXAMPLE])); break;
      case "segment_add": case "segment_remove":
        box.appendChild(selectField(T.segment, step, "segment_id", segmentChoices(true), after));
        box.appendChild(el("p", { "class": HELP, text: T.static_only })); break;
      case "create_task":
        box.appendChild(textField(T.title, step, "title", { maxlength: 300 }, after));
        box.appendChild(textField(T.due_in_days, step, "due_in_days", { type: "number", min: 0, step: 1 }, after)); break;
      case "webhook":
        box.appendChild(textField(T.url, step, "url", { type: "url", maxlength: 2000 }, after)); break;
      case "exit":
        box.appendChild(el("p", { "class": "muted", text: T.exit_help })); break;
    }
  }

  function sendFields(step, box, id, after) {
    box.appendChild(selectField(T.channel, step, "channel", O.channels, function () { after(); draw(); }));
    box.appendChild(selectField(T.purpose, step, "purpose", O.purposes, after));
    var mode = step.decide ? "decide" : step.content ? "content" : "template";
    var modeSelect = select([["template", T.use_template], ["content", T.write_content], ["decide", T.decided]], mode);
    box.appendChild(fieldRow(T.content, modeSelect));
    var inner = el("div", { "class": "send-content" });
    box.appendChild(inner);
    modeSelect.addEventListener("change", function () {
      mode = modeSelect.value;
      step.decide = mode === "decide";
      step.template_id = null;
      step.content = mode === "content" ? { subject: "", html: "", text: "" } : null;
      after(); draw();
    });
    function draw() {
      inner.innerHTML = "";
      if (mode === "decide") { inner.appendChild(el("p", { "class": HELP, text: T.decide_help })); return; }
      if (mode === "template") {
        var choices = [["", "—"]];
        O.templates.forEach(function (t) { if (!step.channel || t.channel === step.channel) choices.push([t.id, t.name]); });
        var pick = select(choices, step.template_id || "", { name: "step-template" });
        pick.addEventListener("change", function () { step.template_id = pick.value || null; after(); });
        inner.appendChild(fieldRow(T.template, pick));
        return;
      }
      step.content = step.content || {};
      if (step.channel === "email") inner.appendChild(textField(T.subject, step.content, "subject", { maxlength: 500 }, after));
      if (step.channel === "email" || step.channel === "in_app") {
        var html = textarea(step.content.html, { "class": "code", rows: 6, spellcheck: "false" });
        html.addEventListener("input", function () { step.content.html = html.value; after(); });
        inner.appendChild(fieldRow(T.html, html));
      }
      var text = textarea(step.content.text, { rows: 4 });
      text.addEventListener("input", function () { step.content.text = text.value; after(); });
      inner.appendChild(fieldRow(T.text, text));
      if (step.channel === "push" || step.channel === "in_app" || step.channel === "webhook") {
        inner.appendChild(textField(T.url, step.content, "url", { type: "url", maxlength: 2000 }, after));
      }
    }
    draw();
  }

  function splitFields(step, box, id, after) {
    var list = el("div", { "class": "split-paths" });
    var total = el("p", { "class": "muted", "aria-live": "polite" });
    box.appendChild(list);
    box.appendChild(total);
    function sum() {
      var s = 0;
      step.paths.forEach(function (p) { s += Number(p.share) || 0; });
      total.textContent = T.shares_total + ": " + s + "%" + (s === 100 ? "" : " — " + T.shares_100);
      total.classList.toggle("error", s !== 100);
    }
    function draw() {
      list.innerHTML = "";
      step.paths.forEach(function (p, i) {
        var label = input("text", p.label, { maxlength: 40, "aria-label": T.path_label + " " + (i + 1) });
        var share = input("number", p.share, { min: 0, max: 100, step: 1, "aria-label": T.share + " " + (i + 1) });
        label.addEventListener("input", function () { p.label = label.value; after(); });
        share.addEventListener("input", function () { p.share = share.value === "" ? 0 : Math.round(Number(share.value)); sum(); after(); });
        var row = el("div", { "class": "split-path" }, [el("span", { "class": "muted", text: String(i + 1) }), label, share, el("span", { text: "%" })]);
        if (!readonly && step.paths.length > 2) {
          var rm = el("button", { type: "button", "class": "link", "aria-label": T.remove_path + " " + (i + 1), text: "×" });
          rm.addEventListener("click", function () {
            step.paths.splice(i, 1);
            editor.removeNodeOutput(id, "output_" + (i + 1));
            draw(); after();
          });
          row.appendChild(rm);
        }
        list.appendChild(row);
      });
      sum();
    }
    if (!readonly) {
      var add = el("button", { type: "button", text: T.add_path });
      add.addEventListener("click", function () {
        step.paths.push({ share: 0, label: String.fromCharCode(65 + step.paths.length) });
        editor.addNodeOutput(id);
        draw(); after();
      });
      box.appendChild(add);
    }
    draw();
  }

  // --- Trigger and goal panels ------------------------------------------------------------
  var TRIGGER_FIELDS = {
    event: ["event", "where"],
    segment_entered: ["segment_id"],
    segment_left: ["segment_id"],
    lifecycle_changed: ["stage", "sub_stage"],
    prediction: ["model", "field", "op", "value"],
    date_trait: ["trait", "offset_days", "time", "yearly"],
    schedule: ["cron", "segment_id"],
    manual: []
  };
  function triggerChanged() {
    var node = triggerId && canvas.querySelector("#node-" + triggerId + " .jn-summary");
    if (node) node.textContent = triggerSummary();
    markDirty();
  }
  function drawTrigger() {
    if (!triggerPanel) return;
    if (!isObject(graph.trigger) || !TRIGGER_FIELDS[graph.trigger.type]) graph.trigger = { type: "manual" };
    var t = graph.trigger;
    triggerPanel.innerHTML = "";
    var kinds = Object.keys(TRIGGER_FIELDS).map(function (k) { return [k, W.triggers[k] || k]; });
    var kind = select(kinds, t.type, { name: "trigger-type" });
    kind.addEventListener("change", function () {
      var fresh = { type: kind.value };
      if (kind.value === "event") { fresh.event = ""; fresh.where = []; }
      if (kind.value === "prediction") { fresh.model = "churn"; fresh.field = "risk"; fresh.op = "gte"; fresh.value = 0.7; }
      if (kind.value === "date_trait") { fresh.trait = "birthday"; fresh.offset_days = 0; fresh.time = "09:00"; fresh.yearly = true; }
      if (kind.value === "schedule") { fresh.cron = "0 9 * * *"; fresh.segment_id = ""; }
      graph.trigger = fresh;
      drawTrigger(); triggerChanged();
    });
    triggerPanel.appendChild(fieldRow(T.trigger_type, kind, null, O.panel_errors.trigger));
    TRIGGER_FIELDS[t.type].forEach(function (name) {
      var label = W.trigger_fields[name] || name;
      if (name === "where") triggerPanel.appendChild(jsonField(label, t.where || [], function (v) { t.where = v; triggerChanged(); }, [T.where_help, "[]"]));
      else if (name === "segment_id") triggerPanel.appendChild(selectField(label, t, name, segmentChoices(false), triggerChanged));
      else if (name === "op") triggerPanel.appendChild(selectField(label, t, name, [["gte", "≥"], ["gt", ">"], ["lte", "≤"], ["lt", "<"]], triggerChanged));
      else if (name === "yearly") {
        var c = input("checkbox", "", {});
        c.checked = !!t.yearly;
        c.addEventListener("change", function () { t.yearly = c.checked; triggerChanged(); });
        triggerPanel.appendChild(el("label", { "class": "inline-choice" }, [c, " " + label]));
      } else if (name === "value") triggerPanel.appendChild(textField(label, t, name, { type: "number", step: "any" }, triggerChanged));
      else if (name === "offset_days") triggerPanel.appendChild(textField(label, t, name, { type: "number", step: 1 }, triggerChanged));
      else if (name === "time") triggerPanel.appendChild(textField(label, t, name, { type: "time" }, triggerChanged));
      else triggerPanel.appendChild(textField(label, t, name, { maxlength: 200 }, triggerChanged));
    });
  }
  function drawGoal() {
    if (!goalPanel) return;
    goalPanel.innerHTML = "";
    var g = graph.goal;
    var mode = !g ? "none" : !g.event && g.rule ? "rule" : "event";
    var kind = select([["none", T.no_goal], ["event", T.goal_event], ["rule", T.goal_rule]], mode, { name: "goal-kind" });
    kind.addEventListener("change", function () {
      if (kind.value === "none") graph.goal = null;
      else if (kind.value === "rule") graph.goal = { rule: { all: [] }, within_days: 30 };
      else graph.goal = { event: "", where: [], within_days: 30 };
      drawGoal(); markDirty();
    });
    goalPanel.appendChild(fieldRow(T.goal, kind, null, O.panel_errors.goal));
    if (!g) return;
    if (mode === "event") {
      goalPanel.appendChild(textField(T.event, g, "event", { maxlength: 200, name: "goal-event" }, markDirty));
      goalPanel.appendChild(jsonField(T.where, g.where || [], function (v) { g.where = v; markDirty(); }, [T.where_help, "[]"]));
    } else {
      goalPanel.appendChild(jsonField(T.rule, g.rule, function (v) { g.rule = v; markDirty(); }, [T.rule_help, RULE_EXAMPLE]));
    }
    goalPanel.appendChild(textField(T.within_days, g, "within_days", { type: "number", min: 1, step: 1 }, markDirty));
  }

  // --- Adding steps -------------------------------------------------------------------------
  function newKey(type) {
    var n = 1;
    while (idOfKey(type + "_" + n)) n += 1;
    return type + "_" + n;
  }
  var adder = document.getElementById("step-add");
  if (adder && !readonly) {
    adder.addEventListener("click", function () {
      var type = document.getElementById("step-type").value;
      if (!DEFAULTS[type]) return;
      // Beside the chosen step, else at the canvas' visible top left.
      // Below the chosen step, kept inside what the canvas shows.
      var near = selected && nodes[selected] ? editor.getNodeFromId(selected) : null;
      var W = canvas.clientWidth, H = canvas.clientHeight, z = editor.zoom;
      function graphX(sx) { return W / 2 + (sx - W / 2 - editor.canvas_x) / z; }
      function graphY(sy) { return H / 2 + (sy - H / 2 - editor.canvas_y) / z; }
      var nearBox = near && canvas.querySelector("#node-" + selected);
      var x = near ? near.pos_x + 30 : graphX(40);
      var y = near ? near.pos_y + (nearBox ? nearBox.offsetHeight : 80) + 50 : graphY(40);
      x = Math.max(graphX(10), Math.min(x, graphX(W - 230 * z) ));
      y = Math.max(graphY(10), Math.min(y, graphY(H - 120 * z)));
      var id = addStepNode(newKey(type), DEFAULTS[type](), x, y);
      markDirty();
      showPanel(String(id));
    });
  }

  // The whole graph in view (zoomed out on a narrow screen, never in beyond 1:1).
  function fit() {
    var data = editor.export().drawflow.Home.data;
    var minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
    Object.keys(data).forEach(function (id) {
      var box = canvas.querySelector("#node-" + id);
      var n = data[id];
      minX = Math.min(minX, n.pos_x); minY = Math.min(minY, n.pos_y);
      maxX = Math.max(maxX, n.pos_x + (box ? box.offsetWidth : 200));
      maxY = Math.max(maxY, n.pos_y + (box ? box.offsetHeight : 80));
    });
    if (minX === Infinity) return;
    var W = canvas.clientWidth, H = canvas.clientHeight, pad = 24;
    // All of its width; of a tall graph, its top (pan to see the rest).
    var z = Math.min(1, (W - 2 * pad) / (maxX - minX), Math.max(0.7, (H - 2 * pad) / (maxY - minY)));
    z = Math.max(0.35, z);
    editor.zoom = z;
    editor.zoom_last_value = z;
    editor.canvas_x = pad - W / 2 - (minX - W / 2) * z;
    editor.canvas_y = pad - H / 2 - (minY - H / 2) * z;
    editor.precanvas.style.transform = "translate(" + editor.canvas_x + "px, " + editor.canvas_y + "px) scale(" + z + ")";
  }
  var zoomFit = document.getElementById("zoom-fit");
  if (zoomFit) zoomFit.addEventListener("click", fit);

  // --- The graph, written for the form ----------------------------------------------------
  function toGraph() {
    var data = editor.export().drawflow.Home.data;
    var out = {};
    ["name", "description"].forEach(function (k) {
      var i = form.querySelector("[name=" + k + "]");
      out[k] = i ? i.value : (graph[k] || "");
    });
    out.trigger = graph.trigger;
    out.goal = graph.goal || null;
    var holdout = form.querySelector("[name=holdout_percent]");
    out.holdout_percent = holdout && holdout.value !== "" ? Number(holdout.value) : 0;
    var reentry = form.querySelector("[name=reentry_mode]");
    out.reentry = { mode: reentry ? reentry.value : "never" };
    if (out.reentry.mode === "after_days") {
      var days = form.querySelector("[name=reentry_days]");
      out.reentry.days = days && days.value !== "" ? Number(days.value) : null;
    }
    out.start = null;
    out.steps = {};
    out.layout = {};
    function target(nodeData, output) {
      var conns = (nodeData.outputs[output] || { connections: [] }).connections;
      var to = conns.length ? nodes[conns[0].node] : null;
      return to ? to.key : null;
    }
    Object.keys(data).forEach(function (id) {
      var n = data[id];
      if (String(id) === String(triggerId)) { out.start = target(n, "output_1"); return; }
      var entry = nodes[id];
      if (!entry) return;
      var step = JSON.parse(JSON.stringify(entry.step));
      outputsOf(step).forEach(function (name, i) {
        var to = target(n, "output_" + (i + 1));
        if (name.indexOf("paths.") === 0) step.paths[i].next = to;
        else step[name] = to;
      });
      out.steps[entry.key] = step;
      out.layout[entry.key] = { x: Math.round(n.pos_x), y: Math.round(n.pos_y) };
    });
    return out;
  }
  window.rapportJourneyGraph = toGraph;
  window.rapportJourneyEditor = editor;

  form.addEventListener("submit", function (event) {
    if (readonly) return;
    var bad = form.querySelector("[data-bad]") || document.querySelector("#journey-editor [data-bad]");
    if (bad) {
      event.preventDefault();
      bad.focus();
      return;
    }
    field.value = JSON.stringify(toGraph(), null, 2);
    form.dataset.submitting = "1";
  });

  load();
  drawTrigger();
  drawGoal();
  showPanel(null);
  fit();
  loaded = true;
  field.readOnly = true;
  ["j-name", "j-description", "j-holdout", "j-reentry", "j-reentry-days"].forEach(function (id) {
    var input = document.getElementById(id);
    if (input) input.addEventListener("change", markDirty);
  });
  // Errors about no step (the trigger, the goal, the start) are listed above the editor.
  var first = Object.keys(errorsByStep)[0];
  if (first && idOfKey(first)) {
    var node = canvas.querySelector("#node-" + idOfKey(first));
    if (node) node.classList.add("selected");
    showPanel(idOfKey(first));
  }
  document.querySelectorAll("[data-select-step]").forEach(function (link) {
    link.addEventListener("click", function (event) {
      var id = idOfKey(link.getAttribute("data-select-step"));
      if (!id) return;
      event.preventDefault();
      showPanel(id);
      if (panel) panel.scrollIntoView({ block: "nearest" });
    });
  });
  var zoomIn = document.getElementById("zoom-in"), zoomOut = document.getElementById("zoom-out");
  if (zoomIn) zoomIn.addEventListener("click", function () { editor.zoom_in(); });
  if (zoomOut) zoomOut.addEventListener("click", function () { editor.zoom_out(); });
  canvas.setAttribute("data-ready", "1");
})();
