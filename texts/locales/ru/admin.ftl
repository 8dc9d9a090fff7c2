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

## The plans catalogue: /plans_admin, /plan_add, /plan_edit, /plan_archive
admin-plans =
    📋 Тарифы (код · цена · что даёт):

    { $plans }

    Изменить: <code>/plan_edit КОД поле=значение ...</code> (цена в рублях), завести новый: <code>/plan_add КОД kind=subscription|package поле=значение ...</code>, снять с продажи: <code>/plan_archive КОД</code>.
admin-plan-line = <b>{ $code }</b> { $flags } «{ $name_ru }» / “{ $name_en }” · { $price } ₽ · { $what } · скидка { $discount }% · бесплатных +{ $free } · открывает: { $unlocks } · порядок { $sort }
admin-plan-what-subscription = подписка, { $units } ед. за { $period }, пробный период { $trial } дн.
admin-plan-what-package = пакет, { $units } ед. на { $days } дн.
admin-plan-what-package-forever = пакет, { $units } ед. без срока
admin-plan-period-day = день
admin-plan-period-week = неделю
admin-plan-period-month = месяц
admin-plan-period-year = год
admin-plan-flag-default = [по умолчанию]
admin-plan-flag-archived = [в архиве]
admin-plan-unlocks-all = все операции
admin-plan-edit-usage =
    Формат: <code>/plan_edit КОД поле=значение ...</code>, например <code>/plan_edit pro price=249 units=40</code>
    Поля: name_ru, name_en, price (рубли), period (day/week/month/year), units, expires (дни или never), discount (0–100), unlocks (all или generate,edit), free, trial, sort, default (yes).
admin-plan-add-usage =
    Формат: <code>/plan_add КОД kind=subscription|package поле=значение ...</code>, например <code>/plan_add pro_year kind=subscription name_ru="Про на год" name_en="Pro yearly" price=1990 period=year units=400 discount=10</code>
    Обязательны: kind, name_ru, name_en, price (рубли), для подписки ещё period. Остальные поля — как в /plan_edit.
admin-plan-added = ✅ Тариф заведён и продаётся.
    { $plan }
admin-plan-archive-usage = Формат: <code>/plan_archive КОД</code>
admin-plan-saved = ✅ Сохранено. Те, у кого тариф уже есть, получат изменения со следующего периода.
    { $plan }
admin-plan-archived = ✅ Снят с продажи. У кого он есть, сохранят его до конца; подписка не продлится.
    { $plan }
admin-plan-already-archived = Этот тариф уже в архиве, ничего не изменено.
    { $plan }
admin-plan-unknown = Тарифа с кодом «{ $code }» нет. Список: /plans_admin
admin-plan-refused = Не выполнено: { $error }. Ничего не изменено.
admin-plan-error-bad_pair = «{ $value }» — не пара поле=значение. Ничего не изменено.
admin-plan-error-unknown_field = Нет поля «{ $field }». Поля: { $fields }. Ничего не изменено.
admin-plan-error-not_editable = Поле { $field } менять нельзя: снимите тариф с продажи и заведите новый. Ничего не изменено.
admin-plan-error-missing = Нужно указать { $field }. Ничего не изменено.
admin-plan-error-repeated = Поле { $field } указано дважды. Ничего не изменено.
admin-plan-error-bad_code = «{ $value }» — не код тарифа: 1–32 символа a-z, 0-9, _ и -, с буквы. Ничего не изменено.
admin-plan-error-exists = Тариф с кодом «{ $value }» уже есть. Ничего не изменено.
admin-plan-error-bad_name = { $field }: нужно от 1 до 64 символов. Ничего не изменено.
admin-plan-error-bad_number = { $field }: «{ $value }» — не целое неотрицательное число. Ничего не изменено.
admin-plan-error-bad_price = Цена «{ $value }» — не сумма в рублях (например 199 или 199,90). Ничего не изменено.
admin-plan-error-out_of_range = { $field } должно быть от { $low } до { $high }, а не { $value }. Ничего не изменено.
admin-plan-error-bad_choice = { $field } — одно из: { $choices }; «{ $value }» не подходит. Ничего не изменено.
admin-plan-error-bad_bool = { $field }: нужно yes или no, а не «{ $value }». Ничего не изменено.
admin-plan-error-bad_unlocks = unlocks: неизвестная операция «{ $value }» (есть: { $choices }; или all). Ничего не изменено.
admin-plan-error-period_of_subscription = У подписки должен быть период, у пакета — нет. Ничего не изменено.
admin-plan-error-expiry_of_package = Срок (expires) бывает только у пакета. Ничего не изменено.
admin-plan-error-trial_of_subscription = Пробный период бывает только у подписки. Ничего не изменено.
admin-plan-error-free_plan_for_sale = Тариф в продаже должен стоить больше 0 (бесплатен только тариф по умолчанию). Ничего не изменено.
admin-plan-error-default_free = Тариф по умолчанию — бесплатная подписка: цена 0, без пробного периода. Ничего не изменено.
admin-plan-error-default_archived = Тариф по умолчанию нельзя снять с продажи: сначала сделайте тарифом по умолчанию другой. Ничего не изменено.
admin-plan-error-default_needed = Тариф по умолчанию есть всегда: назначьте другой (default=yes у него). Ничего не изменено.
admin-plan-error-default_of_archived = Тариф из архива не может быть тарифом по умолчанию. Ничего не изменено.

