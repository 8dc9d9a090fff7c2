# The web server's messages about money (web/notify.py).
web-topup-credited =
    ✅ Your balance was topped up by { $amount } ₽.
    Balance now: { $balance } ₽.
web-payment-canceled =
    ❌ The payment of { $amount } ₽ did not go through: { $reason }
    Your balance has not changed. Top up again: /balance
web-payment-refunded =
    ↩️ A refund of { $amount } ₽ to your card was made: this amount was taken from your balance.
    Balance now: { $balance } ₽.
web-payment-refunded-debt =
    ↩️ A refund of { $amount } ₽ to your card was made: this amount was taken from your balance.
    Part of the money had already been spent, so your balance is negative: { $balance } ₽. Paid operations become available again after a top-up.

web-payment-refunded-stars =
    ↩️ The Stars of your payment went back to you in Telegram, and { $amount } ₽ were taken off your balance.
    Your balance: { $balance } ₽.
web-payment-refunded-stars-debt =
    ↩️ The Stars of your payment went back to you in Telegram, and { $amount } ₽ were taken off your balance.
    Part of the money was already spent, so your balance is negative: { $balance } ₽. Paid operations open again after a top-up.

# Why YooKassa canceled a payment (cancellation_details.reason), in plain words.
web-cancel-reason-3d_secure_failed = 3-D Secure authentication failed. Try again and confirm the payment in your bank's app or SMS, or use another payment method.
web-cancel-reason-call_issuer = the bank that issued the card declined the payment without giving a reason. Contact your bank or use another payment method.
web-cancel-reason-canceled_by_merchant = the payment was canceled by the shop.
web-cancel-reason-card_expired = the card has expired. Pay with another card.
web-cancel-reason-country_forbidden = cards issued in this country are not accepted. Pay with a card of another bank or use another payment method.
web-cancel-reason-deal_expired = the deal has expired.
web-cancel-reason-expired_on_capture = the shop did not confirm the payment in time, so it was canceled; if money was held on your card, the bank will release it.
web-cancel-reason-expired_on_confirmation = the time to pay ran out: the payment was not confirmed in time. Start the top-up again.
web-cancel-reason-fraud_suspected = the payment was blocked on suspicion of fraud. Use another payment method.
web-cancel-reason-general_decline = the payment was declined without a reason. Try again or use another payment method; your bank can tell you more.
web-cancel-reason-identification_required = the payment limit of an unidentified YooMoney wallet was reached. Identify the wallet or use another payment method.
web-cancel-reason-insufficient_funds = there is not enough money on the card or account. Add money or use another payment method.
web-cancel-reason-internal_timeout = a technical failure at YooKassa. Try again a little later.
web-cancel-reason-invalid_card_number = the card number is wrong.
web-cancel-reason-invalid_csc = the CVV2 (CVC2, CID) code from the back of the card is wrong.
web-cancel-reason-issuer_unavailable = the bank that issued the card is not available right now. Try later or use another payment method.
web-cancel-reason-payment_method_limit_exceeded = the payment limit of this payment method was reached. Try later or use another payment method.
web-cancel-reason-payment_method_restricted = payments with this method are not allowed (for example, the card is blocked). Contact your bank or use another payment method.
web-cancel-reason-permission_revoked = you revoked the permission for payments without confirmation.
web-cancel-reason-unsupported_mobile_operator = paying from the mobile account of this operator is not available. Use another payment method.
web-cancel-reason-unknown = the payment was canceled. Try again or use another payment method.
