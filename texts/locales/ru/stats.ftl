# /stats (bot/routers/admin.py, texts/stats_texts.py): the operator's figures, for ADMIN_IDS
# only. en/stats.ftl has the same keys. Tables arrive built ($revenue, $days, $pending,
# $table: lines of a monospace block), money as rubles with kopecks.
admin-stats =
    📊 <b>Статистика</b> на { $now } ({ $zone }); сутки — от полуночи, «7 дней» и «30 дней» — вместе с сегодня.

    👥 <b>Пользователи</b>: всего { $users_total }, новых сегодня { $users_today }, за 7 дней { $users_week }.

    💰 <b>Выручка</b>, ₽: зачислено минус возвращено
    <pre>{ $revenue }</pre>
    📅 <b>По дням</b>, ₽ (за вычетом возвратов)
    <pre>{ $days }</pre>
    ⚙️ <b>Операции за 7 дней</b>
    { $operations }

    ⏳ <b>Ждут оплаты</b>
    <pre>{ $pending }</pre>
    💸 <b>Долги</b> (баланс ниже нуля после возврата платежа): { $debtors ->
        [one] { $debtors } пользователь
        [few] { $debtors } пользователя
       *[many] { $debtors } пользователей
    }, { $debt } ₽.
admin-stats-operations =
    <pre>{ $table }</pre>
    «сбой» — без возврата (операция ничего не стоила), «возвр» — списанное возвращено; проценты — от завершённых{ $running ->
        [0] .
       *[other] , ещё в работе: { $running }.
    }
admin-stats-no-operations = За 7 дней операций не было.
admin-stats-col-method = способ
admin-stats-col-today = сегодня
admin-stats-col-week = 7 дней
admin-stats-col-month = 30 дней
admin-stats-col-day = день
admin-stats-col-type = тип
admin-stats-col-count = всего
admin-stats-col-ok = ок
admin-stats-col-failed = сбой
admin-stats-col-refunded = возвр
admin-stats-col-failure-rate = %сбоев
admin-stats-col-refund-rate = %возвр
admin-stats-col-payments = платежей
admin-stats-col-sum = сумма, ₽
admin-stats-col-oldest = самый давний
admin-stats-row-total = итого
admin-stats-row-credited = зачислено
admin-stats-row-refunded = возвращено
admin-stats-method-yookassa = ЮKassa
admin-stats-method-stars = Stars
admin-stats-date = { $day }.{ $month }
admin-stats-age-days = { $days } дн { $hours } ч
admin-stats-age-hours = { $hours } ч { $minutes } мин
admin-stats-age-minutes = { $minutes } мин
