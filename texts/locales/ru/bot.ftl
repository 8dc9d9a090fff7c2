# The bot's conversation (bot/). Keys start with "bot-"; en/bot.ftl has the same keys.
# Money arrives formatted (billing.prices.format_rub), counts as numbers.

## Commands (setMyCommands)
bot-cmd-start = Главное меню
bot-cmd-help = Что умеет бот и сколько стоит
bot-cmd-balance = Баланс и пополнение
bot-cmd-menu = Показать меню
bot-cmd-plans = Тарифы: подписки и пакеты
bot-cmd-history = История списаний и пополнений
bot-cmd-settings = Настройки
bot-cmd-paysupport = Помощь с оплатой
bot-cmd-privacy = Какие данные хранит бот

## Main menu buttons
bot-btn-generate = 🎨 Создать
bot-btn-edit = ✏️ Редактировать
bot-btn-merge = 🔗 Объединить
bot-btn-face_swap = 🔄 Заменить лицо
bot-btn-retouch = ✨ Ретушь
bot-btn-upscale = ⬆️ Улучшить
bot-btn-add_text = 📝 Добавить текст
bot-btn-topup = 💰 Оплатить / Баланс
bot-btn-plans = 📋 Тарифы
bot-btn-menu = 🏠 Меню
bot-btn-webapp = 📱 Открыть приложение
bot-btn-webapp-menu = Кабинет
bot-btn-topup-now = 💳 Пополнить баланс
bot-btn-amount = { $amount } ₽
bot-btn-custom-amount = ✍️ Другая сумма
bot-btn-cancel = ✖️ Отмена
bot-btn-pay = 💳 Перейти к оплате
bot-btn-check-payment = 🔄 Проверить оплату
# Under the answers of a mode that takes several photos (merge): they send these words.
bot-btn-add-photo = ➕ Добавить
bot-btn-done = ✅ Готово

## Start, menu, help
bot-start =
    Привет, { $name }! 👋 Я Media Lab — колдую над фотографиями.

    🎁 Бесплатных операций: { $free_left } из { $free_total }
    💳 Потом — { $price } ₽ за операцию (на балансе { $balance } ₽)

    Что сделаем?
bot-menu = Что сделаем? Выберите режим 👇
bot-pick-mode = Чтобы я знал, что делать с сообщением, сначала выберите режим 👇
bot-help =
    <b>Что я умею</b>

    { $modes }

    Первые { $free_total } операции — бесплатно, дальше — { $price } ₽ за каждую. Если что-то не получится, деньги вернутся на баланс.

    /start — главное меню
    /balance — баланс и пополнение
    /plans — тарифы: подписки и пакеты
    /history — история списаний и пополнений
    /settings — настройки (подтверждение списаний)
    /paysupport — помощь с оплатой
    /privacy — какие данные хранит бот
    /help — эта справка
bot-help-generate = 🎨 <b>Создать</b> — картинка по текстовому описанию.
bot-help-edit = ✏️ <b>Редактировать</b> — фото + команда: «ч/б», «яркость +20», «повернуть вправо»…
bot-help-merge = 🔗 <b>Объединить</b> — от 2 до 4 фотографий рядом в одной.
bot-help-face_swap = 🔄 <b>Заменить лицо</b> — лицо с первого фото на второе.
bot-help-retouch = ✨ <b>Ретушь</b> — мягкая ретушь портрета.
bot-help-upscale = ⬆️ <b>Улучшить</b> — увеличу фото в 2 раза и добавлю резкости.
bot-help-add_text = 📝 <b>Добавить текст</b> — надпись на фото.

## Modes
bot-mode-generate = 🎨 Опишите картинку словами — например: «рыжий кот-астронавт, акварель».
bot-mode-edit =
    ✏️ Пришлите фото с подписью-командой, например: «ч/б, яркость +20».
    Можно и по очереди: сначала фото, потом команду.
bot-mode-merge = 🔗 Пришлите от 2 до 4 фотографий — альбомом или по одной, потом нажмите «✅ Готово». Поставлю их рядом.
bot-mode-face_swap = 🔄 Пришлите две фотографии: первая — откуда взять лицо, вторая — куда его поставить. Можно альбомом.
bot-mode-retouch = ✨ Пришлите портрет — сделаю мягкую ретушь.
bot-mode-upscale = ⬆️ Пришлите фото — увеличу в 2 раза и добавлю резкости.
bot-mode-add_text = 📝 Пришлите фото с подписью — напишу этот текст на картинке. Можно сначала фото, потом текст.
bot-mode-unavailable = Этот режим сейчас недоступен. Выберите другой 👇
bot-price-paid = 💳 Цена: { $price } ₽ — или { $ops } из подписки или пакета, или одна бесплатная операция.
bot-price-free = 🆓 Бесплатно.

