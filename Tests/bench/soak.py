#!/usr/bin/env python3
"""make soak: the attacks of issue 14 against a release `berth serve` on loopback, each while a
"normal" client (the apiserver's part) sends AdmissionReviews, and what that client saw.

Attacks (each bounded in time and count, loopback only, stops by itself):
  handshake-flood  new TLS connections as fast as two processes can open them (X25519 handshakes)
  ffdhe-flood      four loops of `openssl s_client -groups ffdhe8192` (the costliest key exchange)
  idle-flood       4,300 idle TLS connections to the webhook port and 4,300 to the metrics port,
                   from 127.0.0.2 (another client address than the normal client's 127.0.0.1)
  slow-readers     40 clients each sending a 3 MiB review and never reading the answer
  sigterm          64 keep-alive connections sending reviews back to back; SIGTERM mid-way

For each: the normal client's requests answered (%), its p50/p99 latency, Berth's peak resident
memory during the attack and after it (RSS from /proc). Usage:
  soak.py BERTH_BINARY [--seconds 10]
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import resource
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REVIEW_PATH = os.path.join(REPO, "Tests/Fixtures/admission/z2jh-gpu-notebook.review.json")


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Berth:
    def __init__(self, binary: str, work: str, extra: list[str] | None = None):
        self.work = work
        self.port, self.metrics = free_port(), free_port()
        self.process = subprocess.Popen(
            [binary, "serve", "--provisioner=false", "--tls-cert-file", f"{work}/tls.crt", "--tls-private-key-file", f"{work}/tls.key",
             "--bind-address", "127.0.0.1", "--port", str(self.port), "--metrics-port", str(self.metrics), "--log-level", "warning",
             *(extra or [])],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.metrics), timeout=1) as s:
                    s.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    if s.recv(64).startswith(b"HTTP/1.1 200"):
                        return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("soak: berth serve did not become ready")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tls_context(work: str) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=f"{work}/tls.crt")


def normal_client(port: int, work: str, seconds: float, results, new_connection_every: int = 10) -> None:
    """The apiserver's part: reviews over a kept-alive connection, a new connection every tenth."""
    body = open(REVIEW_PATH, "rb").read()
    context = tls_context(work)
    latencies, failures, conn, sent = [], 0, None, 0
    end = time.time() + seconds
    while time.time() < end:
        started = time.perf_counter()
        try:
            if conn is None or sent % new_connection_every == 0:
                if conn is not None:
                    conn.close()
                conn = http.client.HTTPSConnection("localhost", port, context=context, timeout=10,
                                                   source_address=("127.0.0.1", 0))
            conn.request("POST", "/mutate", body=body, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"status {response.status}")
            latencies.append(time.perf_counter() - started)
        except Exception:
            failures += 1
            if conn is not None:
                conn.close()
            conn = None
        sent += 1
        time.sleep(0.005)  # ~150 reviews/s: a busy cluster's pod creations, not a benchmark
    results.put({"answered": len(latencies), "failed": failures, "latencies": latencies})


def handshake_flood(port: int, seconds: float) -> None:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    end = time.time() + seconds
    while time.time() < end:
        try:
            s = socket.socket()
            s.settimeout(5)
            s.bind(("127.0.0.2", 0))
            s.connect(("127.0.0.1", port))
            context.wrap_socket(s, server_hostname="localhost").close()
        except OSError:
            pass


def ffdhe_flood(port: int, seconds: float) -> None:
    end = time.time() + seconds
    while time.time() < end:
        subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-tls1_3", "-groups", "ffdhe8192"],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)


def idle_flood(port: int, count: int, seconds: float, use_tls: bool, ready) -> None:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    held = []
    for _ in range(count):
        try:
            s = socket.socket()
            s.settimeout(5)
            s.bind(("127.0.0.2", 0))
            s.connect(("127.0.0.1", port))
            held.append(context.wrap_socket(s, server_hostname="localhost") if use_tls else s)
        except OSError:
            pass
    ready.put(len(held))
    time.sleep(seconds)
    for s in held:
        s.close()


def slow_reader(port: int, body: bytes, seconds: float) -> None:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        s = socket.socket()
        s.settimeout(seconds + 10)
        s.bind(("127.0.0.2", 0))
        s.connect(("127.0.0.1", port))
        t = context.wrap_socket(s, server_hostname="localhost")
        head = b"POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
        t.sendall(head + body)
        time.sleep(seconds)  # never reads the answer
        t.close()
    except OSError:
        pass


def big_review() -> bytes:
    """A 3 MiB review: the z2jh pod with a long annotation, within the apiserver's 3 MiB."""
    review = json.load(open(REVIEW_PATH))
    review["request"]["object"]["metadata"].setdefault("annotations", {})["soak/padding"] = "x" * (3 * 1024 * 1024 - 8192)
    return json.dumps(review).encode()


