# Plans, the wallet, the confirmation before a charge, the history, settings (issue 14).
# Keys start with "plans-"; ru/plans.ftl has the same keys. Money arrives formatted
# (billing.prices.format_rub), dates formatted (texts.wallet_texts), counts as numbers.
# Quotas and packages count operations of the price list ("units"): with OPERATION_UNITS a
# generation may cost 2 of them. A free operation pays for one operation, whatever it costs.

## Counts
plans-ops = { $count ->
    [one] { $count } operation
   *[other] { $count } operations
}
plans-free-ops = { $count ->
    [one] { $count } free operation
   *[other] { $count } free operations
}
plans-days = { $count ->
    [one] { $count } day
   *[other] { $count } days
}
plans-per = { $period ->
    [day] a day
    [week] a week
    [year] a year
   *[month] a month
}
plans-forever = never expires
plans-until = until { $date }

## /plans: what the user has
plans-title = 📋 <b>Your plan: { $name }</b>
plans-title-paid = 📋 <b>Your plan: { $name }</b> — { $price } ₽ { $per }
plans-quota = 📊 { $left } of { $total } left — resets { $date }
plans-quota-ends = 📊 { $left } of { $total } left — until { $date }
plans-renews = 🔁 Renews { $date }: { $price } ₽ from the balance
plans-renews-off = ⏹ Auto-renewal is off: the plan ends { $date }
plans-renews-archived = ⏹ The plan is no longer sold and will not renew: it ends { $date }
plans-trial = 🎁 Free trial until { $date }, then { $price } ₽ { $per }
plans-next = 🔄 From { $date } — the { $name } plan ({ $price } ₽ { $per })
plans-package = 📦 { $name }: { $left } left, { $until }
plans-free-left = 🎁 Free operations: { $left }
plans-balance = 💰 Balance: { $balance } ₽
plans-pay-per-op = 💳 Beyond the plan — { $price } ₽ per operation
plans-pay-per-op-discount = 💳 Beyond the plan — { $price } ₽ per operation ({ $percent } % off)

## /plans: the catalogue
plans-catalogue = <b>Plans</b>
plans-catalogue-empty = No plans are on sale right now.
plans-line-subscription = • <b>{ $name }</b> — { $price } ₽ { $per }: { $ops } { $per }{ $extras }
plans-line-package = • <b>{ $name }</b> — { $price } ₽: { $ops }, { $life }{ $extras }
plans-life-days = valid for { $days }
plans-extra-discount = , { $percent } % off operations paid from the balance
plans-extra-unlocks = , unlocks: { $modes }
plans-extra-free = , +{ $free }
plans-extra-trial = , the first { $days } free
plans-units-note = ℹ️ { $lines }; the others — 1 each.
plans-units-note-line = { $modes } — { $ops } each
plans-change-note = A subscription change takes effect from the next period.

## /plans: buttons
plans-btn-plan = { $name } — { $price } ₽
plans-btn-current = ✅ { $name } — your plan
plans-btn-buy-balance = 💰 Buy from the balance — { $price } ₽
plans-btn-pay-card = 💳 Pay by card — { $price } ₽
plans-btn-pay-stars = ⭐ Pay { $stars } Stars
plans-btn-change = 🔄 Switch from the next period
plans-btn-autorenew-off = ⏹ Turn auto-renewal off
plans-btn-autorenew-on = 🔁 Turn auto-renewal on
plans-btn-back = ◀️ All plans
plans-btn-show = 📋 Plans
plans-btn-history = 🧾 History
plans-btn-settings = ⚙️ Settings

## A plan's card
plans-card-subscription =
    📋 <b>{ $name }</b> — { $price } ₽ { $per }
    { $ops } { $per }{ $extras }.
plans-card-package =
    📦 <b>{ $name }</b> — { $price } ₽
    { $ops }, { $life }{ $extras }.
plans-card-current = This is your current plan.
plans-card-change = You are on { $current } now. The new plan starts { $date }, when the current period ends: { $price } ₽ is then taken from the balance.
plans-card-archived = This plan is no longer sold.

## Buying
plans-bought-subscription = ✅ The { $name } plan is on: { $ops } until { $date }. { $price } ₽ taken, balance { $balance } ₽.
plans-bought-trial = ✅ The { $name } plan is on: a free trial until { $date }, nothing taken. Then { $price } ₽ { $per } from the balance.
plans-bought-package = ✅ { $name } bought: { $ops }, { $until }. { $price } ₽ taken, balance { $balance } ₽.
plans-bought-free = 🎁 Plus { $free } as a gift.
plans-changed = ✅ Done: from { $date } — the { $name } plan, { $price } ₽ { $per } from the balance. Until then, { $current } stays.
plans-not-enough =
    😔 { $name } costs { $price } ₽, and the balance is { $balance } ₽.
    { $pay ->
        [card] Top up the balance or pay for the plan by card.
        [stars] Top up the balance or pay for the plan in Stars.
        [both] Top up the balance or pay for the plan by card or in Stars.
       *[none] Top up the balance.
    }
