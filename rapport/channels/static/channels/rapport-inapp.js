/*
 * Rapport in-app messages, the site's half: polls Rapport for the customer's pending
 * messages, shows them one at a time in a small card, and reports what the customer
 * did with each ("shown", "clicked", "dismissed"), which Rapport records as events of
 * the customer (In-App Message Shown / Clicked / Dismissed).
 *
 *   <script src="https://rapport.example/static/channels/rapport-inapp.js"></script>
 *   var inApp = RapportInApp.start({
 *     host: "https://rapport.example",       // where Rapport answers
 *     writeKey: "<the source's write key>",  // the same as the Tracking API's
 *     userId: "42",                          // or anonymousId; read from analytics.js
 *                                            // (Segment / RudderStack) when omitted
 *     interval: 60000,                       // ms between polls (default a minute)
 *     render: function (message, actions) { … },  // optional: show it your own way,
 *                                            // calling actions.click() / actions.dismiss()
 *   });
 *   inApp.poll();   // ask now (after sign-in, say); inApp.stop() to end
 *
 * Requests carry no cookies and need no CORS preflight: the poll is a GET with the
 * write key in its query, the reports are text/plain POSTs with the key in the body.
 * A message's HTML is the workspace's own template (customer data in it is escaped
 * when Rapport renders it); it is shown as it is.
 */
(function (global) {
  "use strict";

  var STYLE_ID = "rapport-inapp-style";
  var CSS =
    ".rapport-inapp{position:fixed;right:16px;bottom:16px;z-index:2147483000;" +
    "max-width:min(360px,calc(100vw - 32px));background:#fff;color:#1f2933;" +
    "border-radius:10px;box-shadow:0 8px 28px rgba(0,0,0,.18);padding:16px 40px 16px 16px;" +
    "font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif}" +
    ".rapport-inapp h2{font-size:16px;margin:0 0 6px}" +
    ".rapport-inapp-body{cursor:pointer}" +
    ".rapport-inapp-close{position:absolute;top:8px;right:8px;border:0;background:none;" +
    "font-size:20px;line-height:1;cursor:pointer;color:#52606d;padding:4px 8px}";

  function who(options) {
    var user = null;
    try {
      user = global.analytics && global.analytics.user ? global.analytics.user() : null;
    } catch (error) {
      user = null;
    }
    var userId = options.userId || (user && user.id && user.id());
    var anonymousId = options.anonymousId || (user && user.anonymousId && user.anonymousId());
    var found = {};
    if (userId) {
      found.user_id = String(userId);
    }
    if (anonymousId) {
      found.anonymous_id = String(anonymousId);
    }
    return found;
  }

  function query(params) {
    return Object.keys(params)
      .map(function (key) {
        return encodeURIComponent(key) + "=" + encodeURIComponent(params[key]);
      })
      .join("&");
  }

  function defaultRender(message, actions) {
    var document = global.document;
    if (!document.getElementById(STYLE_ID)) {
      var style = document.createElement("style");
      style.id = STYLE_ID;
      style.textContent = CSS;
      document.head.appendChild(style);
    }
    var card = document.createElement("div");
    card.className = "rapport-inapp";
    card.setAttribute("role", "dialog");
    card.setAttribute("aria-live", "polite");
    var body = document.createElement("div");
    body.className = "rapport-inapp-body";
    if (message.title) {
      var title = document.createElement("h2");
      title.textContent = message.title;
      body.appendChild(title);
    }
    var content = document.createElement("div");
    if (message.html) {
      content.innerHTML = message.html;
    } else {
      content.textContent = message.text || "";
    }
    body.appendChild(content);
    body.addEventListener("click", function (event) {
      var link = event.target.closest ? event.target.closest("a[href]") : null;
      actions.click(link ? link.href : message.url);
      if (!link && message.url) {
        global.location.assign(message.url);
      }
    });
    var close = document.createElement("button");
    close.type = "button";
    close.className = "rapport-inapp-close";
    close.setAttribute("aria-label", "Close");
    close.textContent = "\u00d7";
    close.addEventListener("click", function (event) {
      event.stopPropagation();
      actions.dismiss();
    });
    card.appendChild(body);
    card.appendChild(close);
    document.body.appendChild(card);
    return function remove() {
      if (card.parentNode) {
        card.parentNode.removeChild(card);
      }
    };
  }

  function start(options) {
    options = options || {};
    var host = (options.host || "").replace(/\/+$/, "");
    var interval = options.interval || 60000;
    var render = options.render || defaultRender;
    var reported = {};
    var showing = null;
    var timer = null;
    var stopped = false;

    function report(message, type) {
      var key = message.id + ":" + type;
      if (reported[key]) {
        return Promise.resolve();
      }
      reported[key] = true;
      var body = Object.assign({ type: type, writeKey: options.writeKey }, who(options));
      return global
        .fetch(host + "/v1/in-app/messages/" + encodeURIComponent(message.id) + "/events", {
          method: "POST",
          credentials: "omit",
          keepalive: true,
          headers: { "Content-Type": "text/plain" },
          body: JSON.stringify(body),
        })
        .catch(function () {
          reported[key] = false; // tried again next time
        });
    }

    function show(message) {
      var remove = null;
      showing = message.id;
      var actions = {
        click: function () {
          report(message, "clicked");
        },
        dismiss: function () {
          report(message, "dismissed");
          showing = null;
          if (typeof remove === "function") {
            remove();
          }
        },
      };
      remove = render(message, actions);
      report(message, "shown");
    }

    function poll() {
      var params = who(options);
      if (stopped || (!params.user_id && !params.anonymous_id)) {
        return Promise.resolve([]);
      }
      params.writeKey = options.writeKey;
      return global
        .fetch(host + "/v1/in-app/messages?" + query(params), { credentials: "omit" })
        .then(function (response) {
          return response.ok ? response.json() : { messages: [] };
        })
        .then(function (body) {
          var messages = body.messages || [];
          if (showing === null) {
            for (var i = 0; i < messages.length; i += 1) {
              if (!reported[messages[i].id + ":dismissed"]) {
                show(messages[i]);
                break;
              }
            }
          }
          return messages;
        })
        .catch(function () {
          return [];
        });
    }

    function loop() {
      poll().then(function () {
        if (!stopped) {
          timer = global.setTimeout(loop, interval);
        }
      });
    }

    loop();
    return {
      poll: poll,
      stop: function () {
        stopped = true;
        if (timer !== null) {
          global.clearTimeout(timer);
        }
      },
    };
  }

  global.RapportInApp = { start: start };
})(self);
