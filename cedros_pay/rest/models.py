"""Request and response shapes of the REST API (specs 02, 04), as pydantic models.

Requests are parsed with these models; responses are rendered by plain functions (fast)
and described by these models for /openapi.json. tests/api/test_openapi.py validates real
responses against the models, so the two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, JsonValue, model_validator
from pydantic.config import JsonDict

from cedros_pay.core.models import WebhookStatus
from cedros_pay.resolvers.nonces import PURPOSE_ALIASES, PURPOSES
from cedros_pay.resolvers.refunds import MAX_REASON as MAX_REFUND_REASON
from cedros_pay.resolvers.webhook_admin import DEFAULT_LIMIT as DEFAULT_WEBHOOK_LIMIT
from cedros_pay.resolvers.webhook_admin import MAX_ID as MAX_WEBHOOK_ID
from cedros_pay.resolvers.webhook_admin import MAX_LIMIT as MAX_WEBHOOK_LIMIT

StrMap = dict[str, str]


class _Body(BaseModel):
    """A request body. `null` for a field means the field is absent (DESIGN §7):
    parse_body drops the null members of the top-level object before validating, which
    costs a dict check instead of a Python validator called by pydantic on every request;
    nested objects (`_NestedBody`) drop theirs with a validator."""

    # Unknown keys are ignored because the Cedros clients send extra ones. Strict: a JSON
    # string is not a number here, nor a number a boolean (what the schema says).
    model_config = ConfigDict(extra="ignore", populate_by_name=True, strict=True)


class _NestedBody(_Body):
    @model_validator(mode="before")
    @classmethod
    def _null_is_absent(cls, data: Any) -> Any:
        if isinstance(data, dict) and None in data.values():
            return {k: v for k, v in data.items() if v is not None}
        return data


# A required text field: absent is `missing_field` (parse_body); blank is left to the
# resolvers, which answer with the code spec 17 gives each field (`missing_field` for a
# quote, `invalid_cart_item` for a cart line). The schema says both: at least one
# non-space character.
# Not only whitespace, as str.strip() sees it (a wider set than ECMA-262's \s).
NOT_BLANK = r"[^\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
BASE58_KEY = r"^\s*[1-9A-HJ-NP-Za-km-z]{32,44}\s*$"
MAX_CART_ITEMS = 100  # resolvers/carts.py refuses more (and bigger quantities)
MAX_QUANTITY = 1_000_000


SOLANA_KEY: JsonDict = {"format": "solana-pubkey", "pattern": BASE58_KEY}


def required_text(max_length: int, *, alias: str | None = None, pattern: str = NOT_BLANK,
                  description: str | None = None, wallet: bool = False) -> Any:
    """A required string field whose blank value the handler refuses (400); `wallet`: a
    Solana public key (base58 of 32 bytes; anything else is `invalid_wallet`)."""
    extra: JsonDict = {"minLength": 1, "pattern": pattern, **(SOLANA_KEY if wallet else {})}
    return Field(alias=alias, max_length=max_length, description=description,
                 json_schema_extra=extra)


def integral(value: Any) -> Any:
    """A JSON integer: 3.0 is one (JSON Schema says so, and orjson reads it as a float); a
    string or a boolean is not (the models are strict). Constraints go before it in an
    Annotated (the JSON Schema shows them only then)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


# 64-bit: what every store takes; bigger is `invalid_field` (spec 17 codes go to the
# resolvers for values in range).
Integer = Annotated[int, Field(ge=-(2**63), le=2**63 - 1), BeforeValidator(integral)]


def _resolver_checked(extra: JsonDict) -> Callable[[JsonDict], None]:
    """Schema constraints the resolver enforces; the parse default is not documented
    (it would break them)."""
    def edit(schema: JsonDict) -> None:
        schema.pop("default", None)
        schema.update(extra)
    return edit


def _empty_or_between(low: int, high: int) -> Callable[[JsonDict], None]:
    """A query integer the resolver reads, where an empty value means the default."""
    def edit(schema: JsonDict) -> None:
        schema.pop("type", None)
        schema["anyOf"] = [{"type": "integer", "minimum": low, "maximum": high},
                           {"type": "string", "enum": [""]}]
    return edit


CART_ITEMS = _resolver_checked({"minItems": 1, "maxItems": MAX_CART_ITEMS})


def resolver_required(*fields: str) -> ConfigDict:
    """Fields the schema lists as required whose absence the resolver answers with its own
    spec code (a cart without `items` is `empty_cart`, a line without `resource` is
    `invalid_cart_item`, spec 17), so the model itself lets them default."""
    return ConfigDict(json_schema_extra={"required": list(fields)})


def quantity() -> Any:
    """Spec 17: zero or less means one; above MAX_QUANTITY is `invalid_cart_item`."""
    return Field(1, json_schema_extra={"maximum": MAX_QUANTITY})


class QuoteRequest(_Body):
    resource: str = required_text(255)
    coupon_code: str | None = Field(None, alias="couponCode", max_length=64)