def measure(name: str, berth: Berth, work: str, seconds: float, attack) -> dict:
    results = multiprocessing.Queue()
    peak = [rss_kib(berth.process.pid)]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            try:
                peak[0] = max(peak[0], rss_kib(berth.process.pid))
            except OSError:
                return
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    attackers = attack()
    client = multiprocessing.Process(target=normal_client, args=(berth.port, work, seconds, results))
    client.start()
    outcome = results.get()
    client.join()
    for process in attackers:
        process.join(timeout=seconds + 30)
        if process.is_alive():
            process.kill()
    time.sleep(2)  # the idle loop trims the heap; RSS "after" is read once the attack has ended
    stop.set()
    sampler.join()
    latencies = sorted(outcome["latencies"]) or [float("nan")]
    total = outcome["answered"] + outcome["failed"]
    row = {
        "attack": name,
        "answered": f"{outcome['answered']}/{total}",
        "answeredPercent": round(100 * outcome["answered"] / max(1, total), 2),
        "p50ms": round(1000 * statistics.median(latencies), 2),
        "p99ms": round(1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 2),
        "rssPeakMiB": round(peak[0] / 1024, 1),
        "rssAfterMiB": round(rss_kib(berth.process.pid) / 1024, 1),
    }
    print(json.dumps(row), flush=True)
    return row


def sigterm_under_load(binary: str, work: str, delay: bool = True) -> dict:
    berth = Berth(binary, work, ["--shutdown-delay", "2"] if delay else [])
    body = open(REVIEW_PATH, "rb").read()
    context = tls_context(work)
    lock = threading.Lock()
    stats = {"answered": 0, "lost": 0}

    def worker():
        conn = None
        deadline = time.time() + 30
        while time.time() < deadline:
            if conn is None:
                conn = http.client.HTTPSConnection("localhost", berth.port, context=context, timeout=20)
                try:
                    conn.connect()
                except OSError:
                    return
            try:
                conn.request("POST", "/mutate", body=body, headers={"Content-Type": "application/json"})
                response = conn.getresponse()
                response.read()
            except Exception:
                with lock:
                    stats["lost"] += 1
                conn.close()
                conn = None
                continue
            with lock:
                stats["answered"] += 1
            if response.will_close:
                conn.close()
                conn = None

    threads = [threading.Thread(target=worker) for _ in range(64)]
    for thread in threads:
        thread.start()
    time.sleep(3)
    berth.process.send_signal(signal.SIGTERM)
    for thread in threads:
        thread.join()
    status = berth.process.wait(timeout=60)
    row = {"attack": "sigterm", "answered": stats["answered"], "lost": stats["lost"], "exit": status}
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("binary")
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    with tempfile.TemporaryDirectory() as work:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
                        "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                        "-keyout", f"{work}/tls.key", "-out", f"{work}/tls.crt"], check=True, capture_output=True)
        rows = []
        berth = Berth(args.binary, work)
        idle_rss = round(rss_kib(berth.process.pid) / 1024, 1)
        print(json.dumps({"attack": "none (idle server)", "rssMiB": idle_rss}), flush=True)
        rows.append(measure("none", berth, work, args.seconds, lambda: []))

        def flood():
            processes = [multiprocessing.Process(target=handshake_flood, args=(berth.port, args.seconds)) for _ in range(2)]
            for p in processes:
                p.start()
            return processes
        rows.append(measure("handshake-flood", berth, work, args.seconds, flood))

        def ffdhe():
            processes = [multiprocessing.Process(target=ffdhe_flood, args=(berth.port, args.seconds)) for _ in range(4)]
            for p in processes:
                p.start()
            return processes
        rows.append(measure("ffdhe-flood", berth, work, args.seconds, ffdhe))

        def idle():
            ready = multiprocessing.Queue()
            processes = [multiprocessing.Process(target=idle_flood, args=(port, 4300, args.seconds + 5, tls, ready))
                         for port, tls in ((berth.port, True), (berth.metrics, False))]
            for p in processes:
                p.start()
            held = [ready.get(timeout=120) for _ in processes]
            print(json.dumps({"idle connections held (webhook, metrics)": held}), flush=True)
            return processes
        rows.append(measure("idle-flood", berth, work, args.seconds, idle))
        probes = []
        for _ in range(5):  # the liveness probe on the metrics port, right after the idle flood
            with socket.create_connection(("127.0.0.1", berth.metrics), timeout=5) as s:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                probes.append(s.recv(64).split(b"\r\n")[0].decode())
        print(json.dumps({"metrics /healthz after the idle flood": probes}), flush=True)

        body = big_review()

        def slow():
            processes = [multiprocessing.Process(target=slow_reader, args=(berth.port, body, args.seconds)) for _ in range(40)]
            for p in processes:
                p.start()
            return processes
        rows.append(measure("slow-readers-3MiB", berth, work, args.seconds, slow))
        berth.stop()
        help_text = subprocess.run([args.binary, "serve", "--help"], capture_output=True, text=True).stdout
        if "--shutdown-delay" in help_text:
            rows.append(sigterm_under_load(args.binary, work))
        else:  # an older berth (for a before/after comparison): SIGTERM without a delay
            rows.append(sigterm_under_load(args.binary, work, delay=False))
    print("soak: done", flush=True)


if __name__ == "__main__":
    main()
