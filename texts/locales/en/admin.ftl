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