## Input checks (nothing is charged for these)
bot-need-photo = 📷 Здесь нужна фотография — пришлите фото или картинку файлом.
bot-need-photo-first = 📷 Сначала пришлите фото, а потом текст к нему.
bot-input-not-image = 🤔 Это не похоже на картинку. Пришлите фото или файл JPEG, PNG или WebP.
bot-input-too-big = 🐘 Файл слишком большой: можно до { $limit } МБ. Пришлите поменьше.
bot-input-unreadable = 🤔 Не получается открыть этот файл как картинку: он повреждён или это другой формат. Ничего не списано — пришлите фото или файл JPEG, PNG или WebP.
bot-input-too-many-pixels = 🐘 Картинка слишком большая: можно до { $megapixels } Мп и до { $side } точек по стороне. Пришлите поменьше.
bot-input-too-small = 🔍 Фото слишком маленькое: { $width }×{ $height }. В этом режиме нужно не меньше { $min } точек по короткой стороне. Ничего не списано — пришлите фото побольше.
bot-input-download-failed = 😔 Не получилось получить файл из Telegram. Ничего не списано — пришлите его ещё раз через минуту.
bot-input-command = 🤔 { $command } — такой команды у меня нет, а текст с «/» в начале я не беру. Пришлите текст без «/» или выберите команду: /start, /help, /balance, /menu.
bot-pair-need-second = 👍 Первое фото есть. Теперь пришлите второе.
bot-album-extra = 📎 В этом режиме { $count ->
        [1] одно фото за раз: из альбома взято одно
       *[other] два фото за раз: из альбома взяты два
    }, остальные не использованы и ничего за них не списано. Если нужно, пришлите их отдельно.
## Several photos (merge: 2 to $max)
bot-several-need-photos = 📷 Пришлите фотографии — от 2 до { $max }, альбомом или по одной.
bot-several-need-more = 👍 Фото есть. Пришлите ещё хотя бы одно — всего можно до { $max }.
bot-several-got = 👍 Фото: { $count } из { $max }. ➕ Пришлите ещё или нажмите «✅ Готово».
bot-several-got-words = 👍 Фото: { $count } из { $max }. ➕ Пришлите ещё — или одной фразой напишите, как их объединить.
bot-several-got-album = 👍 Фото из альбома добавлены. ➕ Пришлите ещё (всего до { $max }) или нажмите «✅ Готово».
bot-several-got-album-words = 👍 Фото из альбома добавлены. ➕ Пришлите ещё (всего до { $max }) — или одной фразой напишите, как их объединить.
bot-several-add = 📷 Пришлите следующее фото: сейчас { $count } из { $max }.
bot-several-too-many = 📎 Это фото не добавлено: фотографии уже собраны (за раз — не больше { $max }). За него ничего не списано — если нужно, пришлите его в следующий раз.
bot-several-no-words = 🤔 Слова здесь не нужны: пришлите ещё фото или нажмите «✅ Готово».
bot-caption-unused = ✏️ Подпись «{ $caption }» не использована: в этом режиме подпись не нужна.
bot-generate-need-text = ✍️ Опишите картинку текстом — одним сообщением.
bot-text-need-text = ✍️ Фото есть! Теперь пришлите текст, который написать.
bot-text-empty = ✍️ Текст пустой (или из одних символов, которых нет в шрифте). Напишите что-нибудь словами.
bot-text-too-long = ✂️ Слишком длинно: можно до { $max } символов. Сократите, пожалуйста.
bot-upscale-too-big = 🐘 Фото { $width }×{ $height } слишком большое для увеличения. Пришлите фото поменьше.
bot-edit-need-instruction = ✍️ Фото есть! Теперь напишите, что сделать, например: «ч/б, яркость +20».
bot-edit-empty =
    ✍️ Напишите, что сделать с фото. Я понимаю:
    { $commands }
bot-edit-unknown =
    🤔 Не понял «{ $fragment }». Я понимаю такие команды:
    { $commands }
bot-edit-bad-value =
    🤔 В команде «{ $fragment }» не то число. Вот что можно:
    { $commands }
