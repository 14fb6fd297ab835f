// The visual segment rule builder: edits the rule JSON in #rule-json (which the form
// posts) through groups and condition rows, so that nobody types JSON. Without
// JavaScript the JSON field itself remains. The language: docs/segments.md.
//
// It knows no condition: the page gives every condition of the rule language with its
// fields and words (#rule-builder-options, made by rapport/segments/rules.py
// `builder_options` from the registered conditions), and this draws those fields.
(function () {
  "use strict";
  var field = document.getElementById("rule-json");
  var root = document.getElementById("rule-builder");
  var optionsNode = document.getElementById("rule-builder-options");
  if (!field || !root || !optionsNode) return;
  var options = JSON.parse(optionsNode.textContent);
  var T = options.texts;
  var KINDS = {};
  options.conditions.forEach(function (c) { KINDS[c.key] = c; });

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) node.appendChild(c); });
    return node;
  }
  // choices: [[value, label], ...]
  function select(choices, current, aria) {
    var s = el("select", { "aria-label": aria || "" });
    choices.forEach(function (choice) {
      var o = el("option", { value: choice[0], text: choice[1] });
      if (String(choice[0]) === String(current)) o.selected = true;
      s.appendChild(o);
    });
    return s;
  }
  function input(value, aria, type) {
    var i = el("input", { "aria-label": aria, placeholder: aria.toLowerCase(), type: type || "text" });
    i.value = value === undefined || value === null ? "" : value;
    return i;
  }
  function parseValue(text, op) {
    if (op === "exists" || op === "not_exists") return undefined;
    if (op === "in" || op === "not_in") {
      return text.split(",").map(function (p) { return parseScalar(p.trim()); })
        .filter(function (p) { return p !== ""; });
    }
    if (op === "within_last_days" || op === "older_than_days") return parseInt(text, 10) || 0;
    if (op === "before" || op === "after") return text.trim();
    return parseScalar(text);
  }
  function parseScalar(text) {
    if (text === "true") return true;
    if (text === "false") return false;
    if (/^-?\d+(\.\d+)?$/.test(text)) return Number(text);
    return text;
  }
  function showValue(value) {
    if (Array.isArray(value)) return value.join(", ");
    return value === undefined || value === null ? "" : String(value);
  }
  function given(value, fallback) { return value === undefined || value === null ? fallback : value; }

  // The condition a JSON object names: when it holds the keys of several (an aggregate
  // names its event), the one whose fields hold the others' keys (as the server reads it).
  function kindOf(cond) {
    var found = options.conditions.filter(function (c) { return c.key in cond; });
    for (var i = 0; i < found.length; i++) {
      var names = found[i].fields.map(function (f) { return f.name; });
      if (found.every(function (o) { return o === found[i] || names.indexOf(o.key) >= 0; })) {
        return found[i].key;
      }
    }
    return found.length ? found[0].key : options.conditions[0].key;
  }

  // Each widget draws its nodes into `body` and returns a function giving its value
  // (undefined: left out of the JSON).
  var WIDGETS = {
    text: function (f, current, add) {
      var node = input(given(current, f["default"]), f.label);
      if (f.suggest) {
        var id = "rule-suggest-" + f.name + "-" + Math.random().toString(36).slice(2);
        var list = el("datalist", { id: id });
        f.suggest.forEach(function (s) { list.appendChild(el("option", { value: s })); });
        add(list, true);
        node.setAttribute("list", id);
      }
      add(node);
      return function () { return node.value; };
    },
    number: function (f, current, add) {
      var node = add(input(given(current, f["default"]), f.label, "number"));
      return function () { return Number(node.value) || 0; };
    },
    select: function (f, current, add) {
      var choices = f.choices;
      var node = add(select(choices, given(current, given(f["default"], choices.length ? choices[0][0] : "")), f.label));
      return function () { return node.value; };
    },
    // A value typed as the operator beside it takes it (a list, days, a date...).
    value: function (f, current, add, parts) {
      var node = input(showValue(given(current, f["default"])), f.label);
      if (f.suggest) {
        var id = "rule-suggest-" + Math.random().toString(36).slice(2);
        var list = el("datalist", { id: id });
        f.suggest.forEach(function (s) { list.appendChild(el("option", { value: s })); });
        add(list, true);
        node.setAttribute("list", id);
      }
      add(node);
      return function () { return parseValue(node.value, parts.op ? parts.op() : "eq"); };
    },
    count: function (f, current, add) {
      var count = current || { op: "gte", value: 1 };
      var op = add(select(f.choices, count.op, f.label));
      var times = add(input(count.value, f.label, "number"));
      return function () { return { op: op.value, value: parseInt(times.value, 10) || 0 }; };
    },
    where: function (f, current, add) {
      var where = (current || [])[0] || {};
      var prop = add(input(where.property || "", f.label));
      var op = add(select(f.choices, where.op || "eq", f.op_label));
      var val = add(input(showValue(where.value), f.value_label));
      return function () {
        if (!prop.value) return undefined;
        var cond = { property: prop.value, op: op.value };
        var v = parseValue(val.value, op.value);
        if (v !== undefined) cond.value = v;
        return [cond];
      };
    },
    window: function (f, current, add) {
      var win = current || {};
      var kinds = f.choices.map(function (c) { return c[0]; }).filter(function (k) { return k; });
      var kind = kinds.filter(function (k) { return win[k]; })[0] || "";
      var kindSel = add(select(f.choices, kind, f.label));
      var days = add(input(win[kind] || "", f.days_label, "number"));
      days.min = 1;
      return function () {
        if (!kindSel.value) return undefined;
        var w = {};
        w[kindSel.value] = parseInt(days.value, 10) || 1;
        return w;
      };
    }
  };

  function conditionRow(cond, onChange, onRemove) {
    var negated = false;
    if (cond && cond.not && !cond.not.all && !cond.not.any) { negated = true; cond = cond.not; }
    var row = el("div", { "class": "rule-row" });
    var notBox = el("input", { type: "checkbox", "aria-label": T.not });
    notBox.checked = negated;
    var kindSel = select(options.conditions.map(function (c) { return [c.key, c.label]; }),
      cond ? kindOf(cond) : options.conditions[0].key, T.condition);
    var body = el("span", { "class": "rule-body" });
    var remove = el("button", { type: "button", "class": "secondary", text: T.remove });
    row.appendChild(el("label", { "class": "rule-not" }, [notBox, document.createTextNode(" " + T.not)]));
    row.appendChild(kindSel);
    row.appendChild(body);
    row.appendChild(remove);
    var read = render(cond || {});

    function render(c) {
      body.textContent = "";
      var kind = KINDS[kindSel.value];
      var parts = {};
      function add(node, quiet) {
        body.appendChild(node);
        if (!quiet) node.addEventListener(node.tagName === "SELECT" ? "change" : "input", onChange);
        return node;
      }
      kind.fields.forEach(function (f) {
        parts[f.name] = WIDGETS[f.widget](f, c[f.name], add, parts);
        if (f.after) body.appendChild(document.createTextNode(f.after));
      });
      return function () {
        var out = {};
        kind.fields.forEach(function (f) {
          var v = parts[f.name]();
          if (v !== undefined) out[f.name] = v;
        });
        return out;
      };
    }

    kindSel.addEventListener("change", function () { read = render({}); onChange(); });
    notBox.addEventListener("change", onChange);
    remove.addEventListener("click", onRemove);
    return { node: row, value: function () { var v = read(); return notBox.checked ? { not: v } : v; } };
  }

  function groupBox(rule, onChange, onRemove) {
    var negated = false;
    if (rule && rule.not && (rule.not.all || rule.not.any)) { negated = true; rule = rule.not; }
    rule = rule || { all: [] };
    var mode = rule.any ? "any" : "all";
    var box = el("fieldset", { "class": "rule-group" });
    var legend = el("legend");
    var notBox = el("input", { type: "checkbox", "aria-label": T.not });
    notBox.checked = negated;
    var modeSel = select([["all", T.all], ["any", T.any]], mode, T.group);
    legend.appendChild(el("label", {}, [notBox, document.createTextNode(" " + T.not + " ")]));
    legend.appendChild(modeSel);
    box.appendChild(legend);
    var list = el("div", { "class": "rule-children" });
    box.appendChild(list);
    var children = [];
    function addChild(item) {
      var holder = {};
      var isGroup = item && (item.all || item.any || (item.not && (item.not.all || item.not.any)));
      var made = isGroup
        ? groupBox(item, onChange, function () { removeChild(holder); })
        : conditionRow(item, onChange, function () { removeChild(holder); });
      holder.part = made;
      children.push(holder);
      list.appendChild(made.node);
    }
    function removeChild(holder) {
      children = children.filter(function (h) { return h !== holder; });
      list.removeChild(holder.part.node);
      onChange();
    }
    (rule[mode] || []).forEach(addChild);
    var addCond = el("button", { type: "button", "class": "secondary", text: T.add_condition });
    var addGroup = el("button", { type: "button", "class": "secondary", text: T.add_group });
    addCond.addEventListener("click", function () { addChild(null); onChange(); });
    addGroup.addEventListener("click", function () { addChild({ any: [] }); onChange(); });
    var tools = el("p", { "class": "rule-tools" }, [addCond, addGroup]);
    if (onRemove) {
      var remove = el("button", { type: "button", "class": "secondary", text: T.remove_group });
      remove.addEventListener("click", onRemove);
      tools.appendChild(remove);
    }
    box.appendChild(tools);
    modeSel.addEventListener("change", onChange);
    notBox.addEventListener("change", onChange);
    return {
      node: box,
      value: function () {
        var out = {};
        out[modeSel.value] = children.map(function (h) { return h.part.value(); });
        return notBox.checked ? { not: out } : out;
      }
    };
  }

  var initial;
  try { initial = JSON.parse(field.value || "{}"); } catch (e) { return; }
  if (!(initial.all || initial.any || (initial.not && (initial.not.all || initial.not.any)))) {
    initial = { all: Object.keys(initial).length ? [initial] : [] };
  }
  var top;
  function changed() {
    field.value = JSON.stringify(top.value(), null, 1);
    document.body.dispatchEvent(new CustomEvent("rule-changed"));
  }
  top = groupBox(initial, changed, null);
  root.appendChild(top.node);
})();
