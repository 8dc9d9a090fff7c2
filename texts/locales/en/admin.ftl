# Admin commands (bot/routers/admin.py), seen only by ADMIN_IDS. Keys start with "admin-";
# ru/admin.ftl has the same keys. Money arrives formatted (billing.prices.format_rub),
# ids as strings (so Fluent does not group their digits).

## /user
admin-user-usage = Usage: <code>/user TELEGRAM_ID</code>
admin-unknown-user = There is no user with Telegram id { $telegram_id }.
admin-user =
    👤 Telegram id { $telegram_id } (user #{ $user_id }, language { $language })
    Balance: { $balance } ₽
    Free operations: { $free_left } of { $free_total }
    Recent operations:
    { $operations }
admin-user-operation = #{ $id } { $type } · { $status } · { $funding } · { $price } ₽ · { $date } UTC
admin-user-no-operations = — none —

## /grant, /debit
admin-adjust-usage = Usage: <code>/{ $command } TELEGRAM_ID RUBLES REASON</code>, e.g. <code>/{ $command } 123456789 50 compensation</code>
admin-bad-telegram-id = “{ $value }” is not a Telegram id (a positive whole number is needed).
admin-amount-not-number = “{ $value }” is not an amount. Rubles are needed, e.g. 50 or 9.90.
admin-amount-negative = The amount must be positive: “{ $value }”. Use /debit to take money and /grant to add it.
admin-amount-decimals = “{ $value }” has more than two decimal places (kopecks).
admin-amount-zero = The amount must be more than zero: “{ $value }”.
admin-amount-too-big = Too large: at most { $limit } ₽ per command.
admin-amount-out-of-range = The amount is out of the allowed range: the balance would pass what can be stored. Nothing was changed.
admin-reason-too-long = The reason is too long: at most { $limit } characters.
admin-debit-too-much = Cannot take { $amount } ₽: the balance is only { $balance } ₽. Nothing changed.
admin-adjust-refused = Not done: { $error }. Nothing changed.
admin-adjust-duplicate = This command was already applied; the repeat changed nothing.
admin-grant-done = ✅ Granted { $amount } ₽ to user { $telegram_id }: { $reason }
    New balance: { $balance } ₽
admin-debit-done = ✅ Debited { $amount } ₽ from user { $telegram_id }: { $reason }
    New balance: { $balance } ₽
admin-grant-notice = An administrator added { $amount } ₽: { $reason }
admin-debit-notice = An administrator took { $amount } ₽: { $reason }

## /audit
admin-audit-clean = ✅ Audit: clean, every balance matches the ledger.
admin-audit-problems =
    ⚠️ Audit: { $count } problem(s). The first { $shown }:
    { $problems }

## The plans catalogue: /plans_admin, /plan_add, /plan_edit, /plan_archive
admin-plans =
    📋 Plans (code · price · what it gives):

    { $plans }

    Change one: <code>/plan_edit CODE field=value ...</code> (price in rubles); add one: <code>/plan_add CODE kind=subscription|package field=value ...</code>; take one off sale: <code>/plan_archive CODE</code>.
admin-plan-line = <b>{ $code }</b> { $flags } «{ $name_ru }» / “{ $name_en }” · { $price } ₽ · { $what } · discount { $discount }% · free +{ $free } · unlocks: { $unlocks } · order { $sort }
admin-plan-what-subscription = subscription, { $units } units a { $period }, trial { $trial } d
admin-plan-what-package = pack, { $units } units for { $days } d
admin-plan-what-package-forever = pack, { $units } units, no expiry
admin-plan-period-day = day
admin-plan-period-week = week
admin-plan-period-month = month
admin-plan-period-year = year
admin-plan-flag-default = [default]
admin-plan-flag-archived = [archived]
admin-plan-unlocks-all = every operation
admin-plan-edit-usage =
    Usage: <code>/plan_edit CODE field=value ...</code>, e.g. <code>/plan_edit pro price=249 units=40</code>
    Fields: name_ru, name_en, price (rubles), period (day/week/month/year), units, expires (days or never), discount (0–100), unlocks (all or generate,edit), free, trial, sort, default (yes).
admin-plan-add-usage =
    Usage: <code>/plan_add CODE kind=subscription|package field=value ...</code>, e.g. <code>/plan_add pro_year kind=subscription name_ru="Про на год" name_en="Pro yearly" price=1990 period=year units=400 discount=10</code>
    Required: kind, name_ru, name_en, price (rubles), and period for a subscription. The other fields as in /plan_edit.
admin-plan-added = ✅ The plan is added and on sale.
    { $plan }
admin-plan-archive-usage = Usage: <code>/plan_archive CODE</code>
admin-plan-saved = ✅ Saved. Holders get the change from their next period.
    { $plan }
admin-plan-archived = ✅ Taken off sale. Holders keep it until it ends; a subscription does not renew.
    { $plan }
admin-plan-already-archived = This plan is archived already; nothing changed.
    { $plan }
admin-plan-unknown = There is no plan with code “{ $code }”. The list: /plans_admin
admin-plan-refused = Not done: { $error }. Nothing changed.
admin-plan-error-bad_pair = “{ $value }” is not field=value. Nothing changed.
admin-plan-error-unknown_field = There is no field “{ $field }”. Fields: { $fields }. Nothing changed.
admin-plan-error-not_editable = { $field } cannot be changed: take the plan off sale and add a new one. Nothing changed.
admin-plan-error-missing = { $field } is required. Nothing changed.
admin-plan-error-repeated = { $field } is given twice. Nothing changed.
admin-plan-error-bad_code = “{ $value }” is not a plan code: 1–32 of a-z, 0-9, _ and -, from a letter. Nothing changed.
admin-plan-error-exists = A plan with code “{ $value }” exists already. Nothing changed.
admin-plan-error-bad_name = { $field }: 1 to 64 characters. Nothing changed.
admin-plan-error-bad_number = { $field }: “{ $value }” is not a whole number of 0 or more. Nothing changed.
admin-plan-error-bad_price = The price “{ $value }” is not an amount in rubles (e.g. 199 or 199.90). Nothing changed.
admin-plan-error-out_of_range = { $field } must be from { $low } to { $high }, not { $value }. Nothing changed.
admin-plan-error-bad_choice = { $field } is one of: { $choices }; “{ $value }” is not. Nothing changed.
admin-plan-error-bad_bool = { $field }: yes or no, not “{ $value }”. Nothing changed.
admin-plan-error-bad_unlocks = unlocks: unknown operation “{ $value }” (known: { $choices }; or all). Nothing changed.
admin-plan-error-period_of_subscription = A subscription has a period, a pack has none. Nothing changed.
admin-plan-error-expiry_of_package = Only a pack has an expiry. Nothing changed.
admin-plan-error-trial_of_subscription = Only a subscription has a trial. Nothing changed.
admin-plan-error-free_plan_for_sale = A plan on sale costs more than 0 (only the default plan is free). Nothing changed.
admin-plan-error-default_free = The default plan is a free subscription: price 0, no trial. Nothing changed.
admin-plan-error-default_archived = The default plan cannot be taken off sale: make another plan the default first. Nothing changed.
admin-plan-error-default_needed = There is always a default plan: make another one the default (default=yes on it). Nothing changed.
admin-plan-error-default_of_archived = An archived plan cannot be the default. Nothing changed.

## /refund: a YooKassa payment back to the card (billing.refunds). $payment is our payment
## number (or the YooKassa id as typed), $refund YooKassa's refund id.
admin-refund-usage =
    Usage: <code>/refund PAYMENT [RUBLES] [again]</code>, e.g. <code>/refund 42</code> (return all that is left) or <code>/refund 42 50</code>.
    PAYMENT is the payment number, its YooKassa id or Telegram's charge id of a Stars payment (a Stars payment is refunded only whole). The same command again makes no second refund; <code>again</code> makes another refund of the same amount.
admin-refund-bad-payment = “{ $value }” is neither a payment number nor a YooKassa payment id.
admin-refund-no-yookassa = YooKassa is not configured: there is nothing to refund through.
admin-refund-unavailable = YooKassa did not answer ({ $error }). Send the same command again: the same idempotence key is sent, so there will be one refund.
admin-refund-refunded =
    ✅ Returned { $amount } ₽ of payment #{ $payment } to the card (refund { $refund }).
    User { $telegram_id }'s balance: { $balance } ₽. The user was told of the refund.
admin-refund-refunded-debt =
    ✅ Returned { $amount } ₽ of payment #{ $payment } to the card (refund { $refund }).
    The money was spent already: user { $telegram_id }'s balance is { $balance } ₽, a debt (paid operations are closed until a top-up). The user was told of the refund.
admin-refund-already_refunded =
    This refund was made before: { $amount } ₽ of payment #{ $payment } (refund { $refund }). Nothing new was done.
    Another refund of the same amount: <code>/refund { $payment } { $rubles } again</code>
admin-refund-pending = YooKassa took the refund of { $amount } ₽ of payment #{ $payment } (refund { $refund }) and has not finished it. The balance is debited when it goes through (YooKassa's notification, or this command again).
admin-refund-canceled = YooKassa canceled the refund of { $amount } ₽ of payment #{ $payment } (refund { $refund }, reason: { $reason }). No money was returned; the balance is unchanged.
admin-refund-error-unknown_payment = There is no payment “{ $payment }”. Nothing changed.
admin-refund-error-not_paid = Payment #{ $payment } is not paid ({ $status }): there is nothing to return. Nothing changed.
admin-refund-error-not_yookassa = Payment #{ $payment } was not paid through YooKassa: this command cannot return it. Nothing changed.
admin-refund-error-stars = Payment #{ $payment } was paid in Telegram Stars and is not credited: there is nothing to return. Nothing changed.
admin-refund-error-nothing_left = Payment #{ $payment } is refunded in full already ({ $amount } ₽). Nothing changed.
admin-refund-error-too_much = At most { $left } ₽ of payment #{ $payment } can be returned, not { $amount } ₽. Nothing changed.
admin-refund-error-unfinished = A refund of { $amount } ₽ of payment #{ $payment } is unfinished: send the command again with that amount (or none) to finish it.
admin-refund-error-rejected = YooKassa refused the refund of payment #{ $payment }: { $error }. No money was returned; the balance is unchanged.
admin-refund-error-mismatch = YooKassa's answer does not match payment #{ $payment } (see the log). The balance is unchanged.

## /paysupport: a user's message passed on to the admins.
admin-paysupport =
    💬 <b>/paysupport</b> from { $name } ({ $username }, id <code>{ $telegram_id }</code>)
    Payments: { $payments }

    { $text }
admin-paysupport-no-text = (a message without text)

## /refund of a Telegram Stars payment (refundStarPayment: always the whole charge).
admin-refund-stars-whole = Payment #{ $payment } was paid in Stars ({ $stars } ⭐): Telegram refunds it only whole — <code>/refund { $payment }</code>. Nothing was changed.
admin-refund-stars-refused = Telegram refused to refund the Stars of payment #{ $payment }: { $error }. The balance was not changed.
admin-refund-stars-unavailable = Telegram did not answer ({ $error }). Send the same command again: there will be no second refund.
admin-refund-stars-done =
    ✅ Returned { $stars } ⭐ of payment #{ $payment }; { $amount } ₽ taken off the balance.
    User { $telegram_id }'s balance: { $balance } ₽. The user was told of the refund.
admin-refund-stars-done-debt =
    ✅ Returned { $stars } ⭐ of payment #{ $payment }; { $amount } ₽ taken off the balance.
    The money was spent already: user { $telegram_id }'s balance is { $balance } ₽, a debt (paid operations are closed until a top-up). The user was told of the refund.
admin-refund-stars-already = The Stars of payment #{ $payment } were returned before ({ $stars } ⭐, { $amount } ₽ debited). Nothing new was done. User { $telegram_id }'s balance: { $balance } ₽.
