# /stats (bot/routers/admin.py, texts/stats_texts.py): the operator's figures, for ADMIN_IDS
# only. ru/stats.ftl has the same keys. Tables arrive built ($revenue, $days, $pending,
# $table: lines of a monospace block), money as rubles with kopecks.
admin-stats =
    📊 <b>Statistics</b> as of { $now } ({ $zone }); days start at midnight, “7 days” and “30 days” include today.

    👥 <b>Users</b>: { $users_total } in all, { $users_today } new today, { $users_week } in 7 days.

    💰 <b>Revenue</b>, ₽: credited minus refunded
    <pre>{ $revenue }</pre>
    📅 <b>By day</b>, ₽ (net of refunds)
    <pre>{ $days }</pre>
    ⚙️ <b>Operations of the last 7 days</b>
    { $operations }

    ⏳ <b>Waiting for payment</b>
    <pre>{ $pending }</pre>
    💸 <b>Money owed</b> (balances below zero after a payment was refunded): { $debtors ->
        [one] { $debtors } user
       *[other] { $debtors } users
    }, { $debt } ₽.
admin-stats-operations =
    <pre>{ $table }</pre>
    “fail” — nothing to give back (the operation cost nothing), “refd” — what was taken was given back; rates of those finished{ $running ->
        [0] .
       *[other] ; still running: { $running }.
    }
admin-stats-no-operations = No operations in the last 7 days.
admin-stats-col-method = method
admin-stats-col-today = today
admin-stats-col-week = 7 days
admin-stats-col-month = 30 days
admin-stats-col-day = day
admin-stats-col-type = type
admin-stats-col-count = all
admin-stats-col-ok = ok
admin-stats-col-failed = fail
admin-stats-col-refunded = refd
admin-stats-col-failure-rate = fail%
admin-stats-col-refund-rate = refd%
admin-stats-col-payments = payments
admin-stats-col-sum = sum, ₽
admin-stats-col-oldest = oldest
admin-stats-row-total = total
admin-stats-row-credited = credited
admin-stats-row-refunded = refunded
admin-stats-method-yookassa = YooKassa
admin-stats-method-stars = Stars
admin-stats-date = { $month_name } { $day }
admin-stats-age-days = { $days } d { $hours } h
admin-stats-age-hours = { $hours } h { $minutes } min
admin-stats-age-minutes = { $minutes } min
