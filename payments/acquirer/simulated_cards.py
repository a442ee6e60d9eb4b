"""The simulated bank's cards (docs/simulated-bank.md): issuers by BIN, brands by leading digits, the test
card numbers and the behaviour each one has, and the one credit limit every card shares."""

from __future__ import annotations

# --- Issuers and brands ----------------------------------------------------------------------------------
# The BIN numbers are invented for the simulation: they do not belong to these banks in real life.
ISSUER_BINS: dict[str, str] = {
    # Indonesian issuers
    "411111": "BCA",
    "455601": "BCA",
    "356801": "BCA",
    "555555": "Bank Mandiri",
    "421301": "Bank Mandiri",
    "436501": "BNI",
    "377701": "BNI",
    "445201": "BRI",
    "526601": "BRI",
    "451101": "CIMB Niaga",
    "541201": "CIMB Niaga",
    "462201": "Danamon",
    "470001": "Permata",
    "478801": "OCBC NISP",
    "484401": "Maybank Indonesia",
    "489901": "Panin",
    # International issuers
    "400501": "Citibank",
    "371101": "Citibank",
    "405501": "HSBC",
    "543101": "HSBC",
    "414701": "DBS",
    "426601": "Chase",
    "493301": "Barclays",
    "222301": "Barclays",
}
UNKNOWN_ISSUER = "Unknown issuer"


def issuer_for(pan: str) -> str:
    """The issuer of a card number (or of a BIN) from the simulation's BIN table."""
    return ISSUER_BINS.get(pan[:6], UNKNOWN_ISSUER)


def brand_for(pan: str) -> str:
    """The card scheme from the leading digits; "Unknown" for schemes the simulation does not model."""
    if pan.startswith("4"):
        return "Visa"
    if pan[:2] in {"34", "37"}:
        return "American Express"
    if pan[:2] == "35":
        return "JCB"
    if pan[:2] in {"51", "52", "53", "54", "55"} or 2221 <= int(pan[:4] or 0) <= 2720:
        return "Mastercard"
    return "Unknown"


# --- Behaviours of the deterministic test cards ---------------------------------------------------------
APPROVE = "approve"
DECLINE_05 = "decline_05"
INVALID_14 = "invalid_14"
INSUFFICIENT_51 = "insufficient_51"
EXPIRED_54 = "expired_54"
ISSUER_UNAVAILABLE_91 = "issuer_unavailable_91"
MALFUNCTION_96 = "malfunction_96"
TIMEOUT = "timeout"  # never answers: AcquirerTimeout, nothing recorded
TIMEOUT_AFTER_PROCESSING = "timeout_after_processing"  # approves and records, then AcquirerTimeout

# Declining behaviours and the bank's answer for them.
DECLINES: dict[str, tuple[str, str]] = {
    DECLINE_05: ("05", "Do not honor"),
    INVALID_14: ("14", "Invalid card number"),
    INSUFFICIENT_51: ("51", "Insufficient funds"),
    EXPIRED_54: ("54", "Expired card"),
    ISSUER_UNAVAILABLE_91: ("91", "Issuer unavailable"),
    MALFUNCTION_96: ("96", "System malfunction"),
}

# Every number is Luhn-valid; its issuer comes from ISSUER_BINS. Any other Luhn-valid number approves.
# Keep docs/simulated-bank.md in step with this table.
TEST_CARDS: dict[str, str] = {
    "4111111111111111": APPROVE,  # BCA, Visa
    "5555555555554444": APPROVE,  # Bank Mandiri, Mastercard
    "4365010000000000": APPROVE,  # BNI, Visa
    "5266010000000007": APPROVE,  # BRI, Mastercard
    "4005010000000006": APPROVE,  # Citibank, Visa
    "2223010000000006": APPROVE,  # Barclays, Mastercard (2-series)
    "3568010000000007": APPROVE,  # BCA, JCB
    "377701000000008": APPROVE,  # BNI, American Express (4-digit CVV)
    "4511010000000052": DECLINE_05,  # CIMB Niaga, Visa
    "5412010000000059": DECLINE_05,  # CIMB Niaga, Mastercard
    "4700010000000145": INVALID_14,  # Permata, Visa
    "4622010000000512": INSUFFICIENT_51,  # Danamon, Visa
    "5431010000000510": INSUFFICIENT_51,  # HSBC, Mastercard
    "4788010000000546": EXPIRED_54,  # OCBC NISP, Visa
    "4844010000000910": ISSUER_UNAVAILABLE_91,  # Maybank Indonesia, Visa
    "4899010000000963": MALFUNCTION_96,  # Panin, Visa
    "4147010000000989": TIMEOUT,  # DBS, Visa
    "4266010000000992": TIMEOUT_AFTER_PROCESSING,  # Chase, Visa
}

# Above this, an otherwise approving card answers 51: a simple "credit limit" every card shares.
MAX_APPROVED_AMOUNT = 50_000_000