class CartItemRequest(_NestedBody):
    model_config = resolver_required("resource")
    resource: str = Field("", max_length=255, json_schema_extra=_resolver_checked(
        {"minLength": 1, "pattern": NOT_BLANK}))
    quantity: Integer = quantity()
    metadata: StrMap = Field(default_factory=dict)


class CartQuoteRequest(_Body):
    model_config = resolver_required("items")
    items: list[CartItemRequest] = Field(default_factory=list, json_schema_extra=CART_ITEMS)
    metadata: StrMap = Field(default_factory=dict)
    coupon_code: str | None = Field(None, alias="couponCode", max_length=64)


class CouponValidateRequest(_Body):
    code: str = required_text(64)
    product_ids: list[str] = Field(default_factory=list, alias="productIds")
    payment_method: Literal["stripe", "x402", ""] | None = Field(None, alias="paymentMethod")


NONCE_PURPOSES: list[JsonValue] = [*sorted(PURPOSES | PURPOSE_ALIASES.keys())]


class NonceRequest(_Body):
    """The body is optional (spec 04): an empty one is `{}`, the wildcard purpose."""

    purpose: str = Field("", max_length=64, json_schema_extra={"enum": NONCE_PURPOSES})


class JsonRpcRequest(BaseModel):
    model_config = ConfigDict(strict=True)

    jsonrpc: Literal["2.0"]
    id: int | str | None = None
    method: str
    params: dict[str, Any] | list[Any] | None = None


# ---- responses (documentation and conformance tests) ----------------------------------


class ErrorBody(BaseModel):
    code: str
    message: str
    retryable: bool
    details: dict[str, Any]


class ErrorEnvelope(BaseModel):
    error: ErrorBody


class WalletHealthEntry(BaseModel):
    address: str
    balance: float
    status: Literal["healthy", "low", "critical"]


class HealthResponse(BaseModel):
    status: Literal["ok", "degraded", "error"]
    uptime: str
    timestamp: str
    rpcHealthy: bool
    routePrefix: str
    network: str
    features: list[str]
    walletHealth: dict[str, WalletHealthEntry]


class SolanaExtra(BaseModel):
    model_config = ConfigDict(extra="allow")
    recipientTokenAccount: str
    decimals: int
    tokenSymbol: str
    memo: str
    feePayer: str | None = None


class PaymentRequirement(BaseModel):
    scheme: str
    network: str
    maxAmountRequired: str
    resource: str
    description: str
    mimeType: str
    payTo: str
    maxTimeoutSeconds: int
    asset: str
    extra: SolanaExtra


class PaymentRequired(BaseModel):
    """The HTTP 402 body of x402 version 0."""

    x402Version: Literal[0]
    accepts: list[PaymentRequirement]


class CartLineResponse(BaseModel):
    resource: str
    quantity: int
    priceAmount: float
    originalPrice: float
    token: str
    description: str
    appliedCoupons: list[str]


class CartQuoteResponse(BaseModel):
    cartId: str
    quote: PaymentRequirement
    items: list[CartLineResponse]
    totalAmount: float
    metadata: StrMap
    expiresAt: str


class ProductEntry(BaseModel):
    id: str
    description: str
    fiatAmount: float
    effectiveFiatAmount: float
    fiatCurrency: str
    stripePriceId: str
    cryptoAmount: float
    effectiveCryptoAmount: float
    cryptoToken: str
    hasStripeCoupon: bool
    hasCryptoCoupon: bool
    stripeCouponCode: str
    cryptoCouponCode: str
    stripeDiscountPercent: float
    cryptoDiscountPercent: float
    metadata: StrMap


class CheckoutCoupon(BaseModel):
    code: str
    discountType: str
    discountValue: float
    currency: str
    description: str


class ProductsResponse(BaseModel):
    products: list[ProductEntry]
    checkoutStripeCoupons: list[CheckoutCoupon]
    checkoutCryptoCoupons: list[CheckoutCoupon]


class CouponValidationResponse(BaseModel):
    valid: bool
    code: str
    discountType: str
    discountValue: float
    scope: str
    applicableProducts: list[str]
    paymentMethod: str
    expiresAt: str | None
    remainingUses: int | None
    error: str
    errorCode: str | None = None


class NonceResponse(BaseModel):
    nonce: str
    expiresAt: int
    purpose: str


class PaymentOptions(BaseModel):
    version: str
    server: str
    resources: list[dict[str, Any]]
    payment: dict[str, Any]


class AgentCard(BaseModel):
    name: str
    version: str
    description: str
    service_endpoint: str
    capabilities: list[str]
    authentication: dict[str, Any]
    payment_methods: list[dict[str, Any]]
    metadata: dict[str, Any]


class OpenAPIDocument(BaseModel):
    model_config = ConfigDict(extra="allow")
    openapi: str
    info: dict[str, Any]
    paths: dict[str, Any]
    components: dict[str, Any]


class JsonRpcResponse(BaseModel):
    jsonrpc: Literal["2.0"]
    id: int | str | None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


class AccessGrantResponse(BaseModel):
    granted: bool
    resource: str
    resourceType: str
    wallet: str
    signature: str
    network: str
    amount: str
    token: str
    paidAt: str
    expiresAt: str


