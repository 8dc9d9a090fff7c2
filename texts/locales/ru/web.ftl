# The web server's messages about money (web/notify.py).
web-topup-credited =
    ✅ Баланс пополнен на { $amount } ₽.
    Текущий баланс: { $balance } ₽.
web-payment-canceled =
    ❌ Оплата { $amount } ₽ не прошла: { $reason }
    Баланс не изменился. Пополнить ещё раз: /balance
web-payment-refunded =
    ↩️ Оформлен возврат { $amount } ₽ на карту: эта сумма списана с баланса.
    Текущий баланс: { $balance } ₽.
web-payment-refunded-debt =
    ↩️ Оформлен возврат { $amount } ₽ на карту: эта сумма списана с баланса.
    Часть денег уже была потрачена, поэтому баланс отрицательный: { $balance } ₽. Платные операции снова станут доступны после пополнения.

web-payment-refunded-stars =
    ↩️ Звёзды за оплату вернулись к вам в Telegram, а { $amount } ₽ списаны с баланса.
    Текущий баланс: { $balance } ₽.
web-payment-refunded-stars-debt =
    ↩️ Звёзды за оплату вернулись к вам в Telegram, а { $amount } ₽ списаны с баланса.
    Часть денег уже была потрачена, поэтому баланс отрицательный: { $balance } ₽. Платные операции снова станут доступны после пополнения.

# Why YooKassa canceled a payment (cancellation_details.reason), in plain words.
web-cancel-reason-3d_secure_failed = не пройдена проверка 3-D Secure. Попробуйте ещё раз и подтвердите оплату в приложении или SMS банка, либо выберите другой способ оплаты.
web-cancel-reason-call_issuer = банк, выпустивший карту, отклонил оплату без объяснения причин. Обратитесь в банк или выберите другой способ оплаты.
web-cancel-reason-canceled_by_merchant = платёж отменён магазином.
web-cancel-reason-card_expired = истёк срок действия карты. Оплатите другой картой.
web-cancel-reason-country_forbidden = карты банков этой страны для оплаты не принимаются. Оплатите картой другого банка или другим способом.
web-cancel-reason-deal_expired = истёк срок действия сделки.
web-cancel-reason-expired_on_capture = платёж не был вовремя подтверждён магазином, поэтому отменён; если деньги были заблокированы на карте, банк их разблокирует.
web-cancel-reason-expired_on_confirmation = время на оплату истекло: платёж не был подтверждён вовремя. Начните пополнение заново.
web-cancel-reason-fraud_suspected = платёж заблокирован из-за подозрения в мошенничестве. Выберите другой способ оплаты.
web-cancel-reason-general_decline = платёж отклонён без указания причины. Попробуйте ещё раз или выберите другой способ оплаты; подробности можно узнать в банке.
web-cancel-reason-identification_required = превышен лимит платежей для неидентифицированного кошелька ЮMoney. Пройдите идентификацию или выберите другой способ оплаты.
web-cancel-reason-insufficient_funds = на карте или счёте недостаточно денег. Пополните счёт или выберите другой способ оплаты.
web-cancel-reason-internal_timeout = технический сбой на стороне ЮKassa. Попробуйте ещё раз чуть позже.
web-cancel-reason-invalid_card_number = неправильно указан номер карты.
web-cancel-reason-invalid_csc = неправильно указан код CVV2 (CVC2, CID) с обратной стороны карты.
web-cancel-reason-issuer_unavailable = банк, выпустивший карту, сейчас недоступен. Попробуйте позже или выберите другой способ оплаты.
web-cancel-reason-payment_method_limit_exceeded = исчерпан лимит платежей для этого способа оплаты. Попробуйте позже или выберите другой способ оплаты.
web-cancel-reason-payment_method_restricted = операции этим способом оплаты запрещены (например, карта заблокирована). Обратитесь в банк или выберите другой способ оплаты.
web-cancel-reason-permission_revoked = вы отозвали разрешение на списания без подтверждения.
web-cancel-reason-unsupported_mobile_operator = оплата с мобильного счёта этого оператора недоступна. Выберите другой способ оплаты.
web-cancel-reason-unknown = платёж отменён. Попробуйте ещё раз или выберите другой способ оплаты.