plans-not-for-sale = This plan is no longer sold. Pick another one: /plans
plans-already-current = You already have this plan.
plans-invoice =
    🧾 The bill for <b>{ $price } ₽</b> for { $name } is ready.
    Once paid, the money arrives on the balance and the plan turns on by itself — I'll let you know.
plans-invoice-description = Media Lab: the { $name } plan
plans-autorenew-off = ⏹ Auto-renewal is off. { $name } stays until { $date }, then the free plan.
plans-autorenew-on = 🔁 Auto-renewal is on: { $price } ₽ is taken from the balance on { $date }.
plans-no-subscription = You have no subscription. See the plans: /plans
plans-done-already = Already done.

## Locked modes
plans-locked = 🔒 { $mode } comes with the plans: { $plans }. Nothing was charged.
plans-locked-nowhere = 🔒 { $mode } is not available now: no plan unlocks it. Nothing was charged.

## The confirmation before a charge
plans-quote-free = 1 free operation will be used, { $left } left
plans-quote-subscription = { $ops } will be taken from the subscription, { $left } left
plans-quote-package = { $ops } will be taken from the package { $name }, { $left } left
plans-quote-balance = { $price } ₽ will be taken, { $left } ₽ left
plans-quote-balance-discount = { $price } ₽ will be taken ({ $percent } % off), { $left } ₽ left
plans-confirm = ❓ { $mode }: { $quote }. Confirm?
plans-btn-confirm = ✅ Confirm
plans-btn-cancel = ✖️ Cancel
plans-confirm-canceled = ✖️ Canceled, nothing was charged.
plans-confirm-expired = ⌛ This confirmation is out of date: the request is no longer kept. Nothing was charged — please send it again.
plans-confirm-changed = ⚠️ While you were deciding, the balance or the plan changed, so the terms above no longer hold. Nothing was charged.
plans-confirm-done = Already confirmed.

## /balance (the lines under the balance)
plans-balance-quota = 📊 Subscription { $name }: { $left } of { $total } left, resets { $date }
plans-balance-quota-ends = 📊 Subscription { $name }: { $left } of { $total } left, until { $date }
plans-balance-package = 📦 { $name }: { $left } left, { $until }
plans-balance-discount = 💳 With your plan's discount — { $price } ₽ per operation (−{ $percent } %)

## /history
plans-history-title = 🧾 <b>History</b> (newest first)
plans-history-empty = 🧾 Nothing here yet: no top-ups, no operations.
plans-history-line = { $date } · { $what }
plans-history-newer = ◀️ Newer
plans-history-older = Older ▶️
plans-h-signup = 🎁 Welcome gift: +{ $free }
plans-h-topup = 💳 Top-up: +{ $amount } ₽
plans-h-payment-refund = ↩️ Refund to the card: −{ $amount } ₽
plans-h-charge-balance = { $mode }: −{ $amount } ₽
plans-h-charge-free = { $mode }: −1 free operation
plans-h-charge-subscription = { $mode }: −{ $ops } from the { $plan } subscription
plans-h-charge-package = { $mode }: −{ $ops } from the package { $plan }
plans-h-refund-balance = ↩️ Refund for { $mode }: +{ $amount } ₽ — the operation failed
plans-h-refund-free = ↩️ Refund for { $mode }: +1 free operation — the operation failed
plans-h-refund-units = ↩️ Refund for { $mode }: +{ $ops } to { $plan } — the operation failed
plans-h-refund-period-over = ↩️ { $mode }: the operation failed, but the subscription period had already ended — operations are not carried over
plans-h-refund-plan-ended = ↩️ { $mode }: the operation failed, but the package { $plan } had already ended — nothing to return to
plans-h-adjustment = 🛠 Adjustment: { $change }
plans-h-purchase = 📋 Bought { $plan }: { $change }
plans-h-purchase-trial = 📋 { $plan }: free trial{ $change }
plans-h-renewal = 🔁 { $plan } renewed: { $change }
plans-h-end = ⏹ { $plan } ended: { $why }{ $change }
plans-h-end-canceled = auto-renewal was off
plans-h-end-no-money = the balance did not cover the renewal
plans-h-end-archived = the plan was withdrawn from sale
plans-h-end-expired = it expired
plans-h-end-replaced = replaced by another plan
plans-h-free-renewal = 🎁 Free operations renewed: { $change }
plans-h-other = { $change }
plans-h-money = { $sign }{ $amount } ₽
plans-h-free = { $sign }{ $free }
plans-h-units = { $sign }{ $ops }
plans-h-units-gone = { $ops } lapsed

## /settings
plans-settings =
    ⚙️ <b>Settings</b>

    Confirm before a charge: <b>{ $on ->
        [yes] on
       *[no] off
    }</b>
    When on, before each paid operation I say what will be taken and from where, and wait for "Confirm".
plans-btn-confirm-on = ✅ Ask before charging
plans-btn-confirm-off = ⏩ Don't ask

## After a result (the worker's caption), at most once a day
plans-offer = { $free_left ->
    [0] 💡 Your free operations are used up.
   *[other] 💡 One free operation left.
} Plans make operations cheaper: /plans