# One line of the list of commands above ($command is a help line of workers.ftl).
bot-edit-command-line = • { $command }
bot-edit-too-many = ✂️ Слишком много команд сразу — не больше { $max }. Разбейте на несколько раз.
bot-edit-too-long = ✂️ Слишком длинная команда. Сократите, пожалуйста.
bot-edit-no-effect = 🤔 «{ $fragment }» ничего не изменит: на 0 % фото не меняется. Укажите, насколько, например: «яркость +20». Ничего не списано.

## Operations
bot-charge-busy = ⏳ Сейчас идёт много ваших операций сразу — эта не списана и не запущена. Отправьте её ещё раз через пару секунд.
bot-op-queued-generate = ⏳ В очереди: рисую картинку по описанию.
bot-op-queued-edit = ⏳ В очереди: применяю правки.
bot-op-queued-merge = ⏳ В очереди: объединяю фотографии.
bot-op-queued-face_swap = ⏳ В очереди: меняю лицо.
bot-op-queued-retouch = ⏳ В очереди: делаю ретушь.
bot-op-queued-upscale = ⏳ В очереди: увеличиваю фото.
bot-op-queued-add_text = ⏳ В очереди: пишу текст на фото.
bot-op-paid =
    { $how ->
        [free] 🎁 Бесплатная операция — осталось { $free_left } из { $free_total }.
        [balance] 💳 Списано { $price } ₽, на балансе { $balance } ₽.
        [subscription] 📊 Списано { $units } из подписки, осталось { $units_left }.
        [package] 📦 Списано { $units } из пакета, осталось { $units_left }.
       *[none] 🆓 Бесплатно.
    }
    Пришлю результат сюда. Режим открыт — можно отправлять следующее.
bot-op-queue-down = 😔 Очередь сейчас недоступна, операция не запущена. Деньги не списаны — попробуйте через минуту.
bot-op-failed-before-queue = 😔 Что-то пошло не так, операция не запущена. Списание отменено — попробуйте ещё раз.
bot-insufficient =
    😔 Бесплатные операции закончились (использованы все { $free_total }).
    Операция стоит { $price } ₽, а на балансе { $balance } ₽.
    Пополните баланс — и продолжим!
bot-throttled = 🐢 Не так быстро! Подождите пару секунд и попробуйте снова.
bot-button-outdated = Эта кнопка больше не работает. Откройте меню: /start
# 📎 under a result (the file is kept RESULT_FILE_KEEP_SECONDS; a second tap while it uploads)
bot-result-file-gone = Файл без сжатия хранится { $hours } ч, этот уже удалён. Фото выше осталось.
bot-result-file-sending = Файл уже отправляется.

## Balance and top-up
bot-balance =
    💰 Баланс: <b>{ $balance } ₽</b>
    🎁 Бесплатных операций: { $free_left } из { $free_total }
    💳 Цена операции: { $price } ₽
bot-topup-choose = На сколько пополнить?
bot-topup-not-configured = Пополнение сейчас недоступно — загляните позже.
bot-topup-canceled = Хорошо, пополнение отменено. Что сделаем?
bot-topup-ask-amount = ✍️ Напишите сумму в рублях — целое число от { $min } до { $max }.
bot-topup-amount-not-number = 🔢 Нужно целое число рублей, например 250. Сумма — от { $min } до { $max } ₽.
bot-topup-amount-fraction = 🔢 Только целые рубли, без копеек — например 250.
bot-topup-amount-too-small = ⬆️ Минимальная сумма — { $min } ₽.
bot-topup-amount-too-large = ⬇️ Максимальная сумма — { $max } ₽.
bot-topup-ask-email = 📧 Для чека нужен e-mail — пришлите его одним сообщением. Спрошу один раз.
bot-topup-email-invalid = 📧 Это не похоже на e-mail. Пришлите адрес вида name@example.ru.
bot-topup-email-saved = 📧 E-mail сохранён. Выберите сумму в меню пополнения.
bot-topup-creating = ⏳ Создаю счёт на { $amount } ₽…
bot-topup-description = Media Lab: пополнение баланса на { $amount } ₽
bot-topup-invoice =
    🧾 Счёт на <b>{ $amount } ₽</b> готов.
    Нажмите «Перейти к оплате», а после оплаты — «Проверить оплату» (или просто подождите: я сообщу сам).
