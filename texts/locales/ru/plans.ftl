# Plans, the wallet, the confirmation before a charge, the history, settings (issue 14).
# Keys start with "plans-"; en/plans.ftl has the same keys. Money arrives formatted
# (billing.prices.format_rub), dates formatted (texts.wallet_texts), counts as numbers.
# Quotas and packages count operations of the price list ("units"): with OPERATION_UNITS a
# generation may cost 2 of them. A free operation pays for one operation, whatever it costs.

## Counts
plans-ops = { $count ->
    [one] { $count } операция
    [few] { $count } операции
   *[many] { $count } операций
}
plans-free-ops = { $count ->
    [one] { $count } бесплатная операция
    [few] { $count } бесплатные операции
   *[many] { $count } бесплатных операций
}
plans-days = { $count ->
    [one] { $count } день
    [few] { $count } дня
   *[many] { $count } дней
}
plans-per = { $period ->
    [day] в день
    [week] в неделю
    [year] в год
   *[month] в месяц
}
plans-forever = бессрочно
plans-until = до { $date }

## /plans: what the user has
plans-title = 📋 <b>Ваш тариф: { $name }</b>
plans-title-paid = 📋 <b>Ваш тариф: { $name }</b> — { $price } ₽ { $per }
plans-quota = 📊 Осталось { $left } из { $total } — обновится { $date }
plans-quota-ends = 📊 Осталось { $left } из { $total } — до { $date }
plans-renews = 🔁 Продлится { $date }: { $price } ₽ с баланса
plans-renews-off = ⏹ Автопродление выключено: тариф закончится { $date }
plans-renews-archived = ⏹ Тариф больше не продаётся и не продлится: он закончится { $date }
plans-trial = 🎁 Пробный период до { $date }, потом { $price } ₽ { $per }
plans-next = 🔄 С { $date } — тариф «{ $name }» ({ $price } ₽ { $per })
plans-package = 📦 { $name }: осталось { $left }, { $until }
plans-free-left = 🎁 Бесплатных операций: { $left }
plans-balance = 💰 Баланс: { $balance } ₽
plans-pay-per-op = 💳 Сверх тарифа — { $price } ₽ за операцию
plans-pay-per-op-discount = 💳 Сверх тарифа — { $price } ₽ за операцию (скидка { $percent } %)

## /plans: the catalogue
plans-catalogue = <b>Тарифы</b>
plans-catalogue-empty = Сейчас нет тарифов в продаже.
plans-line-subscription = • <b>{ $name }</b> — { $price } ₽ { $per }: { $ops } { $per }{ $extras }
plans-line-package = • <b>{ $name }</b> — { $price } ₽: { $ops }, { $life }{ $extras }
plans-life-days = действует { $days }
plans-extra-discount = , скидка { $percent } % на операции с баланса
plans-extra-unlocks = , открывает: { $modes }
plans-extra-free = , +{ $free }
plans-extra-trial = , первые { $days } — бесплатно
plans-units-note = ℹ️ { $lines }; остальные — по 1.
plans-units-note-line = { $modes } — по { $ops }
plans-change-note = Смена подписки начинает действовать со следующего периода.

## /plans: buttons
plans-btn-plan = { $name } — { $price } ₽
plans-btn-current = ✅ { $name } — ваш тариф
plans-btn-buy-balance = 💰 Купить с баланса — { $price } ₽
plans-btn-pay-card = 💳 Оплатить картой — { $price } ₽
plans-btn-pay-stars = ⭐ Оплатить звёздами — { $stars } ⭐
plans-btn-change = 🔄 Перейти со следующего периода
plans-btn-autorenew-off = ⏹ Выключить автопродление
plans-btn-autorenew-on = 🔁 Включить автопродление
plans-btn-back = ◀️ Все тарифы
plans-btn-show = 📋 Тарифы
plans-btn-history = 🧾 История
plans-btn-settings = ⚙️ Настройки

## A plan's card
plans-card-subscription =
    📋 <b>{ $name }</b> — { $price } ₽ { $per }
    { $ops } { $per }{ $extras }.
plans-card-package =
    📦 <b>{ $name }</b> — { $price } ₽
    { $ops }, { $life }{ $extras }.
plans-card-current = Это ваш текущий тариф.
plans-card-change = Сейчас у вас «{ $current }». Новый тариф начнёт действовать { $date }, когда закончится текущий период: тогда спишется { $price } ₽ с баланса.
plans-card-archived = Этот тариф больше не продаётся.

## Buying
plans-bought-subscription = ✅ Подключён тариф «{ $name }»: { $ops } до { $date }. Списано { $price } ₽, на балансе { $balance } ₽.
plans-bought-trial = ✅ Подключён тариф «{ $name }»: пробный период до { $date }, ничего не списано. Потом — { $price } ₽ { $per } с баланса.
plans-bought-package = ✅ Куплен «{ $name }»: { $ops }, { $until }. Списано { $price } ₽, на балансе { $balance } ₽.
plans-bought-free = 🎁 И ещё { $free } в подарок.
plans-changed = ✅ Договорились: с { $date } — тариф «{ $name }», { $price } ₽ { $per } с баланса. До тех пор действует «{ $current }».
plans-not-enough =
    😔 «{ $name }» стоит { $price } ₽, а на балансе { $balance } ₽.
    { $pay ->
        [card] Пополните баланс или оплатите тариф картой.
        [stars] Пополните баланс или оплатите тариф звёздами.
        [both] Пополните баланс или оплатите тариф картой или звёздами.
       *[none] Пополните баланс.
    }
