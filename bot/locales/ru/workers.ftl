# The worker: progress, results, failures and refunds (workers/messages.py).
worker-processing = ⏳ Обрабатываю…

## What was done (the caption's first line; keys are media-result-<op>)
media-result-upscale = ⬆️ Фото увеличено в { $factor }×: { $width }×{ $height }.
media-result-retouch = ✨ Ретушь готова: кожа сглажена, уровни и контраст выровнены.
media-result-edit = ✏️ Готово: { $steps }.
media-result-merge = 🔗 Фото объединены: { $width }×{ $height }.
media-result-faceswap = 🔄 Лицо заменено.
media-result-text = 📝 Текст добавлен.
media-result-generate = 🎨 Изображение создано.
media-result-noop = Без изменений.

## What it cost and what is left
worker-cost-balance = Списано { $price } ₽. Баланс: { $balance } ₽.
worker-cost-free = Использована бесплатная операция. Осталось бесплатных: { $free_left }. Баланс: { $balance } ₽.
worker-cost-none = Бесплатно. Баланс: { $balance } ₽.
worker-document-caption = Файл без сжатия.

## Failures
worker-failed = ❌ Не получилось: { $reason }
worker-reason-no-face = на { $which ->
    [a] первом фото
    [b] втором фото
   *[other] фото
} не найдено лицо. Пришлите фото, где лицо хорошо видно.
worker-reason-invalid-image = не удалось прочитать { $which ->
    [a] первое фото
    [b] второе фото
   *[other] фото
}: файл повреждён или это не изображение.
worker-reason-image-too-large = изображение слишком большое.
worker-reason-instruction = не понял, что сделать с фото.
worker-reason-invalid-text = текст пустой или слишком длинный.
worker-reason-backend = сервис генерации не справился с запросом.
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
