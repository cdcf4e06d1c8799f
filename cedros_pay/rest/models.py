"""Request and response shapes of the REST API (specs 02, 04), as pydantic models.

Requests are parsed with these models; responses are rendered by plain functions (fast)
and described by these models for /openapi.json. tests/api/test_openapi.py validates real
responses against the models, so the two cannot drift apart.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

StrMap = dict[str, str]


class _Body(BaseModel):
    """A request body. `null` for a field means the field is absent (DESIGN §7):
    parse_body drops the null members of the top-level object before validating, which
    costs a dict check instead of a Python validator called by pydantic on every request;
    nested objects (`_NestedBody`) drop theirs with a validator."""

    # Unknown keys are ignored because the Cedros clients send extra ones.
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class _NestedBody(_Body):
    @model_validator(mode="before")
    @classmethod
    def _null_is_absent(cls, data: Any) -> Any:
        if isinstance(data, dict) and None in data.values():
            return {k: v for k, v in data.items() if v is not None}
        return data


# Empty required strings are left to the resolvers, which answer with the code spec 17
# gives each field (`missing_field` for a quote, `invalid_cart_item` for a cart line).


class QuoteRequest(_Body):
    resource: str = Field("", max_length=255)
    coupon_code: str | None = Field(None, alias="couponCode", max_length=64)


class CartItemRequest(_NestedBody):
    resource: str = Field("", max_length=255)
    quantity: int = 1
    metadata: StrMap = Field(default_factory=dict)


class CartQuoteRequest(_Body):
    items: list[CartItemRequest] = Field(default_factory=list)
    metadata: StrMap = Field(default_factory=dict)
    coupon_code: str | None = Field(None, alias="couponCode", max_length=64)


class CouponValidateRequest(_Body):
    code: str = Field("", max_length=64)
    product_ids: list[str] = Field(default_factory=list, alias="productIds")
    payment_method: Literal["stripe", "x402", ""] | None = Field(None, alias="paymentMethod")


class NonceRequest(_Body):
    purpose: str = Field("", max_length=64)


class JsonRpcRequest(BaseModel):
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


class TransactionVerifyResponse(BaseModel):
    """Snake case on purpose (spec 02: compatibility with existing integrations)."""

    verified: bool
    resource_id: str
    wallet: str
    paid_at: str
    amount: str
    metadata: StrMap


class GaslessTransactionRequest(_Body):
    resource_id: str = Field("", alias="resourceId", max_length=255)
    user_wallet: str = Field("", alias="userWallet", max_length=64)
    fee_payer: str | None = Field(None, alias="feePayer", max_length=64)
    coupon_code: str | None = Field(None, alias="couponCode", max_length=64)


class GaslessTransactionResponse(BaseModel):
    transaction: str  # base64, unsigned: fee payer slot 0, buyer slot 1
    feePayer: str
    blockhash: str
    lastValidBlockHeight: int
    signers: list[str]
