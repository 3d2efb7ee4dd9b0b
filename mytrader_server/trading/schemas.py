"""Request and response shapes. Money and quantities are decimal strings; inputs are bounded."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

MAX_QTY = Decimal("1000000000")
MAX_PRICE = Decimal("10000000")
MAX_DECIMALS = 8


def _parse_decimal(value: object) -> Decimal:
    """Accept a JSON string or number; refuse NaN, infinities, huge or over-precise values."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float, Decimal)):
        raise ValueError("must be a decimal number or a string holding one")
    text = str(value).strip() if not isinstance(value, float) else repr(value)
    if len(text) > 40:
        raise ValueError("too many digits")
    try:
        dec = Decimal(text)
    except InvalidOperation:
        raise ValueError("not a decimal number") from None
    if not dec.is_finite():
        raise ValueError("must be finite")
    exponent = dec.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -MAX_DECIMALS:
        raise ValueError(f"at most {MAX_DECIMALS} decimal places")
    return dec


DecimalIn = Annotated[Decimal, BeforeValidator(_parse_decimal)]


def refuse_nul(value: object) -> object:
    """U+0000 is never valid text here, and PostgreSQL cannot store it (SQLite can): refuse it
    in validation, so both back ends answer the client's mistake with the same 422."""
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("must not contain a NUL character (U+0000)")
    return value


NoNul = BeforeValidator(refuse_nul)


class OrderRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    symbol: Annotated[str, NoNul] = Field(min_length=1, max_length=16)
    qty: DecimalIn
    side: Literal["buy", "sell"]
    type: Literal["market", "limit"] = "market"
    time_in_force: Literal["day", "gtc", "ioc"] = "day"
    limit_price: DecimalIn | None = None
    client_order_id: Annotated[str | None, NoNul] = Field(
        default=None, min_length=1, max_length=48, pattern=r"^[A-Za-z0-9._:\-]+$"
    )

    @field_validator("qty")
    @classmethod
    def _qty_bounds(cls, v: Decimal) -> Decimal:
        if v <= 0 or v > MAX_QTY:
            raise ValueError(f"must be greater than 0 and at most {MAX_QTY}")
        return v

    @field_validator("limit_price")
    @classmethod
    def _price_bounds(cls, v: Decimal | None) -> Decimal | None:
        if v is not None and (v <= 0 or v > MAX_PRICE):
            raise ValueError(f"must be greater than 0 and at most {MAX_PRICE}")
        return v

    @model_validator(mode="after")
    def _limit_needs_price(self) -> OrderRequest:
        if self.type == "limit" and self.limit_price is None:
            raise ValueError("limit_price is required for limit orders")
        if self.type == "market" and self.limit_price is not None:
            raise ValueError("limit_price is only allowed on limit orders")
        return self

    def fingerprint(self) -> str:
        """What makes two submissions with one client_order_id "the same body"."""
        import hashlib

        parts = [
            self.symbol.upper(),
            format(self.qty.normalize(), "f"),
            self.side,
            self.type,
            self.time_in_force,
            "" if self.limit_price is None else format(self.limit_price.normalize(), "f"),
        ]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()


class Credentials(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    username: Annotated[str, NoNul] = Field(
        min_length=3, max_length=64, pattern=r"^[A-Za-z0-9_.@\-]+$"
    )
    password: Annotated[str, NoNul] = Field(min_length=8, max_length=4096)


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # the username is looked up in the database; a password is only ever hashed, and one set
    # before NUL was refused at registration must still work
    username: Annotated[str, NoNul] = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=4096)
