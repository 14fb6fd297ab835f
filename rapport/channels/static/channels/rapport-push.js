/*
 * Rapport web push, the page's half: asks the customer's permission, subscribes the
 * browser with the workspace's VAPID public key and posts the subscription to Rapport
 * (POST /v1/push/subscriptions, authenticated by the source's write key).
 *
 *   <script src="https://rapport.example/static/channels/rapport-push.js"></script>
 *   RapportPush.subscribe({
 *     host: "https://rapport.example",       // where Rapport answers
 *     writeKey: "<the source's write key>",  // the same as the Tracking API's
 *     userId: "42",                          // or anonymousId; read from analytics.js
 *                                            // (Segment / RudderStack) when omitted
 *     serviceWorker: "/rapport-sw.js",       // served from the site's own origin
 *   }).then(function (subscription) { … });
 *
 *   RapportPush.unsubscribe({ host: …, writeKey: … });   // and forget this browser
 *
 * The public key is fetched from Rapport (GET /v1/push/public-key) unless `publicKey`
 * is given. Call subscribe() from a click: browsers ask for permission only after a
 * user gesture. Rapport answers 404 (unknown_customer) for a customer it has not heard
 * of yet: identify them (analytics.identify) before subscribing.
 */
(function (global) {
  "use strict";

  function keyBytes(base64url) {
    var padding = "=".repeat((4 - (base64url.length % 4)) % 4);
    var base64 = (base64url + padding).replace(/-/g, "+").replace(/_/g, "/");
    var raw = global.atob(base64);
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i += 1) {
      bytes[i] = raw.charCodeAt(i);
    }
    return bytes;
  }

  function base(options) {
    return (options.host || "").replace(/\/+$/, "");
  }

  function authHeaders(options) {
    var headers = { "Content-Type": "application/json" };
    if (options.writeKey) {
      headers.Authorization = "Basic " + global.btoa(options.writeKey + ":");
    }
    return Object.assign(headers, options.headers || {});
  }

  // Who the browser belongs to: the options, else analytics.js's user.
  function who(options) {
    var found = {};
    var user = null;
    try {
      user = global.analytics && global.analytics.user ? global.analytics.user() : null;
    } catch (error) {
      user = null;
    }
    var userId = options.userId || (user && user.id && user.id());
    var anonymousId = options.anonymousId || (user && user.anonymousId && user.anonymousId());
    if (userId) {
      found.user_id = String(userId);
    }
    if (anonymousId) {
      found.anonymous_id = String(anonymousId);
    }
    return Object.assign(found, options.extra || {});
  }

  function publicKey(options) {
    if (options.publicKey) {
      return Promise.resolve(options.publicKey);
    }
    return global
      .fetch(base(options) + "/v1/push/public-key", {
        credentials: "omit",
        headers: authHeaders(options),
      })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("Rapport did not give its push key (" + response.status + ")");
        }
        return response.json();
      })
      .then(function (body) {
        return body.public_key;
      });
  }

  function subscribe(options) {
    options = options || {};
    if (!("serviceWorker" in global.navigator) || !("PushManager" in global)) {
      return Promise.reject(new Error("This browser has no web push"));
    }
    var url = options.subscribeUrl || base(options) + "/v1/push/subscriptions";
    return global.Notification.requestPermission()
      .then(function (permission) {
        if (permission !== "granted") {
          throw new Error("Notifications were not allowed");
        }
        return global.navigator.serviceWorker.register(options.serviceWorker || "/rapport-sw.js");
      })
      .then(function () {
        return Promise.all([global.navigator.serviceWorker.ready, publicKey(options)]);
      })
      .then(function (ready) {
        var registration = ready[0];
        return registration.pushManager.getSubscription().then(function (existing) {
          return (
            existing ||
            registration.pushManager.subscribe({
              userVisibleOnly: true,
              applicationServerKey: keyBytes(ready[1]),
            })
          );
        });
      })
      .then(function (subscription) {
        var body = Object.assign({ subscription: subscription.toJSON() }, who(options));
        return global
          .fetch(url, {
            method: "POST",
            credentials: "omit",
            headers: authHeaders(options),
            body: JSON.stringify(body),
          })
          .then(function (response) {
            if (!response.ok) {
              throw new Error("Rapport refused the subscription (" + response.status + ")");
            }
            return subscription;
          });
      });
  }

  function unsubscribe(options) {
    options = options || {};
    if (!("serviceWorker" in global.navigator)) {
      return Promise.resolve(false);
    }
    return global.navigator.serviceWorker.ready
      .then(function (registration) {
        return registration.pushManager.getSubscription();
      })
      .then(function (subscription) {
        if (!subscription) {
          return false;
        }
        var endpoint = subscription.endpoint;
        return subscription.unsubscribe().then(function () {
          return global
            .fetch(options.subscribeUrl || base(options) + "/v1/push/subscriptions", {
              method: "DELETE",
              credentials: "omit",
              headers: authHeaders(options),
              body: JSON.stringify({ endpoint: endpoint }),
            })
            .then(function () {
              return true;
            });
        });
      });
  }

  global.RapportPush = { subscribe: subscribe, unsubscribe: unsubscribe };
})(self);
