"""POST /paywall/v1/gasless-transaction (spec 02): parse, build, render."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from cedros_pay.core.errors import ErrorCode
from cedros_pay.resolvers.gasless import GaslessInput
from cedros_pay.rest.context import services, tenant
from cedros_pay.rest.endpoint import COUPON_ERRORS, endpoint
from cedros_pay.rest.models import (
    GaslessTransactionRequest,
    GaslessTransactionResponse,
)
from cedros_pay.rest.parsing import parse_body
from cedros_pay.rest.responses import spec_json


@endpoint("Build a gasless payment transaction", tag="payments",
          request=GaslessTransactionRequest,
          responses={200: GaslessTransactionResponse},
          errors=(ErrorCode.INVALID_RESOURCE, ErrorCode.INVALID_WALLET,
                  ErrorCode.RESOURCE_NOT_FOUND, ErrorCode.PRODUCT_NOT_FOUND,
                  ErrorCode.CART_NOT_FOUND, ErrorCode.CART_ALREADY_PAID, *COUPON_ERRORS,
                  ErrorCode.RPC_ERROR, ErrorCode.NETWORK_ERROR,
                  ErrorCode.SERVER_INSUFFICIENT_FUNDS),
          description="A server wallet pays the network fee. The buyer signs the returned "
                      "transaction as transfer authority and sends it to /verify in the "
                      "X-PAYMENT header with payload.feePayer; the server co-signs there. "
                      "With a couponCode, send it again in payload.metadata.couponCode so "
                      "/verify prices the payment the same way.")
async def gasless_transaction(request: Request) -> Response:
    body = await parse_body(request, GaslessTransactionRequest)
    built = await services(request).gasless.build(tenant(request), GaslessInput(
        resource_id=body.resource_id.strip(), user_wallet=body.user_wallet.strip(),
        fee_payer=(body.fee_payer or "").strip() or None, coupon_code=body.coupon_code))
    return spec_json({
        "transaction": built.transaction, "feePayer": built.fee_payer,
        "blockhash": built.blockhash, "lastValidBlockHeight": built.last_valid_block_height,
        "signers": list(built.signers),
    })
