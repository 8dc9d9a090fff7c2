# Admin commands (bot/routers/admin.py), seen only by ADMIN_IDS. Keys start with "admin-";
# en/admin.ftl has the same keys. Money arrives formatted (billing.prices.format_rub),
# ids as strings (so Fluent does not group their digits).

## /user
admin-user-usage = Формат: <code>/user TELEGRAM_ID</code>
admin-unknown-user = Пользователя с Telegram id { $telegram_id } нет.
admin-user =
    👤 Telegram id { $telegram_id } (пользователь #{ $user_id }, язык { $language })
    Баланс: { $balance } ₽
    Бесплатные операции: { $free_left } из { $free_total }
    Последние операции:
    { $operations }
admin-user-operation = #{ $id } { $type } · { $status } · { $funding } · { $price } ₽ · { $date } UTC
admin-user-no-operations = — нет —

## /grant, /debit
admin-adjust-usage = Формат: <code>/{ $command } TELEGRAM_ID РУБЛИ ПРИЧИНА</code>, например <code>/{ $command } 123456789 50 компенсация</code>
admin-bad-telegram-id = «{ $value }» — не Telegram id (нужно целое положительное число).
admin-amount-not-number = «{ $value }» — не сумма. Нужно число рублей, например 50 или 9,90.
admin-amount-negative = Сумма должна быть положительной: «{ $value }». Для списания есть /debit, для начисления — /grant.
admin-amount-decimals = «{ $value }» — больше двух знаков после запятой (копеек).
admin-amount-zero = Сумма должна быть больше нуля: «{ $value }».
admin-amount-too-big = Слишком большая сумма: за одну команду не больше { $limit } ₽.
admin-amount-out-of-range = Сумма вне допустимого диапазона: баланс вышел бы за пределы того, что можно хранить. Ничего не изменено.
admin-reason-too-long = Причина слишком длинная: не больше { $limit } символов.
admin-debit-too-much = Нельзя списать { $amount } ₽: на балансе только { $balance } ₽. Ничего не изменено.
admin-adjust-refused = Не выполнено: { $error }. Ничего не изменено.
admin-adjust-duplicate = Эта команда уже выполнена, повтор ничего не изменил.
admin-grant-done = ✅ Начислено { $amount } ₽ пользователю { $telegram_id }: { $reason }
    Новый баланс: { $balance } ₽
admin-debit-done = ✅ Списано { $amount } ₽ у пользователя { $telegram_id }: { $reason }
    Новый баланс: { $balance } ₽
admin-grant-notice = Администратор начислил { $amount } ₽: { $reason }
admin-debit-notice = Администратор списал { $amount } ₽: { $reason }

## /audit
admin-audit-clean = ✅ Аудит: всё чисто, каждый баланс сходится с журналом.
admin-audit-problems =
    ⚠️ Аудит: проблем — { $count }. Первые { $shown }:
    { $problems }
