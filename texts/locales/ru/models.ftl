# The model catalogue (billing.ai_models): what a mode uses and costs, for users; and the
# admin's /models, /model_set, /model_enable, /model_disable. en/models.ftl has the same keys.

## What a mode uses (its prompt, /help, the menu)
models-uses-fal = 🤖 Модель: <code>{ $model }</code>
models-uses-local = ⚙️ Встроенная обработка
models-uses-fallback = ⚙️ ИИ-модель сейчас не подключена — работает встроенная обработка (проще, без ИИ)
models-cost-paid = { $price } ₽ ({ $ops })
models-cost-free = бесплатно
models-help-line =
    { $line }
       <i>{ $uses } · { $cost }</i>
models-menu-fallback = ⚙️ Без ИИ-модели, встроенной обработкой: { $modes }.
models-menu-unavailable = 🚫 Сейчас недоступно: { $modes }.
models-why-no_key = { $mode } (модель не подключена)
models-why-disabled = { $mode } (выключено)
models-mode-no_key = Этот режим сейчас недоступен: его модель не подключена. Выберите другой 👇
models-mode-disabled = Этот режим сейчас выключен. Выберите другой 👇

## The editor when a model runs it: free words instead of commands
bot-help-edit-fal = ✏️ <b>Редактировать</b> — фото + что изменить, своими словами: «сделай небо закатным», «убери людей на фоне».
bot-mode-edit-fal =
    ✏️ Пришлите фото с подписью — что изменить, своими словами: например, «сделай небо закатным».
    Можно и по очереди: сначала фото, потом текст.
bot-edit-need-words = ✍️ Фото есть! Теперь напишите своими словами, что изменить — например: «сделай небо закатным».

## Admin: the model catalogue
admin-models =
    🤖 Модели (режим · как работает · цена · состояние):

    { $models }

    Изменить: <code>/model_set ТИП поле=значение ...</code> (backend=fal|local, model=fal-ai/..., params='{ "{" }...{ "}" }', units=N|default, enabled=yes|no); <code>/model_enable ТИП</code>, <code>/model_disable ТИП</code>.
admin-model-line = <b>{ $type }</b> · { $backend } { $model } · { $units } · { $state }{ $params }
admin-model-units = { $units } ед.
admin-model-units-default = { $units } ед. (по умолчанию)
admin-model-state-on = включён
admin-model-state-off = выключен
admin-model-now-fal = сейчас: модель
admin-model-now-local = сейчас: встроенная обработка
admin-model-now-fallback = сейчас: встроенная обработка (нет FAL_KEY)
admin-model-now-no_key = сейчас: недоступен (нет FAL_KEY)
admin-model-now-disabled = сейчас: не предлагается
admin-model-params = { "" } · параметры <code>{ $params }</code>
admin-model-set-usage = Формат: <code>/model_set ТИП поле=значение ...</code>, например <code>/model_set upscale units=2</code>. Список: /models
admin-model-toggle-usage = Формат: <code>{ $command } ТИП</code>. Список: /models
admin-model-saved = ✅ Сохранено: { $model }
admin-model-error-unknown_type = Режима «{ $value }» нет. Есть: { $choices }. Ничего не изменено.
admin-model-error-bad_pair = «{ $value }» — не поле=значение. Ничего не изменено.
admin-model-error-unknown_field = Поля «{ $field }» нет. Поля: { $fields }. Ничего не изменено.
admin-model-error-repeated = { $field } указано дважды. Ничего не изменено.
admin-model-error-missing = Нечего менять: укажите поле=значение. Ничего не изменено.
admin-model-error-bad_backend = backend — одно из: { $choices }, а не «{ $value }». Ничего не изменено.
admin-model-error-no_local = У режима { $type } нет встроенной обработки: только fal. Ничего не изменено.
admin-model-error-no_fal = Режим { $type } работает только встроенной обработкой. Ничего не изменено.
admin-model-error-model_needed = Для backend fal нужна модель (model=владелец/имя). Ничего не изменено.
admin-model-error-bad_model = «{ $value }» — не id модели fal вроде fal-ai/flux/schnell. Ничего не изменено.
admin-model-error-bad_units = Цена в единицах — целое от 0 до { $high } или default, а не «{ $value }». Ничего не изменено.
admin-model-error-bad_params = Параметры — JSON-объект не длиннее { $high } символов ({ $value }). Ничего не изменено.
admin-model-error-input_param = Параметр «{ $value }» задаёт сама операция из того, что прислал пользователь. Ничего не изменено.
admin-model-error-secret_param = «{ $value }» похоже на ключ: ключи провайдеров задаются в настройках (FAL_KEY), не в каталоге. Ничего не изменено.
admin-model-error-bad_bool = { $field }: yes или no, а не «{ $value }». Ничего не изменено.

## Merge when a multi-image model runs it: 2–4 photos and a sentence on how to combine them
bot-help-merge-fal = 🔗 <b>Объединить</b> — от 2 до 4 фотографий в одну сцену, как вы опишете: «мы вдвоём на пляже на закате».
bot-mode-merge-fal =
    🔗 Пришлите от 2 до 4 фотографий — альбомом или по одной — и одной фразой, как их объединить: например, «мы вдвоём на пляже на закате».
    Фразу можно подписью к фото или отдельным сообщением после фотографий.
bot-merge-need-words = ✍️ Фотографии есть! Теперь одной фразой: как их объединить — например, «мы вдвоём на пляже на закате».
