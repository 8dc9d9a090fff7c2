# The users' messages about their plans (texts/plan_texts.py); ru/plan_notices.ftl has the
# same keys.

plan-notice-operations = { $units ->
    [one] { $units } operation
   *[other] { $units } operations
}

## A plan paid through YooKassa
plan-notice-bought-subscription =
    ✅ Payment of { $amount } ₽ received: the “{ $plan }” subscription is on until { $ends }, { $operations } per period.
    Balance: { $balance } ₽.
plan-notice-bought-trial =
    ✅ The “{ $plan }” subscription is on: a free trial until { $ends }, { $operations }.
    Your payment of { $amount } ₽ is on your balance: it renews the subscription after the trial. Balance: { $balance } ₽.
plan-notice-bought-package =
    ✅ Payment of { $amount } ₽ received: the “{ $plan }” pack is on, { $operations } until { $ends }.
    Balance: { $balance } ₽.
plan-notice-bought-package-forever =
    ✅ Payment of { $amount } ₽ received: the “{ $plan }” pack is on, { $operations } with no expiry.
    Balance: { $balance } ₽.
plan-notice-scheduled =
    ✅ Your payment of { $amount } ₽ is on your balance. The “{ $plan }” subscription starts at the renewal on { $ends }: its price is taken from the balance then.
    Balance: { $balance } ₽.
plan-notice-already-active =
    ✅ Your payment of { $amount } ₽ is on your balance. You already have the “{ $plan }” subscription; it renews on { $ends } from the balance.
    Balance: { $balance } ₽.
plan-notice-not-bought =
    ⚠️ Your payment of { $amount } ₽ is on your balance, but the “{ $plan }” plan could not be turned on: { $why }
    The money stays on your balance: { $balance } ₽. Pick a plan: /plans.
plan-notice-why-archived = it is no longer offered.
plan-notice-why-no_money = its price went up and the balance is short.
plan-notice-why-default = it is the free plan, which you already have.
plan-notice-why-not_found = that plan no longer exists.

## Renewal, end, expiry
plan-notice-renewed =
    🔄 The “{ $plan }” subscription is renewed until { $ends }: { $operations } per period.
    { $amount } ₽ taken, balance: { $balance } ₽.
plan-notice-changed =
    🔄 You are now on the “{ $plan }” subscription until { $ends }: { $operations } per period.
    { $amount } ₽ taken, balance: { $balance } ₽.
plan-notice-changed-trial =
    🔄 You are now on the “{ $plan }” subscription: a free trial until { $ends }, { $operations }.
plan-notice-ended-no_money =
    ⚠️ The “{ $plan }” subscription was not renewed: the renewal costs { $amount } ₽ and your balance is { $balance } ₽. You are on the free plan now.
    Top up and turn the subscription on again in /plans.
plan-notice-ended-canceled =
    The “{ $plan }” subscription has ended: auto-renewal was off. You are on the free plan; turn it on again in /plans.
plan-notice-ended-archived =
    The “{ $plan }” subscription has ended and was not renewed: the plan is no longer offered. You are on the free plan; pick another in /plans.
plan-notice-package-expired =
    ⌛ The “{ $plan }” pack has expired; its unused operations are gone. Packs and subscriptions: /plans.
