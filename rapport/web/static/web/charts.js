// Draws the analytics charts: each element with data-chart="ID" gets the ECharts option
// in the JSON script #ID (built by rapport/web/analytics.py). A point with an "href"
// opens it (the customers behind the number). Buttons with data-png="ID" save the
// chart as a PNG; CSV files come from the server.
(function () {
  "use strict";
  if (typeof echarts === "undefined") return;
  // Numbers in the page's language (one format per language across the UI), not the
  // browser's.
  var lang = document.documentElement.lang || "en";
  function number(options) {
    var format = new Intl.NumberFormat(lang, options);
    return function (v) { return v == null ? "-" : format.format(Number(v)); };
  }
  var FORMATS = {
    percent: number({ style: "percent", minimumFractionDigits: 1, maximumFractionDigits: 1 }),
    money: number({ maximumFractionDigits: 2 }),
    ratio: number({ minimumFractionDigits: 2, maximumFractionDigits: 2 }),
    score: number({ minimumFractionDigits: 1, maximumFractionDigits: 1 }),
    count: number({ maximumFractionDigits: 0 })
  };
  var charts = {};
  // ECharts' own texts (toolbox, aria, month names) in the page's language: the page
  // loads ECharts' Russian locale (i18n/langRU.js, which registers "RU") on Russian
  // pages; the texts Rapport draws itself come translated from the page (#chart-texts).
  var locale = /^ru\b/i.test(lang) ? "RU" : "EN";
  var texts = document.getElementById("chart-texts");
  var NO_DATA = (texts && texts.getAttribute("data-no-data")) || "";
  var LOADING = (texts && texts.getAttribute("data-loading")) || "";

  function empty(option) {
    var series = option.series || [];
    if (!series.length) return true;
    return series.every(function (s) {
      return !(s.data || []).some(function (d) {
        var v = d !== null && typeof d === "object" && !Array.isArray(d) ? d.value : d;
        if (Array.isArray(v)) v = v[v.length - 1];
        return v !== null && v !== undefined && v !== "" && v !== "-";
      });
    });
  }

  // Money with its currency's sign, as the page's language writes it (spec.currency).
  function moneyIn(currency) {
    try {
      var f = new Intl.NumberFormat(document.documentElement.lang || undefined, {
        style: "currency", currency: currency
      });
      return function (v) { return v == null ? "-" : f.format(Number(v)); };
    } catch (e) {
      return FORMATS.money;
    }
  }

  function formatOf(name, currency) {
    return name === "money" && currency ? moneyIn(currency) : FORMATS[name];
  }

  function draw(node) {
    var source = document.getElementById(node.getAttribute("data-chart"));
    if (!source) return;
    var spec = JSON.parse(source.textContent);
    var option = spec.option;
    var format = formatOf(spec.format, spec.currency);
    if (format) {
      option.tooltip = option.tooltip || {};
      option.tooltip.valueFormatter = format;
    }
    var label = formatOf(spec.labelFormat, spec.currency);
    if (label) {
      (option.series || []).forEach(function (series) {
        series.label = series.label || {};
        series.label.formatter = function (p) {
          var v = Array.isArray(p.value) ? p.value[p.value.length - 1] : p.value;
          return label(v);
        };
      });
      if (option.visualMap) option.visualMap.formatter = label;
    }
    if (NO_DATA && empty(option)) {
      option.graphic = (option.graphic || []).concat([{
        type: "text", left: "center", top: "middle", silent: true,
        style: { text: NO_DATA, fill: "#6b7280", fontSize: 14 }
      }]);
    }
    var chart = echarts.init(node, null, { renderer: "canvas", locale: locale });
    chart.showLoading("default", { text: LOADING });
    chart.setOption(option);
    chart.hideLoading();
    chart.on("click", function (point) {
      if (point.data && point.data.href) window.location.href = point.data.href;
    });
    charts[node.getAttribute("data-chart")] = chart;
    node.setAttribute("data-drawn", "true");
  }

  document.querySelectorAll("[data-chart]").forEach(draw);
  window.addEventListener("resize", function () {
    Object.keys(charts).forEach(function (id) { charts[id].resize(); });
  });
  document.querySelectorAll("[data-png]").forEach(function (button) {
    button.addEventListener("click", function () {
      var chart = charts[button.getAttribute("data-png")];
      if (!chart) return;
      var link = document.createElement("a");
      link.href = chart.getDataURL({ type: "png", pixelRatio: 2, backgroundColor: "#fff" });
      link.download = (button.getAttribute("data-filename") || "chart") + ".png";
      document.body.appendChild(link);
      link.click();
      link.remove();
    });
  });
  window.rapportCharts = charts;
  window.rapportChartLocale = locale;
})();
