/*
 * Rapport web push: the service worker a site adds (serve it from the site's own origin,
 * e.g. /rapport-sw.js, and register it with rapport-push.js or your own code).
 *
 * It shows each notification Rapport sends and reports what the customer did with it:
 * "shown", "clicked" and "dismissed" are POSTed as JSON {"message_id", "event"} to the
 * report_url the message carries (no cookies, so no personal data leaves the browser
 * beyond the message id). A click opens the message's url.
 *
 * A site that already has a service worker adds this one to it instead:
 *   importScripts("/rapport-sw.js");
 */
"use strict";

function rapportReport(data, event) {
  if (!data || !data.report_url || !data.message_id) {
    return Promise.resolve();
  }
  return fetch(data.report_url, {
    method: "POST",
    mode: "cors",
    credentials: "omit",
    keepalive: true,
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ message_id: data.message_id, event: event }),
  }).catch(function () {
    // A report that cannot be sent is lost; the notification still works.
  });
}

self.addEventListener("push", function (event) {
  var data = {};
  if (event.data) {
    try {
      data = event.data.json();
    } catch (error) {
      data = { title: event.data.text() };
    }
  }
  if (!data.message_id) {
    return; // not one of Rapport's messages: leave it to the site's own handler
  }
  var options = {
    body: data.body || "",
    icon: data.icon,
    badge: data.badge,
    image: data.image,
    tag: data.tag,
    data: data,
  };
  event.waitUntil(
    self.registration
      .showNotification(data.title || "", options)
      .then(function () {
        return rapportReport(data, "shown");
      })
  );
});

self.addEventListener("notificationclick", function (event) {
  var data = event.notification.data || {};
  if (!data.message_id) {
    return;
  }
  event.notification.close();
  var work = [rapportReport(data, "clicked")];
  if (data.url) {
    work.push(
      self.clients.matchAll({ type: "window", includeUncontrolled: true }).then(function (windows) {
        for (var i = 0; i < windows.length; i += 1) {
          if (windows[i].url === data.url && "focus" in windows[i]) {
            return windows[i].focus();
          }
        }
        return self.clients.openWindow(data.url);
      })
    );
  }
  event.waitUntil(Promise.all(work));
});

self.addEventListener("notificationclose", function (event) {
  var data = event.notification.data || {};
  if (data.message_id) {
    event.waitUntil(rapportReport(data, "dismissed"));
  }
});
