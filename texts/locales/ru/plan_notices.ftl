# The users' messages about their plans (texts/plan_texts.py): sent after the change by the
# web server, the bot, the renewal pass, or a worker's maintenance pass. Keys start with
# "plan-notice-"; en/plan_notices.ftl has the same keys. Money arrives formatted, dates too.

plan-notice-operations = { $units ->
    [one] { $units } операция
    [few] { $units } операции
   *[many] { $units } операций
}

## A plan paid through YooKassa
plan-notice-bought-subscription =
    ✅ Оплата { $amount } ₽ получена: подписка «{ $plan }» подключена до { $ends }, { $operations } на период.
    На балансе { $balance } ₽.
plan-notice-bought-trial =
    ✅ Подписка «{ $plan }» подключена: пробный период до { $ends }, { $operations }.
    Оплата { $amount } ₽ зачислена на баланс — из неё подписка продлится после пробного периода. На балансе { $balance } ₽.
plan-notice-bought-package =
    ✅ Оплата { $amount } ₽ получена: пакет «{ $plan }» подключён, { $operations } до { $ends }.
    На балансе { $balance } ₽.
plan-notice-bought-package-forever =
    ✅ Оплата { $amount } ₽ получена: пакет «{ $plan }» подключён, { $operations } без срока.
    На балансе { $balance } ₽.
plan-notice-scheduled =
    ✅ Оплата { $amount } ₽ зачислена на баланс. Подписка «{ $plan }» начнётся при продлении { $ends }: тогда её цена спишется с баланса.
    На балансе { $balance } ₽.
plan-notice-already-active =
    ✅ Оплата { $amount } ₽ зачислена на баланс. Подписка «{ $plan }» уже подключена и продлится { $ends } из баланса.
    На балансе { $balance } ₽.
plan-notice-not-bought =
    ⚠️ Оплата { $amount } ₽ зачислена на баланс, но тариф «{ $plan }» подключить не удалось: { $why }
    Деньги остались на балансе: { $balance } ₽. Выбрать тариф — /plans.
plan-notice-why-archived = его больше нет в продаже.
plan-notice-why-no_money = его цена выросла, и на балансе не хватает.
plan-notice-why-default = это бесплатный тариф, он и так у вас.
plan-notice-why-not_found = такого тарифа больше нет.

## Renewal, end, expiry
plan-notice-renewed =
    🔄 Подписка «{ $plan }» продлена до { $ends }: { $operations } на период.
    Списано { $amount } ₽, на балансе { $balance } ₽.
plan-notice-changed =
    🔄 Теперь у вас подписка «{ $plan }» до { $ends }: { $operations } на период.
    Списано { $amount } ₽, на балансе { $balance } ₽.
plan-notice-changed-trial =
    🔄 Теперь у вас подписка «{ $plan }»: пробный период до { $ends }, { $operations }.
plan-notice-ended-no_money =
    ⚠️ Подписка «{ $plan }» не продлена: продление стоит { $amount } ₽, а на балансе { $balance } ₽. Вы перешли на бесплатный тариф.
    Пополните баланс и подключите подписку снова в /plans.
plan-notice-ended-canceled =
    Подписка «{ $plan }» закончилась: автопродление было выключено. Вы на бесплатном тарифе; подключить снова — /plans.
plan-notice-ended-archived =
    Подписка «{ $plan }» закончилась и не продлена: этот тариф больше не продаётся. Вы на бесплатном тарифе; выбрать другой — /plans.
plan-notice-package-expired =
    ⌛ Срок пакета «{ $plan }» истёк, неиспользованные операции сгорели. Пакеты и подписки — /plans.