plans-not-for-sale = Этот тариф больше не продаётся. Выберите другой: /plans
plans-already-current = Этот тариф у вас уже есть.
plans-invoice =
    🧾 Счёт на <b>{ $price } ₽</b> за «{ $name }» готов.
    После оплаты деньги придут на баланс и тариф подключится сам — я сообщу.
plans-invoice-description = Media Lab: тариф «{ $name }»
plans-autorenew-off = ⏹ Автопродление выключено. «{ $name }» действует до { $date }, потом — бесплатный тариф.
plans-autorenew-on = 🔁 Автопродление включено: { $date } спишется { $price } ₽ с баланса.
plans-no-subscription = У вас нет подписки. Посмотрите тарифы: /plans
plans-done-already = Уже сделано.

## Locked modes
plans-locked = 🔒 «{ $mode }» открывается в тарифах: { $plans }. Ничего не списано.
plans-locked-nowhere = 🔒 «{ $mode }» сейчас недоступен: ни один тариф его не открывает. Ничего не списано.

## The confirmation before a charge
plans-quote-free = Спишется 1 бесплатная операция, останется { $left }
plans-quote-subscription = Спишется { $ops } из подписки, останется { $left }
plans-quote-package = Спишется { $ops } из пакета «{ $name }», останется { $left }
plans-quote-balance = Спишется { $price } ₽, останется { $left } ₽
plans-quote-balance-discount = Спишется { $price } ₽ (скидка { $percent } %), останется { $left } ₽
plans-confirm = ❓ { $mode }: { $quote }. Подтвердить?
plans-btn-confirm = ✅ Подтвердить
plans-btn-cancel = ✖️ Отмена
plans-confirm-canceled = ✖️ Отменено, ничего не списано.
plans-confirm-expired = ⌛ Это подтверждение устарело: запрос уже не хранится. Ничего не списано — отправьте его ещё раз.
plans-confirm-changed = ⚠️ Пока вы решали, изменился баланс или тариф, и прежние условия больше не действуют. Ничего не списано.
plans-confirm-done = Уже подтверждено.

## /balance (the lines under the balance)
plans-balance-quota = 📊 Подписка «{ $name }»: осталось { $left } из { $total }, обновится { $date }
plans-balance-quota-ends = 📊 Подписка «{ $name }»: осталось { $left } из { $total }, до { $date }
plans-balance-package = 📦 { $name }: осталось { $left }, { $until }
plans-balance-discount = 💳 Со скидкой вашего тарифа — { $price } ₽ за операцию (−{ $percent } %)

## /history
plans-history-title = 🧾 <b>История</b> (новое сверху)
plans-history-empty = 🧾 Здесь пока пусто: ни пополнений, ни операций.
plans-history-line = { $date } · { $what }
plans-history-newer = ◀️ Новее
plans-history-older = Старше ▶️
plans-h-signup = 🎁 Подарок при регистрации: +{ $free }
plans-h-topup = 💳 Пополнение: +{ $amount } ₽
plans-h-payment-refund = ↩️ Возврат на карту: −{ $amount } ₽
plans-h-charge-balance = { $mode }: −{ $amount } ₽
plans-h-charge-free = { $mode }: −1 бесплатная операция
plans-h-charge-subscription = { $mode }: −{ $ops } из подписки «{ $plan }»
plans-h-charge-package = { $mode }: −{ $ops } из пакета «{ $plan }»
plans-h-refund-balance = ↩️ Возврат за { $mode }: +{ $amount } ₽ — операция не удалась
plans-h-refund-free = ↩️ Возврат за { $mode }: +1 бесплатная операция — операция не удалась
plans-h-refund-units = ↩️ Возврат за { $mode }: +{ $ops } в «{ $plan }» — операция не удалась
plans-h-refund-period-over = ↩️ { $mode }: операция не удалась, но период подписки уже закончился — операции не переносятся
plans-h-refund-plan-ended = ↩️ { $mode }: операция не удалась, но пакет «{ $plan }» уже закончился — вернуть некуда
plans-h-adjustment = 🛠 Корректировка: { $change }
plans-h-purchase = 📋 Покупка «{ $plan }»: { $change }
plans-h-purchase-trial = 📋 «{ $plan }»: пробный период{ $change }
plans-h-renewal = 🔁 Продление «{ $plan }»: { $change }
plans-h-end = ⏹ «{ $plan }» закончился: { $why }{ $change }
plans-h-end-canceled = автопродление было выключено
plans-h-end-no-money = на балансе не хватило денег на продление
plans-h-end-archived = тариф снят с продажи
plans-h-end-expired = истёк срок
plans-h-end-replaced = заменён другим тарифом
plans-h-free-renewal = 🎁 Бесплатные операции обновлены: { $change }
plans-h-other = { $change }
plans-h-money = { $sign }{ $amount } ₽
plans-h-free = { $sign }{ $free }
plans-h-units = { $sign }{ $ops }
plans-h-units-gone = сгорело { $ops }

## /settings
plans-settings =
    ⚙️ <b>Настройки</b>

    Подтверждение перед списанием: <b>{ $on ->
        [yes] включено
       *[no] выключено
    }</b>
    Когда включено, перед каждой платной операцией я пишу, что и откуда спишется, и жду «Подтвердить».
plans-btn-confirm-on = ✅ Спрашивать перед списанием
plans-btn-confirm-off = ⏩ Не спрашивать

## After a result (the worker's caption), at most once a day
plans-offer = { $free_left ->
    [0] 💡 Бесплатные операции закончились.
   *[other] 💡 Осталась последняя бесплатная операция.
} В тарифах операции дешевле: /plans
