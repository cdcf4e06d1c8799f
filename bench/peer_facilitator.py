"""The peer for `python -m bench.verify`: the official x402 SDK's SVM `exact` facilitator.

Runs inside `.venv-x402` (the SDK needs solana<0.40; see tests/support/x402_sdk.py) and
imports nothing from Cedros. It serves `POST /settle` on a minimal threaded HTTP/1.1
server (keep-alive, one thread per connection: the SDK facilitator is synchronous, its
RPC client solana-py's blocking `Client`). The body is `{"transaction": <base64>}`, an
exact-scheme transaction with the fee payer's slot left empty; the handler does what a
resource server asks of its facilitator: `verify`, then `settle` (which verifies again,
co-signs as fee payer, sends and waits for confirmation). The answer is the SDK's
`SettleResponse` as JSON, with `Server-Timing: verify;dur=…, settle;dur=…`.

    python bench/peer_facilitator.py --rpc URL --fee-payer BASE58 --mint MINT \
        --pay-to WALLET --amount ATOMIC [--port 0]

Prints `listening <port>` once it accepts connections; stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any

from solders.keypair import Keypair
from x402 import x402FacilitatorSync
from x402.mechanisms.svm import FacilitatorKeypairSigner
from x402.mechanisms.svm.constants import SOLANA_DEVNET_CAIP2
from x402.mechanisms.svm.exact.register import register_exact_svm_facilitator
from x402.schemas import PaymentPayload, PaymentRequirements


def build(args: argparse.Namespace) -> tuple[x402FacilitatorSync, PaymentRequirements]:
    fee_payer = Keypair.from_base58_string(args.fee_payer)
    facilitator = x402FacilitatorSync()
    register_exact_svm_facilitator(facilitator, FacilitatorKeypairSigner(fee_payer, args.rpc),
                                   networks=[SOLANA_DEVNET_CAIP2])
    requirements = PaymentRequirements(
        scheme="exact", network=SOLANA_DEVNET_CAIP2, asset=args.mint, amount=str(args.amount),
        pay_to=args.pay_to, max_timeout_seconds=300,
        extra={"feePayer": str(fee_payer.pubkey())})
    return facilitator, requirements


def handler_class(facilitator: x402FacilitatorSync,
                  requirements: PaymentRequirements) -> type[BaseHTTPRequestHandler]:
    class Settle(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            payload = PaymentPayload(x402_version=2, accepted=requirements,
                                     payload={"transaction": body["transaction"]})
            started = time.perf_counter()
            verified = facilitator.verify(payload, requirements)
            checked = time.perf_counter()
            answer: dict[str, Any]
            if verified.is_valid:
                answer = facilitator.settle(payload, requirements).model_dump(
                    by_alias=True, exclude_none=True)
            else:
                answer = {"success": False, "errorReason": verified.invalid_reason}
            done = time.perf_counter()
            data = json.dumps(answer).encode()
            self.send_response(200 if answer.get("success") else 402)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Server-Timing", f"verify;dur={(checked - started) * 1000:.3f}, "
                                              f"settle;dur={(done - checked) * 1000:.3f}")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return None  # no access log, as the Cedros server under bench

    return Settle


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rpc", required=True)
    parser.add_argument("--fee-payer", required=True, help="base58 of the 64-byte secret key")
    parser.add_argument("--mint", required=True)
    parser.add_argument("--pay-to", required=True)
    parser.add_argument("--amount", type=int, required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    facilitator, requirements = build(args)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler_class(facilitator,
                                                                         requirements))
    server.daemon_threads = True

    def stop(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    print(f"listening {server.server_address[1]}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
