# The worker: progress, results, failures and refunds (workers/messages.py).
worker-processing = ⏳ Обрабатываю…

## What was done (the caption's first line; keys are media-result-<op>)
media-result-upscale = ⬆️ Фото увеличено в { $factor }×: { $width }×{ $height }.
media-result-retouch = ✨ Ретушь готова: кожа сглажена, уровни и контраст выровнены.
media-result-edit = ✏️ Готово: { $steps }.
media-result-merge = 🔗 Фото объединены: { $width }×{ $height }.
media-result-faceswap = 🔄 Лицо заменено.
media-result-text = 📝 Текст добавлен.
media-result-missing-glyphs = ⚠️ Этих символов нет в шрифте, на картинке их нет: { $characters }
media-result-generate = 🎨 Изображение создано.
media-result-noop = Без изменений.
# A hosted model's result (jobs of workers.ai).
media-result-ai-generate = 🎨 Изображение создано: { $width }×{ $height }.
media-result-ai-edit = ✏️ Правки внесены: { $width }×{ $height }.
media-result-ai-merge = 🔗 Фото объединены в одну сцену: { $width }×{ $height }.
media-result-ai-face_swap = 🔄 Лицо заменено: { $width }×{ $height }.
media-result-ai-retouch = ✨ Портрет восстановлен и отретуширован: { $width }×{ $height }.
media-result-ai-upscale = ⬆️ Фото увеличено: { $width }×{ $height }.

## What it cost and what is left
worker-cost-balance = Списано { $price } ₽. Баланс: { $balance } ₽.
worker-cost-free = Использована бесплатная операция. Осталось бесплатных: { $free_left }. Баланс: { $balance } ₽.
worker-cost-none = Бесплатно. Баланс: { $balance } ₽.
worker-cost-subscription = Списано { $units } из подписки, осталось { $units_left }. Баланс: { $balance } ₽.
worker-cost-package = Списано { $units } из пакета, осталось { $units_left }. Баланс: { $balance } ₽.
worker-document-caption = Файл без сжатия.
# The button under a result whose photo Telegram compresses: the bot sends the file on a tap.
worker-btn-file = 📎 Файл без сжатия

## Failures
worker-failed = ❌ Не получилось: { $reason }
worker-reason-no-face = на { $which ->
    [a] первом фото
    [b] втором фото
    [both] обоих фото
   *[other] фото
} не найдено лицо. Пришлите фото, где лицо хорошо видно.
worker-reason-invalid-image = не удалось прочитать { $which ->
    [a] первое фото
    [b] второе фото
   *[other] фото
}: файл повреждён или это не изображение.
worker-reason-image-too-large = изображение слишком большое.
worker-reason-image-too-small = { $which ->
    [a] первое фото
    [b] второе фото
   *[other] фото
} слишком маленькое ({ $width }×{ $height }): нужно не меньше { $min } точек по короткой стороне.
worker-reason-instruction = не понял, что сделать с фото.
worker-reason-invalid-text = текст пустой или слишком длинный.
worker-reason-no-change = эти правки не меняют ни одной точки на этом фото (например, ч/б для уже чёрно-белого).
worker-reason-backend = сервис генерации не справился с запросом.
worker-reason-model-refused = сервис отказался это делать: запрос или фото не прошли его проверку безопасности.
worker-reason-model-input = сервис не принял эти данные (фото или текст).
worker-reason-media = не удалось обработать изображение.
worker-reason-timeout = обработка заняла слишком много времени.
worker-reason-crashed = обработчик аварийно остановился.
worker-reason-deadline = задача не выполнилась вовремя.
worker-reason-telegram = Telegram не принял запрос.
worker-reason-undeliverable = не удалось отправить результат.
worker-reason-input-missing = не удалось получить фото из Telegram.
worker-reason-input-too-large = файл больше { $limit_mb } МБ.
worker-reason-unavailable = сервис временно недоступен.
worker-reason-internal = внутренняя ошибка.

## Refunds
worker-refunded-balance = { $amount } ₽ возвращены на баланс. Баланс: { $balance } ₽.
worker-refunded-free = Бесплатная операция возвращена. Осталось бесплатных: { $free_left }.
worker-refunded-none = Ничего не списано.
worker-refunded-subscription = Операция возвращена в подписку. Осталось в подписке: { $units_left }.
worker-refunded-package = Операция возвращена в пакет. Осталось в пакете: { $units_left }.
worker-refunded-period-over = Операция была списана из подписки в прошлом периоде и не перенесена в новый период.
worker-refunded-plan-ended = Операция была списана из пакета, который уже закончился: вернуть её некуда.

## ✏️ The edit instruction language (imaging/edit.py). The words it accepts are its
## grammar and stay in code; what users read is here: the step labels of the result
## caption and the list of commands the bot shows when it did not understand.
# A step's name; with a value, in the form of its kind (value arrives formatted: "+20", "90").
edit-step-grayscale = ч/б
edit-step-sepia = сепия
edit-step-blur = размытие
edit-step-sharpen = резкость
edit-step-brightness = яркость
edit-step-contrast = контраст
edit-step-saturation = насыщенность
edit-step-rotate = поворот
edit-step-flip_h = отражение
edit-step-flip_v = отражение по вертикали
edit-step-crop_square = квадрат
edit-step-invert = инверсия
edit-step-with-percent = { $name } { $value }%
edit-step-with-angle = { $name } { $value }°
edit-step-with-value = { $name } { $value }
# One help line per command; ranges arrive formatted ($percent_min is "−100").
edit-help-grayscale = ч/б (чб, черно-белое)
edit-help-sepia = сепия
edit-help-blur = размытие [N] (N { $blur_min }…{ $blur_max }, по умолчанию { $blur_default })
edit-help-sharpen = резкость
edit-help-brightness = яркость ±N ({ $percent_min }…{ $percent_max }), ярче, темнее
edit-help-contrast = контраст ±N ({ $percent_min }…{ $percent_max })
edit-help-saturation = насыщенность ±N ({ $percent_min }…{ $percent_max })
edit-help-rotate = повернуть 90 / 180 / 270 (по часовой), повернуть влево / вправо
edit-help-flip_h = отразить (зеркально, по горизонтали)
edit-help-flip_v = отразить по вертикали
edit-help-crop_square = обрезать квадрат
edit-help-invert = инверсия (негатив)