class SubscriberGrantResponse(BaseModel):
    """200 of the resource endpoint for a wallet that signs as a live subscriber."""

    granted: bool
    resource: str
    resourceType: Literal["subscription"]
    wallet: str
    subscriptionId: str
    status: str
    expiresAt: str


class TransactionQuery(_Body):
    signature: str = Field(description="The payment's transaction signature",
                           json_schema_extra={"minLength": 1, "pattern": NOT_BLANK})


class ResourceQuery(_Body):
    coupon_code: str = Field("", alias="couponCode", max_length=64)


class TransactionVerifyResponse(BaseModel):
    """Snake case on purpose (spec 02: compatibility with existing integrations)."""

    verified: bool
    resource_id: str
    wallet: str
    paid_at: str
    amount: str
    metadata: StrMap


class GaslessTransactionRequest(_Body):
    resource_id: str = required_text(255, alias="resourceId")
    user_wallet: str = required_text(64, alias="userWallet", pattern=BASE58_KEY, wallet=True)
    fee_payer: str | None = Field(None, alias="feePayer", max_length=64,
                                  json_schema_extra=SOLANA_KEY)
    coupon_code: str | None = Field(None, alias="couponCode", max_length=64)


# ---- refunds (spec 04): bodies read by rest/refunds.py, decimals kept as text ----------

DECIMAL_TEXT = r"^\s*\d+(\.\d+)?\s*$"
Amount = Annotated[float, Field(gt=0)] | Annotated[str, Field(pattern=DECIMAL_TEXT)]


class SignedBody(_Body):
    """Spec 04's body form of a signed request: `nonce` and the admin's `signature` over
    it (the X-Signer / X-Signature / X-Message headers are the other form)."""

    nonce: str | None = Field(None, max_length=64)
    signature: str | None = Field(None, max_length=128)


class RefundRequestBody(SignedBody):
    original_purchase_id: str = required_text(255, alias="originalPurchaseId")
    recipient_wallet: str = required_text(64, alias="recipientWallet", pattern=BASE58_KEY,
                                          wallet=True)
    amount: Amount
    token: str = required_text(16)
    reason: str | None = Field(None, max_length=MAX_REFUND_REASON)
    metadata: StrMap = Field(default_factory=dict)


class RefundIdBody(SignedBody):
    refund_id: str = required_text(255, alias="refundId",
                                   pattern=r"^\s*refund_[0-9a-f]{32}\s*$")


class CardRefundBody(_Body):
    original_purchase_id: str = required_text(255, alias="originalPurchaseId",
                                              pattern=r"^\s*stripe:\S",
                                              description="stripe:<checkout session id>")
    amount: Amount | None = None
    reason: str | None = Field(None, max_length=MAX_REFUND_REASON)


class RefundRequested(BaseModel):
    refundId: str
    status: str
    originalPurchaseId: str
    recipientWallet: str
    amount: float
    token: str
    reason: str
    metadata: StrMap
    createdAt: str
    message: str


class PendingRefund(BaseModel):
    id: str
    originalPurchaseId: str
    recipientWallet: str
    amount: float
    token: str
    reason: str
    status: str
    createdAt: str


class PendingRefunds(BaseModel):
    refunds: list[PendingRefund]


class RefundApproval(BaseModel):
    """x402: the quote the merchant wallet pays; a card purchase: Stripe's refund id."""

    refundId: str
    quote: dict[str, Any] | None
    expiresAt: str | None
    method: Literal["stripe"] | None = None
    status: str | None = None
    stripeRefundId: str | None = None


class RefundDenied(BaseModel):
    success: bool
    message: str


class CardRefundOpened(BaseModel):
    refundId: str
    status: str
    originalPurchaseId: str
    amount: float
    token: str
    reason: str
    createdAt: str


# ---- admin webhook queue (spec 03, issue 12) -------------------------------------------


class WebhookListQuery(_Body):
    status: str = Field("", json_schema_extra={
        "enum": ["", *(s.value for s in WebhookStatus)]})
    limit: int = Field(DEFAULT_WEBHOOK_LIMIT, json_schema_extra=_empty_or_between(
        1, MAX_WEBHOOK_LIMIT))


class WebhookIdPath(_Body):
    webhook_id: str = Field(min_length=1, max_length=MAX_WEBHOOK_ID)


class WebhookDelivery(BaseModel):
    id: str
    status: str
    eventType: str
    eventId: str
    url: str
    attempts: int
    maxAttempts: int
    lastError: str | None
    lastAttemptAt: str | None
    nextAttemptAt: str | None
    createdAt: str | None
    completedAt: str | None
    payload: Any


class WebhookDeliveries(BaseModel):
    webhooks: list[WebhookDelivery]
    count: int


class WebhookDeleted(BaseModel):
    id: str
    deleted: bool


class GaslessTransactionResponse(BaseModel):
    transaction: str  # base64, unsigned: fee payer slot 0, buyer slot 1
    feePayer: str
    blockhash: str
    lastValidBlockHeight: int
    signers: list[str]