## /refund: a YooKassa payment back to the card (billing.refunds). $payment is our payment
## number (or the YooKassa id as typed), $refund YooKassa's refund id.
admin-refund-usage =
    Формат: <code>/refund ПЛАТЁЖ [РУБЛИ] [again]</code>, например <code>/refund 42</code> (вернуть всё, что осталось) или <code>/refund 42 50</code>.
    ПЛАТЁЖ — номер платежа, его id в ЮKassa или id списания звёзд в Telegram (платёж звёздами возвращается только целиком). Повтор той же команды не делает второго возврата; <code>again</code> — ещё один возврат той же суммы.
admin-refund-bad-payment = «{ $value }» — не номер платежа и не id платежа в ЮKassa.
admin-refund-no-yookassa = ЮKassa не настроена: возвращать нечего и некуда.
admin-refund-unavailable = ЮKassa не ответила ({ $error }). Повторите ту же команду: будет отправлен тот же ключ идемпотентности, и возврат будет один.
admin-refund-refunded =
    ✅ Возвращено на карту { $amount } ₽ по платежу #{ $payment } (возврат { $refund }).
    Баланс пользователя { $telegram_id }: { $balance } ₽. Пользователь получил сообщение о возврате.
admin-refund-refunded-debt =
    ✅ Возвращено на карту { $amount } ₽ по платежу #{ $payment } (возврат { $refund }).
    Деньги уже были потрачены: баланс пользователя { $telegram_id } — { $balance } ₽, это долг (платные операции закрыты до пополнения). Пользователь получил сообщение о возврате.
admin-refund-already_refunded =
    Этот возврат уже сделан: { $amount } ₽ по платежу #{ $payment } (возврат { $refund }). Ничего нового не сделано.
    Ещё один возврат той же суммы: <code>/refund { $payment } { $rubles } again</code>
admin-refund-pending = ЮKassa приняла возврат { $amount } ₽ по платежу #{ $payment } (возврат { $refund }), но ещё не провела его. Баланс спишется, когда возврат пройдёт (по уведомлению ЮKassa или при повторе этой команды).
admin-refund-canceled = ЮKassa отменила возврат { $amount } ₽ по платежу #{ $payment } (возврат { $refund }, причина: { $reason }). Деньги не возвращены, баланс не изменён.
admin-refund-error-unknown_payment = Платежа «{ $payment }» нет. Ничего не изменено.
admin-refund-error-not_paid = Платёж #{ $payment } не оплачен ({ $status }): возвращать нечего. Ничего не изменено.
admin-refund-error-not_yookassa = Платёж #{ $payment } оплачен не через ЮKassa: вернуть его этой командой нельзя. Ничего не изменено.
admin-refund-error-stars = Платёж #{ $payment } оплачен звёздами Telegram и ещё не зачислен: возвращать нечего. Ничего не изменено.
admin-refund-error-nothing_left = Платёж #{ $payment } уже возвращён полностью ({ $amount } ₽). Ничего не изменено.
admin-refund-error-too_much = По платежу #{ $payment } можно вернуть не больше { $left } ₽, а не { $amount } ₽. Ничего не изменено.
admin-refund-error-unfinished = По платежу #{ $payment } не завершён возврат { $amount } ₽: повторите команду с этой суммой (или без суммы), чтобы его завершить.
admin-refund-error-rejected = ЮKassa отказала в возврате по платежу #{ $payment }: { $error }. Деньги не возвращены, баланс не изменён.
admin-refund-error-mismatch = Ответ ЮKassa не совпадает с платежом #{ $payment } (подробности в логе). Баланс не изменён.

## /paysupport: a user's message passed on to the admins (always in Russian).
admin-paysupport =
    💬 <b>/paysupport</b> от { $name } ({ $username }, id <code>{ $telegram_id }</code>)
    Платежи: { $payments }

    { $text }
admin-paysupport-no-text = (сообщение без текста)

## /refund of a Telegram Stars payment (refundStarPayment: always the whole charge).
admin-refund-stars-whole = Платёж #{ $payment } оплачен звёздами ({ $stars } ⭐): Telegram возвращает его только целиком — <code>/refund { $payment }</code>. Ничего не изменено.
admin-refund-stars-refused = Telegram отказал в возврате звёзд по платежу #{ $payment }: { $error }. Баланс не изменён.
admin-refund-stars-unavailable = Telegram не ответил ({ $error }). Повторите ту же команду: второго возврата не будет.
admin-refund-stars-done =
    ✅ Возвращено { $stars } ⭐ по платежу #{ $payment }; с баланса списано { $amount } ₽.
    Баланс пользователя { $telegram_id }: { $balance } ₽. Пользователь получил сообщение о возврате.
admin-refund-stars-done-debt =
    ✅ Возвращено { $stars } ⭐ по платежу #{ $payment }; с баланса списано { $amount } ₽.
    Деньги уже были потрачены: баланс пользователя { $telegram_id } — { $balance } ₽, это долг (платные операции закрыты до пополнения). Пользователь получил сообщение о возврате.
admin-refund-stars-already = Звёзды по платежу #{ $payment } уже возвращены ({ $stars } ⭐, списано { $amount } ₽). Ничего нового не сделано. Баланс пользователя { $telegram_id }: { $balance } ₽.