bot-topup-unavailable = 😔 Платёжный сервис сейчас не отвечает. Ничего не списано — попробуйте через несколько минут.
bot-payment-credited = ✅ Оплата получена: +{ $amount } ₽. На балансе { $balance } ₽. Что сделаем?
bot-payment-credited-short = ✅ Зачислено { $amount } ₽
bot-payment-already = ✅ Этот платёж уже зачислен. На балансе { $balance } ₽.
bot-payment-pending = ⏳ Оплата ещё не поступила. Если вы уже оплатили — подождите минуту и нажмите снова.
bot-payment-check-later = ⏳ Не получилось связаться с платёжным сервисом. Попробуйте проверить через минуту.
bot-payment-problem = 😔 С этим платежом что-то не так. Напишите в поддержку — разберёмся.
bot-error = 😔 Что-то пошло не так. Попробуйте ещё раз или откройте меню: /start

## /privacy, /paysupport
bot-privacy =
    <b>Какие данные хранит Media Lab</b>

    • Ваш Telegram id, имя пользователя (@username) и язык — чтобы узнавать вас и отвечать на вашем языке.
    • E-mail — только если вы сами указали его для чека.
    • Баланс, платежи (сумма, статус, номер платежа у платёжной системы или в Telegram) и история списаний и пополнений — это учёт денег, он хранится, пока существует сервис.
    • Операции: вид, время, цена, результат, текст вашей команды или описания и ссылки Telegram на ваши фото (file_id).

    <b>Изображения</b> мы не храним: фото скачивается из Telegram только на время обработки и остаётся в памяти обработчика. Служебная запись задачи со ссылками на фото удаляется через час после выполнения (через 7 дней, если задача не удалась), отметка о доставленном результате — через 7 дней. Сами фото остаются у Telegram, в вашем чате.

    Мы не передаём данные третьим лицам, кроме платёжной системы при оплате. Вопросы — /paysupport.
bot-paysupport =
    <b>Помощь с оплатой</b>

    Ваши последние платежи:
    { $payments }
bot-paysupport-none = платежей пока нет.
bot-paysupport-payment = #{ $id } · { $date } · { $amount } ₽ · { $status } · { $ref }
bot-paysupport-contact = Связаться с оператором: { $contact }
bot-paysupport-ask = Напишите одним сообщением, что случилось, — я перешлю его администратору вместе с номерами ваших платежей. Передумали — /menu.
bot-paysupport-sent = ✅ Сообщение передано администратору. Вам ответят в этом чате или по контакту выше.
bot-paysupport-not-sent = Не получилось передать сообщение администратору. Попробуйте позже.
bot-paysupport-status-pending = ожидает оплаты
bot-paysupport-status-waiting_for_capture = ожидает подтверждения
bot-paysupport-status-succeeded = зачислен
bot-paysupport-status-canceled = отменён
bot-paysupport-status-refunded = возвращён
bot-paysupport-status-failed = не создан

## ⭐ Telegram Stars top-ups
bot-btn-stars-pack = ⭐ { $stars } → { $amount } ₽
bot-stars-title = Пополнение на { $amount } ₽
bot-stars-description = { $stars } ⭐ — зачислю { $amount } ₽ на баланс Media Lab.
bot-stars-label = { $amount } ₽ на баланс
bot-stars-credited = ✅ Оплата получена: { $stars } ⭐ → +{ $amount } ₽. На балансе { $balance } ₽. Что сделаем?
bot-stars-refused-unknown = Этот счёт не от нас или изменён. Звёзды не списаны. Новый счёт: /balance (пополнение) или /plans (тариф)
bot-stars-refused-not_yours = Этот счёт выставлен другому пользователю. Звёзды не списаны. Свой счёт: /balance (пополнение) или /plans (тариф)
bot-stars-refused-stale = Этот счёт уже оплачен или устарел. Звёзды не списаны. Новый счёт: /balance (пополнение) или /plans (тариф)
bot-stars-refused-price = Сумма счёта не совпадает с покупкой. Звёзды не списаны. Новый счёт: /balance (пополнение) или /plans (тариф)
bot-stars-refused-plan = Этот тариф больше не продаётся: счёт не оплачен, звёзды не списаны. Выбрать тариф — /plans
bot-stars-plan-title = Тариф «{ $name }»
bot-stars-plan-description = { $stars } ⭐ — тариф «{ $name }» за { $price } ₽. Звёзды зачислятся на баланс как { $amount } ₽, из них сразу спишется цена тарифа.
bot-stars-plan-label = Тариф «{ $name }»

## /start op_<id>: the Mini App's link back to an operation's result in the chat.
bot-op-link-result = ⬆️ Результат операции №{ $id }: { $mode }, { $date }.
bot-op-link-refused = Такой операции с результатом у вас нет.
bot-op-link-gone = Сообщения с результатом больше нет, и отправить его снова нельзя.
