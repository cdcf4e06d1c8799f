"""The catalog and quote endpoints reproduce spec 02/04's JSON field for field."""

from __future__ import annotations

import re
import time

import httpx
from api.conftest import DEVNET_USDC, MERCHANT

from cedros_pay.integrations.solana.accounts import associated_token_address

MERCHANT_ATA = associated_token_address(MERCHANT, DEVNET_USDC)

REQUIREMENT_KEYS = {"scheme", "network", "maxAmountRequired", "resource", "description",
                    "mimeType", "payTo", "maxTimeoutSeconds", "asset", "extra"}


async def test_quote_answers_402_with_the_x402_body(catalog_client: httpx.AsyncClient) -> None:
    resp = await catalog_client.post("/paywall/v1/quote", json={"resource": "p-article"})
    assert resp.status_code == 402
    assert resp.headers["cache-control"] == "no-store"
    body = resp.json()
    assert set(body) == {"x402Version", "accepts"}
    assert body["x402Version"] == 0
    [req] = body["accepts"]
    assert set(req) == REQUIREMENT_KEYS
    # 5 USDC, SAVE10 (catalog) then CHECKOUT5 (checkout): 4.275 -> rounded up to 4.28.
    assert req["maxAmountRequired"] == "4280000"
    assert req["scheme"] == "solana-spl-transfer"
    assert req["network"] == "devnet"
    assert req["resource"] == "p-article"
    assert req["description"] == "Premium article"
    assert req["mimeType"] == "application/json"
    assert req["payTo"] == MERCHANT_ATA
    assert req["asset"] == DEVNET_USDC
    assert req["maxTimeoutSeconds"] == 300
    extra = req["extra"]
    assert set(extra) == {"recipientTokenAccount", "decimals", "tokenSymbol", "memo"}
    assert extra["recipientTokenAccount"] == MERCHANT_ATA
    assert (extra["decimals"], extra["tokenSymbol"]) == (6, "USDC")
    assert re.fullmatch(r"article:p-article:[A-Za-z0-9_-]{8}", extra["memo"])


async def test_quote_with_a_manual_coupon_and_a_null_one(
    catalog_client: httpx.AsyncClient,
) -> None:
    with_fixed = await catalog_client.post(
        "/paywall/v1/quote", json={"resource": "p-article", "couponCode": "FIXED1"})
    with_null = await catalog_client.post(
        "/paywall/v1/quote", json={"resource": "p-article", "couponCode": None})
    # 4.5 after SAVE10; checkout: 5% then $1 off -> 3.275 -> 3.28.
    assert with_fixed.json()["accepts"][0]["maxAmountRequired"] == "3280000"
    assert with_null.json()["accepts"][0]["maxAmountRequired"] == "4280000"


async def test_quote_memo_nonce_is_fresh_and_default_template_applies(
    catalog_client: httpx.AsyncClient,
) -> None:
    async def memo(resource: str) -> str:
        resp = await catalog_client.post("/paywall/v1/quote", json={"resource": resource})
        return str(resp.json()["accepts"][0]["extra"]["memo"])

    assert len({await memo("p-article") for _ in range(3)}) == 3
    assert await memo("p-video") == "Payment for p-video"  # spec 16's default template


async def test_cart_quote_has_the_spec_shape(catalog_client: httpx.AsyncClient) -> None:
    resp = await catalog_client.post("/paywall/v1/cart/quote", json={
        "items": [{"resource": "p-article", "quantity": 2},
                  {"resource": "p-video", "quantity": 0, "metadata": {"seat": "1"}}],
        "metadata": {"order": "42"},
    })
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert set(body) == {"cartId", "quote", "items", "totalAmount", "metadata", "expiresAt"}
    assert re.fullmatch(r"cart_[0-9a-f]{32}", body["cartId"])
    assert set(body["quote"]) == REQUIREMENT_KEYS
    assert body["quote"]["resource"] == f"cart:{body['cartId']}"
    assert body["quote"]["maxTimeoutSeconds"] == 900
    article, video = body["items"]
    assert set(article) == {"resource", "quantity", "priceAmount", "originalPrice", "token",
                            "description", "appliedCoupons"}
    assert (article["priceAmount"], article["originalPrice"], article["appliedCoupons"]) == (
        4.5, 5.0, ["SAVE10"])
    assert (video["quantity"], video["priceAmount"]) == (1, 2.5)  # quantity 0 -> 1
    # (2 x 4.5 + 2.5) = 11.5, CHECKOUT5 -> 10.925 -> 10.93
    assert body["totalAmount"] == 10.93
    assert body["quote"]["maxAmountRequired"] == "10930000"
    assert body["quote"]["description"] == "Cart purchase (10.93 USDC)"
    assert body["metadata"] == {
        "order": "42", "coupon_codes": "SAVE10,CHECKOUT5", "catalog_coupons": "SAVE10",
        "checkout_coupons": "CHECKOUT5", "original_amount": "12500000",
        "discounted_amount": "10930000", "item_count": "2", "total_quantity": "3"}
    assert body["expiresAt"].endswith("Z")


