"""Channel transports: sends per second from one thread to a local HTTP receiver standing
in for each provider (Twilio, Vonage, a Standard Webhooks receiver, a push service).

What is measured is Rapport's side of a send: building and signing the request (a
Vonage JWT is not used here: Basic auth), the HTTP round trip over a kept-alive
connection on the loopback, and reading the answer; web push adds the per-message
ECDH + AES-GCM encryption and the VAPID signature. BENCH_TRANSPORT_SENDS (default 2,000)
sets how many sends per transport."""

import base64
import json
import os
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import django

SENDS = int(os.environ.get("BENCH_TRANSPORT_SENDS", "2000"))


class _Provider(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    ANSWER = json.dumps({"sid": "SM1", "status": "queued", "message_uuid": "u1"}).encode()

    def log_message(self, *args):
        pass

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.ANSWER)))
        self.end_headers()
        self.wfile.write(self.ANSWER)


def run() -> dict:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rapport.settings")
    django.setup()
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from rapport.channels.transports import get_transport, webpush

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Provider)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"

    browser_key = ec.generate_private_key(ec.SECP256R1())
    p256dh = browser_key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    vapid = webpush.vapid_keys_generate()
    cases = {
        "twilio": (
            "+79161234567",
            {"text": "Ваш заказ в пути"},
            {"account_sid": "AC1", "auth_token": "t", "from": "+15005550006", "base_url": url},
        ),
        "vonage": (
            "+79161234567",
            {"text": "Ваш заказ в пути"},
            {"api_key": "k", "api_secret": "s", "from": "Rapport", "base_url": url},
        ),
        "webhook": (
            url + "/hooks",
            {"type": "message.sent", "data": {"profile_id": "p1"}},
            {"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "allow_private_addresses": True},
        ),
        "webpush": (
            json.dumps(
                {
                    "endpoint": url + "/push",
                    "keys": {"p256dh": b64(p256dh), "auth": b64(os.urandom(16))},
                }
            ),
            {"title": "Скидка", "body": "Только сегодня"},
            {
                "vapid_private_key": vapid.private_key,
                "vapid_subject": "mailto:ops@example.com",
                "allow_private_addresses": True,
            },
        ),
    }
    figures: dict = {"sends": SENDS}
    try:
        for name, (to, content, config) in cases.items():
            transport = get_transport(name)
            transport.send(message_id="warm-up", to=to, content=content, config=config)
            started = time.perf_counter()
            for i in range(SENDS):
                transport.send(message_id=f"m{i}", to=to, content=content, config=config)
            elapsed = time.perf_counter() - started
            figures[f"{name}_sends_per_s"] = round(SENDS / elapsed)
            figures[f"{name}_ms_per_send"] = round(elapsed / SENDS * 1000, 3)
    finally:
        server.shutdown()
        server.server_close()
    return figures
