/*
 * Rapport web push, the page's half: asks the customer's permission, subscribes the
 * browser with the workspace's VAPID public key and posts the subscription to Rapport.
 *
 *   <script src="/static/channels/rapport-push.js"></script>
 *   RapportPush.subscribe({
 *     serviceWorker: "/rapport-sw.js",        // served from the site's own origin
 *     publicKey: "BPx…",                       // the workspace's VAPID public key
 *     subscribeUrl: "https://rapport.example/api/v1/push/subscriptions",
 *     headers: { Authorization: "Bearer <source write key>" },
 *     extra: { user_id: "42" },                // who this browser belongs to
 *   }).then(function (subscription) { … });
 *
 * Call it from a click (browsers ask for permission only after a user gesture).
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

  function subscribe(options) {
    if (!("serviceWorker" in global.navigator) || !("PushManager" in global)) {
      return Promise.reject(new Error("This browser has no web push"));
    }
    return global.Notification.requestPermission()
      .then(function (permission) {
        if (permission !== "granted") {
          throw new Error("Notifications were not allowed");
        }
        return global.navigator.serviceWorker.register(options.serviceWorker || "/rapport-sw.js");
      })
      .then(function () {
        return global.navigator.serviceWorker.ready;
      })
      .then(function (registration) {
        return registration.pushManager.subscribe({
          userVisibleOnly: true,
          applicationServerKey: keyBytes(options.publicKey),
        });
      })
      .then(function (subscription) {
        var body = Object.assign({ subscription: subscription.toJSON() }, options.extra || {});
        return global
          .fetch(options.subscribeUrl, {
            method: "POST",
            credentials: "omit",
            headers: Object.assign({ "Content-Type": "application/json" }, options.headers || {}),
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

  global.RapportPush = { subscribe: subscribe };
})(self);