async def test_products_list_has_the_spec_shape(catalog_client: httpx.AsyncClient) -> None:
    resp = await catalog_client.get("/paywall/v1/products")
    assert resp.status_code == 200
    body = resp.json()
    assert set(body) == {"products", "checkoutStripeCoupons", "checkoutCryptoCoupons"}
    by_id = {p["id"]: p for p in body["products"]}
    assert set(by_id) == {"p-article", "p-video", "p-stripe-only"}
    article = by_id["p-article"]
    assert set(article) == {
        "id", "description", "fiatAmount", "effectiveFiatAmount", "fiatCurrency",
        "stripePriceId", "cryptoAmount", "effectiveCryptoAmount", "cryptoToken",
        "hasStripeCoupon", "hasCryptoCoupon", "stripeCouponCode", "cryptoCouponCode",
        "stripeDiscountPercent", "cryptoDiscountPercent", "metadata"}
    assert (article["fiatAmount"], article["effectiveFiatAmount"]) == (5.0, 4.5)
    assert (article["cryptoAmount"], article["effectiveCryptoAmount"]) == (5.0, 4.5)
    assert (article["cryptoCouponCode"], article["cryptoDiscountPercent"]) == ("SAVE10", 10.0)
    assert article["hasCryptoCoupon"] is True
    assert by_id["p-stripe-only"]["stripePriceId"] == "price_card_only"
    [checkout] = body["checkoutCryptoCoupons"]
    assert set(checkout) == {"code", "discountType", "discountValue", "currency", "description"}
    assert (checkout["code"], checkout["discountValue"]) == ("CHECKOUT5", 5.0)


async def test_coupon_validation_valid_and_invalid(catalog_client: httpx.AsyncClient) -> None:
    ok = (await catalog_client.post("/paywall/v1/coupons/validate",
                                    json={"code": "SAVE10", "productIds": ["p-article"]})).json()
    assert set(ok) >= {"valid", "code", "discountType", "discountValue", "scope",
                       "applicableProducts", "paymentMethod", "expiresAt", "remainingUses",
                       "error"}
    assert (ok["valid"], ok["discountType"], ok["discountValue"], ok["scope"]) == (
        True, "percentage", 10.0, "specific")
    assert ok["applicableProducts"] == ["p-article"]
    assert ok["remainingUses"] is None
    expired = await catalog_client.post("/paywall/v1/coupons/validate", json={"code": "OLD"})
    assert expired.status_code == 200
    assert (expired.json()["valid"], expired.json()["errorCode"]) == (False, "coupon_expired")
    assert expired.json()["error"]
    unknown = (await catalog_client.post("/paywall/v1/coupons/validate",
                                         json={"code": "NOPE"})).json()
    assert (unknown["valid"], unknown["errorCode"]) == (False, "coupon_not_found")


async def test_nonce_is_issued_with_integer_expiry(catalog_client: httpx.AsyncClient) -> None:
    resp = await catalog_client.post("/paywall/v1/nonce", json={"purpose": "refund_list"})
    assert resp.status_code == 200
    body = resp.json()
    assert set(body) == {"nonce", "expiresAt", "purpose"}
    assert re.fullmatch(r"[0-9a-f]{32}", body["nonce"])
    assert isinstance(body["expiresAt"], int)
    assert abs(body["expiresAt"] - (time.time() + 300)) < 10
    assert body["purpose"] == "refund_list"
    empty = (await catalog_client.post("/paywall/v1/nonce", content=b"")).json()
    assert empty["purpose"] == ""


async def test_payment_options_advertise_the_resource_endpoints(
    catalog_client: httpx.AsyncClient,
) -> None:
    body = (await catalog_client.get("/.well-known/payment-options")).json()
    assert (body["version"], body["server"]) == ("1.0", "cedros-pay")
    article = next(r for r in body["resources"] if r["id"] == "p-article")
    assert set(article) == {"id", "name", "description", "endpoint", "price", "metadata"}
    assert article["endpoint"] == "/paywall/p-article"
    assert article["name"] == "Premium Article"
    assert article["price"] == {"fiat": {"amount": 4.5, "currency": "USD"},
                                "crypto": {"amount": 4.5, "token": "USDC"}}
    assert body["payment"] == {"methods": ["x402-solana-spl-transfer"], "x402": {
        "network": "devnet", "paymentAddress": MERCHANT, "tokenMint": DEVNET_USDC}}


async def test_agent_card(catalog_client: httpx.AsyncClient) -> None:
    body = (await catalog_client.get("/.well-known/agent.json")).json()
    assert set(body) == {"name", "version", "description", "service_endpoint", "capabilities",
                         "authentication", "payment_methods", "metadata"}
    assert body["service_endpoint"] == "http://testserver"
    assert body["authentication"] == {"type": "hybrid",
                                      "schemes": ["x402", "stripe-session", "none"]}
    assert body["metadata"]["discovery_rfc8615"] == "/.well-known/payment-options"
    assert body["payment_methods"][0]["protocol"] == "x402-solana-spl-transfer"


async def test_mcp_resources_list_and_its_errors(catalog_client: httpx.AsyncClient) -> None:
    ok = (await catalog_client.post("/resources/list", json={
        "jsonrpc": "2.0", "id": 1, "method": "resources/list", "params": {}})).json()
    assert ok["jsonrpc"] == "2.0" and ok["id"] == 1
    uris = {r["uri"] for r in ok["result"]["resources"]}
    assert "cedros-pay://paywall/p-article" in uris
    assert set(ok["result"]["resources"][0]) == {"uri", "name", "description", "mimeType"}
    unknown = (await catalog_client.post("/resources/list", json={
        "jsonrpc": "2.0", "id": 7, "method": "tools/call"})).json()
    assert unknown == {"jsonrpc": "2.0", "id": 7,
                       "error": {"code": -32601, "message": "Method not found", "data": None}}
    garbage = (await catalog_client.post("/resources/list", content=b"{nope")).json()
    assert garbage["error"]["code"] == -32700 and garbage["id"] is None
    not_rpc = (await catalog_client.post("/resources/list", json={"id": 3,
                                                                  "method": "x"})).json()
    assert not_rpc["error"]["code"] == -32600 and not_rpc["id"] == 3
