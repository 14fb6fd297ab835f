// The visual segment rule builder: edits the rule JSON in #rule-json (which the form
// posts) through groups and condition rows, so that nobody types JSON. Without
// JavaScript the JSON field itself remains. The language: docs/segments.md.
(function () {
  "use strict";
  var field = document.getElementById("rule-json");
  var root = document.getElementById("rule-builder");
  var optionsNode = document.getElementById("rule-builder-options");
  if (!field || !root || !optionsNode) return;
  var options = JSON.parse(optionsNode.textContent);

  var OPS = {
    eq: "is", ne: "is not", gt: ">", gte: "≥", lt: "<", lte: "≤",
    contains: "contains", not_contains: "does not contain", starts_with: "starts with",
    exists: "is known", not_exists: "is unknown", in: "is one of", not_in: "is none of",
    before: "is before", after: "is after", within_last_days: "within the last (days)",
    older_than_days: "more than (days) ago"
  };
  var COUNT_OPS = ["gte", "gt", "eq", "ne", "lt", "lte"];
  var KINDS = {
    trait: "Trait", event: "Did an event", aggregate: "Sum / average of a property",
    account_trait: "Account trait", consent: "Consent", profile: "First / last seen",
    segment: "In segment", rfm: "RFM", lifecycle: "Lifecycle stage",
    prediction: "Prediction (churn risk, lifetime value)"
  };
  var PREDICTIONS = {
    churn_probability: "churn probability (0-1)", churn_band: "churn risk band",
    clv: "lifetime value", p_alive: "probability still a customer",
    expected_purchases_90: "expected purchases, next 90 days", expected_order_value: "expected order value"
  };

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) node.appendChild(c); });
    return node;
  }
  function select(values, current, labels, aria) {
    var s = el("select", { "aria-label": aria || "" });
    values.forEach(function (v) {
      var o = el("option", { value: v, text: labels ? labels[v] || v : v });
      if (String(v) === String(current)) o.selected = true;
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

  function kindOf(cond) {
    if (cond.aggregate) return "aggregate";
    var found = Object.keys(KINDS).filter(function (k) { return k in cond; });
    return found[0] || "trait";
  }

  function windowEditor(win, onChange) {
    win = win || {};
    var kind = win.last_days ? "last_days" : win.older_than_days ? "older_than_days"
      : win.first_days ? "first_days" : "";
    var kindSel = select(["", "last_days", "older_than_days", "first_days"], kind, {
      "": "at any time", last_days: "in the last N days",
      older_than_days: "more than N days ago", first_days: "in the first N days after first seen"
    }, "When");
    var days = input(win[kind] || "", "Days", "number");
    days.min = 1;
    function value() {
      if (!kindSel.value) return null;
      var w = {};
      w[kindSel.value] = parseInt(days.value, 10) || 1;
      return w;
    }
    kindSel.addEventListener("change", onChange);
    days.addEventListener("input", onChange);
    return { nodes: [kindSel, days], value: value };
  }

  function conditionRow(cond, onChange, onRemove) {
    var negated = false;
    if (cond && cond.not && !cond.not.all && !cond.not.any) { negated = true; cond = cond.not; }
    cond = cond || { trait: "", op: "eq", value: "" };
    var row = el("div", { "class": "rule-row" });
    var notBox = el("input", { type: "checkbox", "aria-label": "Not" });
    notBox.checked = negated;
    var kindSel = select(Object.keys(KINDS), kindOf(cond), KINDS, "Condition");
    var body = el("span", { "class": "rule-body" });
    var remove = el("button", { type: "button", "class": "secondary", text: "Remove" });
    row.appendChild(el("label", { "class": "rule-not" }, [notBox, document.createTextNode(" not")]));
    row.appendChild(kindSel);
    row.appendChild(body);
    row.appendChild(remove);
    var read = render(cond);

    function render(c) {
      body.textContent = "";
      var kind = kindSel.value;
      var parts = {};
      function add(name, node) { parts[name] = node; body.appendChild(node);
        node.addEventListener(node.tagName === "SELECT" ? "change" : "input", onChange); }
      if (kind === "trait" || kind === "account_trait") {
        add("name", input(c[kind] || "", kind === "trait" ? "Trait name" : "Account trait name"));
        add("op", select(Object.keys(OPS), c.op || "eq", OPS, "Operator"));
        add("value", input(showValue(c.value), "Value"));
        return function () {
          var out = {}; out[kind] = parts.name.value; out.op = parts.op.value;
          var v = parseValue(parts.value.value, parts.op.value);
          if (v !== undefined) out.value = v;
          return out;
        };
      }
      if (kind === "event" || kind === "aggregate") {
        if (kind === "aggregate") {
          add("fn", select(["sum", "avg", "min", "max"], c.aggregate || "sum", null, "Function"));
          add("property", input(c.property || "revenue", "Property"));
          body.appendChild(document.createTextNode(" of "));
        }
        add("event", input(c.event || options.purchase_event, "Event"));
        var count = c.count || { op: "gte", value: 1 };
        if (kind === "event") {
          add("cop", select(COUNT_OPS, count.op, OPS, "Times"));
          add("times", input(count.value, "Times", "number"));
          body.appendChild(document.createTextNode(" times "));
        }
        var where = (c.where || [])[0] || {};
        add("wprop", input(where.property || "", "Where property"));
        add("wop", select(Object.keys(OPS), where.op || "eq", OPS, "Where operator"));
        add("wval", input(showValue(where.value), "Where value"));
        var win = windowEditor(c.window, onChange);
        win.nodes.forEach(function (n) { body.appendChild(n); });
        if (kind === "aggregate") {
          add("op", select(COUNT_OPS, c.op || "gte", OPS, "Operator"));
          add("value", input(c.value === undefined ? 0 : c.value, "Value", "number"));
        }
        return function () {
          var out = { event: parts.event.value };
          if (kind === "aggregate") {
            out = { aggregate: parts.fn.value, event: parts.event.value,
              property: parts.property.value, op: parts.op.value,
              value: Number(parts.value.value) || 0 };
          } else {
            out.count = { op: parts.cop.value, value: parseInt(parts.times.value, 10) || 0 };
          }
          var w = win.value();
          if (w) out.window = w;
          if (parts.wprop.value) {
            var cond = { property: parts.wprop.value, op: parts.wop.value };
            var v = parseValue(parts.wval.value, parts.wop.value);
            if (v !== undefined) cond.value = v;
            out.where = [cond];
          }
          return out;
        };
      }
      if (kind === "consent") {
        add("channel", select(["email", "sms", "push", "phone", "direct_mail"], c.consent || "email", null, "Channel"));
        add("purpose", select(["marketing", "transactional"], c.purpose || "marketing", null, "Purpose"));
        add("status", select(["granted", "denied"], c.status || "granted", null, "Status"));
        return function () {
          return { consent: parts.channel.value, purpose: parts.purpose.value, status: parts.status.value };
        };
      }
      if (kind === "profile") {
        add("field", select(["first_seen_at", "last_seen_at"], c.profile || "last_seen_at",
          { first_seen_at: "first seen", last_seen_at: "last seen" }, "When"));
        add("op", select(["within_last_days", "older_than_days", "before", "after"], c.op || "within_last_days", OPS, "Operator"));
        add("value", input(showValue(c.value === undefined ? 30 : c.value), "Value"));
        return function () {
          return { profile: parts.field.value, op: parts.op.value, value: parseValue(parts.value.value, parts.op.value) };
        };
      }
      if (kind === "segment") {
        var ids = options.segments.map(function (s) { return s.id; });
        var names = {}; options.segments.forEach(function (s) { names[s.id] = s.name; });
        add("segment", select(ids, c.segment || ids[0], names, "Segment"));
        return function () { return { segment: parts.segment.value }; };
      }
      if (kind === "rfm") {
        add("field", select(["cell", "r", "f", "m", "recency_days", "frequency", "monetary"], c.rfm || "cell", null, "RFM"));
        add("op", select(["in", "not_in", "eq", "ne", "gte", "lte"], c.op || "in", OPS, "Operator"));
        var list = el("datalist", { id: "rfm-cells" });
        options.cells.forEach(function (cell) { list.appendChild(el("option", { value: cell })); });
        body.appendChild(list);
        var value = input(showValue(c.value || "Champions"), "Value"); value.setAttribute("list", "rfm-cells");
        add("value", value);
        return function () {
          return { rfm: parts.field.value, op: parts.op.value, value: parseValue(parts.value.value, parts.op.value) };
        };
      }
      if (kind === "prediction") {
        add("field", select(Object.keys(PREDICTIONS), c.prediction || "churn_probability", PREDICTIONS, "Prediction"));
        add("op", select(["gte", "gt", "lte", "lt", "eq", "ne", "in"], c.op || "gte", OPS, "Operator"));
        add("value", input(showValue(c.value === undefined ? 0.5 : c.value), "Value"));
        return function () {
          return { prediction: parts.field.value, op: parts.op.value, value: parseValue(parts.value.value, parts.op.value) };
        };
      }
      // lifecycle
      var keys = options.stages.map(function (s) { return s.key; });
      var labels = {}; options.stages.forEach(function (s) { labels[s.key] = s.name; });
      add("op", select(["eq", "ne"], c.op || "eq", OPS, "Operator"));
      add("stage", select(keys, c.value || keys[0], labels, "Stage"));
      return function () { return { lifecycle: "stage", op: parts.op.value, value: parts.stage.value }; };
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
    var notBox = el("input", { type: "checkbox", "aria-label": "None of" });
    notBox.checked = negated;
    var modeSel = select(["all", "any"], mode, { all: "Match all of", any: "Match any of" }, "Group");
    legend.appendChild(el("label", {}, [notBox, document.createTextNode(" not ")]));
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
    var addCond = el("button", { type: "button", "class": "secondary", text: "+ Condition" });
    var addGroup = el("button", { type: "button", "class": "secondary", text: "+ Group" });
    addCond.addEventListener("click", function () { addChild(null); onChange(); });
    addGroup.addEventListener("click", function () { addChild({ any: [] }); onChange(); });
    var tools = el("p", { "class": "rule-tools" }, [addCond, addGroup]);
    if (onRemove) {
      var remove = el("button", { type: "button", "class": "secondary", text: "Remove group" });
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
